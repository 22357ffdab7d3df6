"""A drift check's Evidently report on the Drift page (dashboard/pages/drift.py): a route of the dashboard's
own Flask server (so the session guard in dashboard/server.py stands in front of it), the link to it, and the
iframe — loaded only when asked for: a report weighs megabytes.

The report is third-party HTML (Evidently embeds its data as JSON in a <script> without escaping `</`), so it
runs sandboxed: `Content-Security-Policy: sandbox allow-scripts` on the response (also when opened in a tab)
and `sandbox="allow-scripts"` on the iframe. Its scripts still draw it, but in an opaque origin: they cannot
read the dashboard's `_csrf_token` cookie nor call the dashboard with the viewer's session."""

from __future__ import annotations

import re
from typing import Any

from dash import Dash, html
from flask import Response, send_file

from dashboard import PREFIX
from dashboard.components import notice
from mlops.errors import NotFoundError
from mlops.pipeline.drift_history import report_path
from mlops.settings import Settings

CHECK_ID = re.compile(r"[A-Za-z0-9]{1,64}")  # what drift checks are named (uuid hex)
ROUTE = "/reports/drift/<check_id>"
SANDBOX = "allow-scripts"  # scripts yes (the report is drawn by them), same origin no


def report_url(check_id: str) -> str:
    return f"{PREFIX}/reports/drift/{check_id}"


def register_report_route(app: Dash, settings: Settings) -> None:
    def drift_report(check_id: str) -> Response:
        """The check's Evidently HTML report: 404 naming the problem for a bad id or a check without one."""
        if not CHECK_ID.fullmatch(check_id):
            raise NotFoundError(f"no drift check {check_id!r} (check ids are letters and digits)")
        response = send_file(report_path(settings, check_id, "html"), mimetype="text/html")
        response.headers["Content-Security-Policy"] = f"sandbox {SANDBOX}"
        return response

    app.server.add_url_rule(ROUTE, endpoint="drift_report", view_func=drift_report)


def report_links(settings: Settings, check_id: str) -> Any:
    """Open it in a tab, or show it on the page; or why there is none (reports off, or it failed)."""
    try:
        path = report_path(settings, check_id, "html")
    except NotFoundError as exc:
        return notice(str(exc))
    size = path.stat().st_size / 1e6
    return html.Div(
        [
            html.A(
                "Open the report", href=report_url(check_id), target="_blank", rel="noopener", id="drift-report-link"
            ),
            html.Button(f"Show it here ({size:.1f} MB)", id="drift-report-show", className="button"),
        ]
    )


def report_frame(check_id: str) -> html.Iframe:
    return html.Iframe(
        src=report_url(check_id), sandbox=SANDBOX, className="report-frame", title=f"Evidently report {check_id}"
    )
