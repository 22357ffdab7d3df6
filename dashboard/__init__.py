"""The web dashboard at /mlops (DESIGN §10): a Plotly Dash app in the API's own server, behind a login
with an API key. One module per page under `dashboard/pages/`; every callback calls the same service
functions as the CLI and the API (no SQL here), and every action runs with the logged-in key's role and
is audited by the service it calls, with actor `dashboard:<key name>`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from mlops.settings import Settings

PREFIX = "/mlops"


def mount_dashboard(app: FastAPI, settings: Settings) -> None:
    """Serve the dashboard under /mlops of `app` (Dash is a WSGI app: a2wsgi runs it in a thread pool)."""
    from a2wsgi import WSGIMiddleware

    from dashboard.server import create_dash

    dash_app = create_dash(settings)
    app.mount(PREFIX, WSGIMiddleware(dash_app.server))  # type: ignore[arg-type]
