"""A drift check's Evidently report on the Drift page (dashboard/pages/drift.py): a route of the dashboard's
own Flask server (so the session guard in dashboard/server.py stands in front of it, and it is same-origin
for the iframe), the link to it, and the iframe — loaded only when asked for: a report weighs megabytes."""

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


def report_url(check_id: str) -> str:
    return f"{PREFIX}/reports/drift/{check_id}"


def register_report_route(app: Dash, settings: Settings) -> None:
    def drift_report(check_id: str) -> Response:
        """The check's Evidently HTML report: 404 naming the problem for a bad id or a check without one."""
        if not CHECK_ID.fullmatch(check_id):
            raise NotFoundError(f"no drift check {check_id!r} (check ids are letters and digits)")
        return send_file(report_path(settings, check_id, "html"), mimetype="text/html")

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
    return html.Iframe(src=report_url(check_id), className="report-frame", title=f"Evidently report {check_id}")
