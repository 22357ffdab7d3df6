"""The Dash app and its Flask server: the login page, the session guard in front of every request (cookie,
expiry, CSRF on anything that is not a read), logout, and the mapping of the project's errors to HTTP.

Cookies (path /mlops, SameSite=Strict, Secure when the request came over HTTPS, expiring with the session):
`skippy_session` (HttpOnly) holds the session token; `_csrf_token` holds the session's CSRF token, readable
by the page: Dash's renderer sends it back as the `X-CSRFToken` header with every callback, and the guard
refuses a state-changing request whose header does not match its session's token."""

from __future__ import annotations

import html as html_text
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import dash
from flask import Flask, Response, g, jsonify, redirect, request

from dashboard import PREFIX
from dashboard.shell import register_shell
from mlops import audit
from mlops.errors import AuthenticationError, SkippyError, http_status
from mlops.logs import get_logger
from mlops.sessions import ActiveSession, close_session, csrf_matches, open_session, verify_session
from mlops.settings import Settings

log = get_logger(__name__)

SESSION_COOKIE = "skippy_session"
CSRF_COOKIE = "_csrf_token"  # the name dash-renderer reads (config csrf_token_name)
CSRF_HEADER = "X-CSRFToken"
# Login and logout check their own origin (same_origin) instead of the session's CSRF token: before login there
# is no token, and a logout form drawn before a re-login in another tab carries a stale one.
PUBLIC = ("/login", "/logout", "/_favicon.ico")
STATIC = ("/_dash-component-suites/", "/assets/")  # the open-source JS and CSS bundles: no data in them
READS = ("GET", "HEAD", "OPTIONS")
ASSETS = Path(__file__).parent / "assets"


def create_dash(settings: Settings) -> dash.Dash:
    server = Flask("skippy_dashboard")
    server.config["MAX_CONTENT_LENGTH"] = settings.api_max_body_bytes
    app = dash.Dash(
        "skippy_dashboard",
        server=server,  # type: ignore[arg-type]
        routes_pathname_prefix="/",
        requests_pathname_prefix=f"{PREFIX}/",
        assets_folder=str(ASSETS),
        serve_locally=True,  # no CDN: the dashboard works on machines without internet
        suppress_callback_exceptions=True,  # pages add their components after the first render
        title="Skippy MLOps",
        update_title=None,  # type: ignore[arg-type]
        compress=False,
    )
    _guard(server, settings)
    _login_routes(server, settings)
    _error_handlers(server, settings)
    register_shell(app, settings)
    return app


def _secure() -> bool:
    return request.scheme == "https"


def same_origin() -> bool:
    """Whether a browser says this request comes from a page of this site. Browsers send `Sec-Fetch-Site` and
    `Origin` with every form POST; a client that is not a browser sends neither, and is no CSRF victim."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    return origin == f"{request.scheme}://{request.host}"


def _next_target(raw: str | None) -> str:
    """Where to go after login: a path under /mlops only (no open redirect to another site)."""
    if raw:
        parts = urlsplit(raw)
        if not parts.scheme and not parts.netloc and parts.path.startswith(f"{PREFIX}/") and "\\" not in raw:
            return raw
    return f"{PREFIX}/"


def _guard(server: Flask, settings: Settings) -> None:
    @server.before_request
    def check_session() -> Any:
        path = request.path
        if path in PUBLIC or path.startswith(STATIC):
            return None
        try:
            g.session = verify_session(settings, request.cookies.get(SESSION_COOKIE))
        except AuthenticationError as exc:
            if request.method in READS and not path.startswith("/_dash"):
                here = request.full_path.rstrip("?")
                return redirect(f"{PREFIX}/login?next={quote(PREFIX + here)}", code=303)
            return _error(401, "unauthorized", str(exc))
        if request.method not in READS and not csrf_matches(g.session, request.headers.get(CSRF_HEADER)):
            _audit_refusal(settings, g.session, 403, "missing or wrong CSRF token")
            return _error(403, "csrf", "missing or wrong CSRF token: reload the page (or log in again)")
        return None

    @server.after_request
    def headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if not request.path.startswith(STATIC):
            response.headers.setdefault("Cache-Control", "no-store")
        return response


def _error(code: int, name: str, message: str) -> Response:
    response = jsonify(error=name, message=message)
    response.status_code = code
    return response


def _audit_refusal(settings: Settings, active: ActiveSession | None, code: int, reason: str) -> None:
    """A refused action is audited like the API's refusals: who, what they sent (capped), why not."""
    body = request.get_data(cache=True)
    audit.record(
        settings,
        actor=f"dashboard:{active.principal.name}" if active else "anonymous",
        action=f"{request.method} {PREFIX}{request.path}",
        parameters=audit.body_digest(body) | {"body": _decoded(body)},
        status_code=code,
        result={"error": reason},
        client=request.remote_addr,
    )


