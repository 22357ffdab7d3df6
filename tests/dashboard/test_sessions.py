"""Logging in to the dashboard and what a session may do: cookies, expiry, logout, CSRF, roles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from mlops.auth import hash_key
from mlops.db import session_scope
from mlops.db.models import DashboardSession
from tests.dashboard.conftest import Console, Dashboard, callback, confirm, logged_in

pytestmark = pytest.mark.slow


def ack_payload(alert_id: int) -> dict[str, Any]:
    """What the Alerts page's "Acknowledge selected" sends: the selected alert's id (a forged request says any)."""
    return callback(
        [("alerts-ack-result", "children"), ("alerts-acked", "data")],
        [("alerts-ack", "submit_n_clicks", 1)],
        [("alerts-table", "selected_row_ids", [alert_id])],
    )


def alerts_payload(severity: Any) -> dict[str, Any]:
    """The Alerts table's refresh with a severity filter (the dropdown offers the known ones only)."""
    return callback(
        [
            ("alerts-table", "data"),
            ("alerts-table", "selected_rows"),
            ("alerts-table", "selected_row_ids"),
            ("alerts-problem", "children"),
        ],
        [
            ("refresh", "n_intervals", 1),
            ("alerts-severity", "value", severity),
            ("alerts-agent", "value", None),
            ("alerts-state", "value", None),
            ("alerts-acked", "data", None),
        ],
        [("alerts-table", "selected_row_ids", None)],
    )


def test_login_sets_strict_http_only_cookies_and_logout_ends_the_session(
    dashboard: Dashboard, page: Any, console: Console
) -> None:
    page.goto(f"{dashboard.url}/alerts")
    assert "/mlops/login?next=/mlops/alerts" in page.url  # not logged in: the login page, then back here
    page.fill("#key", "sk_not-a-key")
    page.click("#login-button")
    assert "invalid or revoked API key" in page.inner_text(".notice-error")
    page.fill("#key", dashboard.keys["viewer"])
    page.click("#login-button")
    page.wait_for_selector("#alerts-table")
    assert page.url.endswith("/mlops/alerts")
    assert page.inner_text("#whoami") == "viewer-key · viewer"
    cookies = {c["name"]: c for c in page.context.cookies()}
    session, csrf = cookies["skippy_session"], cookies["_csrf_token"]
    assert session["httpOnly"] and session["sameSite"] == "Strict" and session["path"] == "/mlops"
    assert not csrf["httpOnly"] and csrf["sameSite"] == "Strict"
    hours = (session["expires"] - datetime.now(UTC).timestamp()) / 3600
    assert dashboard.settings.dashboard_session_hours - 0.1 < hours <= dashboard.settings.dashboard_session_hours
    assert not session["secure"]  # plain HTTP here; over HTTPS the cookies are Secure (test_secure_cookies)
    page.click("#logout")
    page.wait_for_selector("#key")
    # The old token no longer opens anything, even replayed by hand.
    replay = httpx.get(f"{dashboard.url}/", cookies={"skippy_session": session["value"]}, follow_redirects=False)
    assert replay.status_code == 303 and "/mlops/login" in replay.headers["location"]
    assert not console.errors, console.errors


def test_secure_cookies_over_https(dashboard: Dashboard) -> None:
    # uvicorn trusts X-Forwarded-Proto from 127.0.0.1 (a TLS-terminating proxy on the same host)
    response = httpx.post(
        f"{dashboard.url}/login",
        data={"key": dashboard.keys["viewer"]},
        headers={"X-Forwarded-Proto": "https"},
    )
    assert response.status_code == 303
    set_cookies = response.headers.get_list("set-cookie")
    assert len(set_cookies) == 2 and all("Secure" in c and "SameSite=Strict" in c for c in set_cookies)


