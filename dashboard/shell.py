"""What every page shares: the header (who is logged in, log out), the navigation (only the pages the
user's role may see), the refresh interval every page's callbacks listen to, and the routing callback."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from dash import Dash, Input, Output, dcc, html
from flask import g

from dashboard import PREFIX
from dashboard.auth import session
from dashboard.components import mlflow_ui_base, notice
from dashboard.pages import PageContext, pages
from mlops.settings import Settings


def page_path(path: str | None) -> str:
    """/mlops/drift → /drift; /mlops and /mlops/ → / (the landing page)."""
    path = path or "/"
    if path.startswith(PREFIX):
        path = path[len(PREFIX) :]
    return path.rstrip("/") or "/"


def register_shell(app: Dash, settings: Settings) -> None:
    modules = pages()
    by_path = {m.PATH: m for m in modules}
    landing = modules[0]

    def layout() -> Any:
        if not g.get("session"):  # Dash builds the layout once at its first request, before the guard ran
            return html.Div(id="page")
        active = session()
        who = active.principal
        links = [
            dcc.Link(m.TITLE, href=f"{PREFIX}{m.PATH}", id=f"nav-{m.PATH.strip('/') or 'home'}", className="nav-link")
            for m in modules
            if who.can(m.ROLE)
        ]
        return html.Div(
            [
                dcc.Location(id="url"),
                html.Header(
                    [
                        html.A("Skippy MLOps", href=f"{PREFIX}/", className="brand"),
                        html.Nav(links, className="nav"),
                        html.Span(f"{who.name} · {who.role}", id="whoami", className="whoami"),
                        html.Form(
                            [html.Button("Log out", type="submit", id="logout", className="button-link")],
                            method="POST",
                            action=f"{PREFIX}/logout",
                            className="logout",
                        ),
                    ],
                    className="topbar",
                ),
                dcc.Interval(id="refresh", interval=int(settings.dashboard_refresh_seconds * 1000)),
                html.Main(id="page", className="page"),
            ]
        )

    app.layout = layout

    @app.callback(Output("page", "children"), Input("url", "pathname"), Input("url", "search"))
    def route(pathname: str | None, search: str | None) -> Any:
        who = session().principal
        path = page_path(pathname)
        module = landing if path == "/" else by_path.get(path)
        if module is None:
            return notice(f"No page at {pathname}. Pages: " + ", ".join(m.TITLE for m in modules), "error")
        if not who.can(module.ROLE):
            return notice(f"The {module.TITLE} page needs the {module.ROLE} role; key {who.name!r} is {who.role}.")
        query = dict(parse_qsl((search or "").lstrip("?")))
        return module.layout(PageContext(settings=settings, who=who, mlflow_ui=mlflow_ui_base(settings), query=query))

    for module in modules:
        module.register(app, settings)