def _decoded(body: bytes) -> Any:
    try:
        return request.get_json(silent=True) if body else None
    except Exception:
        return None


def _error_handlers(server: Flask, settings: Settings) -> None:
    @server.errorhandler(SkippyError)
    def skippy_error(exc: SkippyError) -> Response:
        code, name = http_status(exc)
        if code == 403:  # a control the user's role does not allow (the page did not offer it to them)
            _audit_refusal(settings, g.get("session"), code, str(exc))
        return _error(code, name, str(exc))


LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Skippy MLOps — log in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="{prefix}/_favicon.ico"><link rel="stylesheet" href="{prefix}/assets/style.css"></head>
<body class="login-body"><main class="login">
<h1>Skippy MLOps</h1>
<p>Log in with an API key (<code>skippy auth create-key --name NAME --role viewer|operator|admin</code>;
<code>skippy up</code> saves an admin key in <code>.skippy/admin.key</code>).</p>
{message}
<form method="post" action="{prefix}/login">
<input type="hidden" name="next" value="{next}">
<label for="key">API key</label>
<input id="key" name="key" type="password" autocomplete="off" required autofocus placeholder="sk_...">
<button type="submit" id="login-button">Log in</button>
</form></main></body></html>"""


def _login_page(next_target: str, message: str = "") -> Response:
    notice = f'<p class="notice notice-error" role="alert">{html_text.escape(message)}</p>' if message else ""
    page = LOGIN_PAGE.format(prefix=PREFIX, next=html_text.escape(next_target, quote=True), message=notice)
    return Response(page, mimetype="text/html")


def _login_routes(server: Flask, settings: Settings) -> None:
    @server.get("/login")
    def login_form() -> Response:
        return _login_page(_next_target(request.args.get("next")))

    @server.post("/login")
    def login() -> Response:
        target = _next_target(request.form.get("next"))
        if not same_origin():  # login CSRF: another site logging this browser in with a key of its choosing
            _audit_refusal(settings, None, 403, "login form posted from another site")
            return _login_page(target, "This login came from another site and was refused: log in here.")
        try:
            opened = open_session(settings, request.form.get("key", "").strip(), client=request.remote_addr)
        except AuthenticationError as exc:
            # The form again with the reason (200, as login forms do: a 401 document is a console error)
            return _login_page(target, str(exc))
        response = redirect(target, code=303)
        seconds = int(settings.dashboard_session_hours * 3600)
        cookie = {"max_age": seconds, "path": PREFIX, "secure": _secure(), "samesite": "Strict"}
        response.set_cookie(SESSION_COOKIE, opened.token, httponly=True, **cookie)  # type: ignore[arg-type]
        response.set_cookie(CSRF_COOKIE, opened.session.csrf_token, httponly=False, **cookie)  # type: ignore[arg-type]
        log.info("dashboard login", key=opened.session.principal.name, role=opened.session.principal.role)
        return response  # type: ignore[return-value]

    @server.post("/logout")
    def logout() -> Response:
        if same_origin():  # another site cannot log the user out; an ended session just goes to the login page
            close_session(settings, request.cookies.get(SESSION_COOKIE), client=request.remote_addr)
        response = redirect(f"{PREFIX}/login", code=303)
        for name in (SESSION_COOKIE, CSRF_COOKIE):
            response.delete_cookie(name, path=PREFIX, secure=_secure(), samesite="Strict")
        return response  # type: ignore[return-value]