def test_expired_session_and_data_requests_without_one(dashboard: Dashboard) -> None:
    client = logged_in(dashboard, "viewer")
    assert client.get("/mlops/_dash-layout").status_code == 200
    token = client.cookies["skippy_session"]
    with session_scope(dashboard.settings.app_db_url) as db:
        db.execute(
            update(DashboardSession)
            .where(DashboardSession.token_hash == hash_key(token))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    import time

    time.sleep(5.1)  # the server trusts a verified session for up to 5 s
    answer = client.get("/mlops/_dash-layout")
    assert answer.status_code == 401 and "log in again" in answer.json()["message"]
    anonymous = httpx.post(f"{dashboard.url}/_dash-update-component", json=ack_payload(1))
    assert anonymous.status_code == 401


def test_viewer_sees_no_controls_and_a_forged_control_is_refused(
    dashboard: Dashboard, page: Any, console: Console
) -> None:
    from mlops.alerts import list_alerts, raise_alert

    raise_alert(dashboard.settings, kind="test_dashboard", severity="warning", agent=None, message="to acknowledge")
    alert_id = list_alerts(dashboard.settings, kind="test_dashboard")[0].id
    dashboard.login(page, "viewer", "/alerts")
    page.wait_for_selector("#alerts-table td")
    assert page.locator("#alerts-ack-button").count() == 0
    assert not console.errors, console.errors

    viewer = logged_in(dashboard, "viewer")
    csrf = {"X-CSRFToken": viewer.cookies["_csrf_token"]}
    refused = viewer.post("/mlops/_dash-update-component", json=ack_payload(alert_id), headers=csrf)
    assert refused.status_code == 403 and "operator role" in refused.json()["message"]
    assert list_alerts(dashboard.settings, kind="test_dashboard")[0].acknowledged_by is None

    operator = logged_in(dashboard, "operator", csrf=False)
    no_csrf = operator.post("/mlops/_dash-update-component", json=ack_payload(alert_id))
    assert no_csrf.status_code == 403 and no_csrf.json()["error"] == "csrf"
    wrong = operator.post("/mlops/_dash-update-component", json=ack_payload(alert_id), headers=csrf)
    assert wrong.status_code == 403  # the viewer's token is not the operator session's
    csrf = {"X-CSRFToken": operator.cookies["_csrf_token"]}
    done = operator.post("/mlops/_dash-update-component", json=ack_payload(alert_id), headers=csrf)
    assert done.status_code == 200, done.text
    assert list_alerts(dashboard.settings, kind="test_dashboard")[0].acknowledged_by == "dashboard:operator-key"
    junk = operator.post("/mlops/_dash-update-component", json=alerts_payload("dire"), headers=csrf)
    assert junk.status_code == 200 and "unknown severity 'dire'" in junk.text  # a notice, not a 500

    from mlops.audit import list_audit

    actions = [(r.actor, r.action, r.status_code) for r in list_audit(dashboard.settings, limit=50)]
    assert ("dashboard:viewer-key", "POST /mlops/_dash-update-component", 403) in actions
    assert any(a == "dashboard:operator-key" and act.startswith("alert ack") for a, act, _ in actions), actions
    assert ("dashboard:operator-key", "dashboard login", None) in actions
    assert ("anonymous", "dashboard login", None) in [
        (r.actor, r.action, r.status_code) for r in list_audit(dashboard.settings, action="dashboard login", limit=500)
    ]


def test_operator_acknowledges_the_alert_the_dialog_names(dashboard: Dashboard, page: Any, console: Console) -> None:
    """The selection is an alert id: a refresh that moves rows, or an acknowledgement that removes one, never
    points "Acknowledge" at another alert."""
    from mlops.alerts import list_alerts, raise_alert

    settings = dashboard.settings

    def raised(kind: str) -> int:
        raise_alert(settings, kind=kind, severity="warning", agent=None, message=f"{kind} happened")
        return list_alerts(settings, kind=kind)[0].id

    def row(alert_id: int) -> str:
        return f"#alerts-table tr:has(td[data-dash-column='id'] :text-is('{alert_id}'))"

    first, second = raised("test_ack_first"), raised("test_ack_second")
    dashboard.login(page, "operator", "/alerts")  # open alerts, newest first: second, first
    page.click(f"{row(first)} input[type=radio]")
    page.wait_for_selector(f"#alerts-ack-button:text-is('Acknowledge #{first}')")
    message = confirm(page, "#alerts-ack-button")
    assert message.startswith(f"Acknowledge alert #{first} (warning test_ack_first: test_ack_first happened)?")
    page.wait_for_selector(f"#alerts-ack-result .notice-ok:has-text('Alert #{first}')")
    page.wait_for_selector(row(first), state="detached")  # acknowledged: no longer open
    page.wait_for_selector("#alerts-ack-button:text-is('Acknowledge selected')")  # and nothing is selected
    assert confirm(page, "#alerts-ack-button").startswith("Select an alert first")
    page.wait_for_selector("#alerts-ack-result .notice-warning")
    assert list_alerts(settings, kind="test_ack_second")[0].acknowledged_by is None

    page.click(f"{row(second)} input[type=radio]")
    page.wait_for_selector(f"#alerts-ack-button:text-is('Acknowledge #{second}')")
    third = raised("test_ack_third")  # the next refresh puts it first: the second alert's row index changes
    page.wait_for_selector(row(third))
    assert page.is_checked(f"{row(second)} input[type=radio]")
    assert confirm(page, "#alerts-ack-button").startswith(f"Acknowledge alert #{second} ")
    page.wait_for_selector(f"#alerts-ack-result .notice-ok:has-text('Alert #{second}')")
    acknowledged = {
        k: list_alerts(settings, kind=f"test_ack_{k}")[0].acknowledged_by for k in ("first", "second", "third")
    }
    assert acknowledged == {"first": "dashboard:operator-key", "second": "dashboard:operator-key", "third": None}
    assert not console.errors, console.errors
