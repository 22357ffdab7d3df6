"""The Controls page as an operator, an admin and a viewer use it: a retrain confirmed in the browser and
watched to its end, the grid editor refusing a bad value, flags for admins only, and forged control
requests refused with 403 (changing nothing)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from mlops.audit import list_audit
from mlops.flags import list_flags, set_flag
from mlops.pipeline.deployments import list_deployments
from mlops.pipeline.queries import list_models, list_runs
from mlops.pipeline.sweeps import list_sweeps
from tests.dashboard.conftest import Console, Dashboard, callback, confirm, logged_in

pytestmark = pytest.mark.slow

TERMINAL = ".controls-job-succeeded, .controls-job-rejected, .controls-job-failed, .controls-job-cancelled"
HIDDEN_UNITS_ROW = 5  # HYPERPARAMETER_NAMES: learning_rate, batch_size, epochs, risk_threshold, l2, hidden_units


RETRAIN = callback(
    [("controls-retrain-result", "children"), ("controls-retrain-job", "data")],
    [("controls-retrain", "submit_n_clicks", 1)],
    [("controls-agent", "value", "market_insight"), ("controls-retrain-job", "data", None)],
)


def set_flag_payload(name: str, state: str) -> dict[str, Any]:
    return callback(
        [("controls-flag-result", "children"), ("controls-flag-set", "data")],
        [("controls-flag", "submit_n_clicks", 1)],
        [("controls-flag-name", "value", name), ("controls-flag-state", "value", state)],
    )


def sweep_payload(values: str) -> dict[str, Any]:
    rows = [{"name": "learning_rate", "values": "0.01"}, {"name": "hidden_units", "values": values}]
    return callback(
        [("controls-sweep-result", "children"), ("controls-sweep-job", "data")],
        [("controls-sweep", "submit_n_clicks", 1)],
        [
            ("controls-sweep-agent", "value", "market_insight"),
            ("controls-grid", "data", rows),
            ("controls-objective", "value", "sharpe_ratio"),
            ("controls-sweep-name", "value", None),
            ("controls-sweep-job", "data", None),
        ],
    )


def champion(dashboard: Dashboard) -> int | None:
    return list_models(dashboard.settings, "market_insight")[0].champion


def test_operator_retrains_watches_the_job_promotes_and_rolls_back(
    dashboard: Dashboard, page: Any, console: Console
) -> None:
    before = champion(dashboard)
    dashboard.login(page, "operator", "/controls")
    page.wait_for_selector("#controls-retrain-button")
    assert page.locator("#controls-flags-card").count() == 0  # flags are for admins
    message = confirm(page, "#controls-retrain-button")
    assert message.startswith("Retrain market_insight now?") and "validation gate" in message
    page.wait_for_selector("#controls-retrain-result .notice-ok")
    page.wait_for_selector(f"#controls-jobs-panel :is({TERMINAL})", timeout=240_000)
    panel = page.inner_text("#controls-jobs-panel")
    assert "retrain of market_insight" in panel
    link = page.locator("#controls-jobs-panel .controls-run-link").first
    run_id = int(link.inner_text().lstrip("#"))
    assert link.get_attribute("href") == f"/mlops/runs?run={run_id}"
    run = next(r for r in list_runs(dashboard.settings, agent="market_insight", limit=20) if r.id == run_id)
    assert run.trigger == "dashboard" and run.requested_by == "dashboard:operator-key"
    assert run.status in ("succeeded", "rejected", "failed") and run.status in panel
    if run.mlflow_run_id:  # its MLflow run is linked too
        assert page.locator(f"#controls-jobs-panel a.mlflow[href$='/#/runs/{run.mlflow_run_id}']").count() == 1

    # Promote the new version (forced if the gate rejected it), then roll back: the champion ends where it was
    # (the other tests of this session share the store).
    assert run.model_version is not None
    if run.deployment_status != "promoted":
        page.click("#controls-version")
        page.get_by_role("option", name=re.compile(rf"^v{run.model_version} ")).click()
        label = f"Promote v{run.model_version}"
        if run.deployment_status == "rejected":
            page.check("#controls-force input[value='force']")
            label += " (force)"
        page.wait_for_selector(f"#controls-promote-button:text-is('{label}')")
        promoted = confirm(page, "#controls-promote-button")
        assert promoted.startswith(f"Make market_insight v{run.model_version} the champion (now v{before})?"), promoted
        page.wait_for_selector("#controls-deploy-result .notice-ok")
        assert champion(dashboard) == run.model_version
    page.wait_for_selector(
        f"#controls-deploy-state:has-text('champion v{run.model_version}, the one before it v{before}')"
    )
    rolled = confirm(page, "#controls-rollback-button")
    assert rolled.startswith(f"Roll market_insight's champion back from v{run.model_version} to v{before}"), rolled
    page.wait_for_selector("#controls-deploy-result .notice-ok:has-text('rollback')")
    assert champion(dashboard) == before
    moves = list_deployments(dashboard.settings, "market_insight", 3)
    assert moves[0].action == "rollback" and moves[0].actor == "dashboard:operator-key"

    # The new run on the Runs page, through the panel's link.
    page.click("#controls-jobs-panel .controls-run-link")
    page.wait_for_selector(f"#runs-detail h3:text-is('Run #{run_id}')")
    assert "trigger dashboard, requested by dashboard:operator-key" in page.inner_text("#runs-detail")

    actions = [(r.actor, r.action) for r in list_audit(dashboard.settings, limit=50)]
    assert ("dashboard:operator-key", "retrain queued") in actions, actions
    assert not console.errors, console.errors


def test_the_grid_editor_refuses_a_bad_value_and_submits_nothing(
    dashboard: Dashboard, page: Any, console: Console
) -> None:
    sweeps = len(list_sweeps(dashboard.settings, None, 500))
    dashboard.login(page, "operator", "/controls")
    page.wait_for_selector("#controls-grid td")
    assert page.is_disabled("#controls-sweep-button")
    cell = page.locator("#controls-grid td[data-dash-column='values']").nth(HIDDEN_UNITS_ROW)
    cell.click()
    page.keyboard.type("8, big")
    page.keyboard.press("Enter")
    page.click("#controls-grid-validate")
    page.wait_for_selector("#controls-grid-check .notice-error")
    assert "hidden_units: 'big' is not a number" in page.inner_text("#controls-grid-check")
    assert page.is_disabled("#controls-sweep-button")

    cell.click()
    page.keyboard.type("8, 16")
    page.keyboard.press("Enter")
    page.click("#controls-grid-validate")
    page.wait_for_selector("#controls-grid-check .notice-ok")
    assert "Valid grid: 18 points" in page.inner_text("#controls-grid-check")  # 3 learning rates × 2 × 3 l2
    assert page.is_enabled("#controls-sweep-button")
    cell.click()
    page.keyboard.type("8")
    page.keyboard.press("Enter")
    page.wait_for_selector("#controls-sweep-button[disabled]")  # an edit needs validating again

    # The server checks again: a grid the browser let through is refused there, naming the problem.
    operator = logged_in(dashboard, "operator")
    answer = operator.post("/mlops/_dash-update-component", json=sweep_payload("8, 0.5"))
    assert answer.status_code == 200 and "hidden_units: 0.5 is not an integer" in answer.text
    assert len(list_sweeps(dashboard.settings, None, 500)) == sweeps
    assert not console.errors, console.errors


def test_admin_switches_a_flag_and_a_disabled_feature_is_an_error_notice(
    dashboard: Dashboard, page: Any, console: Console
) -> None:
    settings = dashboard.settings
    flags = list_flags(settings)
    try:
        dashboard.login(page, "admin", "/controls")
        page.wait_for_selector("#controls-flags-table td")
        page.check("#controls-flag-name input[value='mlops_drift_detection']")
        page.check("#controls-flag-state input[value='off']")
        page.wait_for_selector("#controls-flag-button:text-is('Turn mlops_drift_detection off')")
        message = confirm(page, "#controls-flag-button")
        assert message.startswith("Turn the feature flag mlops_drift_detection off (run drift checks;"), message
        page.wait_for_selector("#controls-flag-result .notice-ok")
        assert not next(f for f in list_flags(settings) if f.name == "mlops_drift_detection").enabled

        confirm(page, "#controls-drift-button")
        page.wait_for_selector("#controls-drift-result .notice-error")
        assert "feature flag mlops_drift_detection is off" in page.inner_text("#controls-drift-result")
    finally:  # as they were: the other tests of this session share the store
        for flag in flags:
            if flag.source == "database":
                set_flag(settings, flag.name, flag.enabled, actor="test")
            elif flag.source == "default":
                set_flag(settings, flag.name, True, actor="test")
    actions = [(r.actor, r.action) for r in list_audit(settings, limit=50)]
    assert ("dashboard:admin-key", "flag set") in actions, actions
    assert not console.errors, console.errors


def test_viewer_sees_no_controls_and_forged_controls_are_refused(
    dashboard: Dashboard, page: Any, console: Console
) -> None:
    dashboard.login(page, "viewer", "/controls")
    page.wait_for_selector("#page .notice")
    assert page.locator("#nav-controls").count() == 0
    assert "needs the operator role" in page.inner_text("#page")
    assert page.locator("#page button").count() == 0
    assert not console.errors, console.errors

    runs = [r.id for r in list_runs(dashboard.settings, limit=5)]
    viewer = logged_in(dashboard, "viewer")
    refused = viewer.post("/mlops/_dash-update-component", json=RETRAIN)
    assert refused.status_code == 403 and "operator role" in refused.json()["message"]
    assert [r.id for r in list_runs(dashboard.settings, limit=5)] == runs

    flags = list_flags(dashboard.settings)
    operator = logged_in(dashboard, "operator")
    refused = operator.post("/mlops/_dash-update-component", json=set_flag_payload("mlops_auto_retrain", "off"))
    assert refused.status_code == 403 and "admin role" in refused.json()["message"]
    assert list_flags(dashboard.settings) == flags
    flags_read = callback(
        [("controls-flags-table", "data")], [("refresh", "n_intervals", 1), ("controls-flag-set", "data", None)]
    )
    refused = operator.post("/mlops/_dash-update-component", json=flags_read)  # reads are admin-only too
    assert refused.status_code == 403 and "admin role" in refused.json()["message"]
    admin = logged_in(dashboard, "admin")
    assert admin.post("/mlops/_dash-update-component", json=flags_read).status_code == 200

    # Junk a page never sends: a notice or a 4xx naming the problem, never a 500.
    promote = callback(
        [("controls-deploy-result", "children"), ("controls-deployed", "data")],
        [("controls-promote", "submit_n_clicks", 1), ("controls-rollback", "submit_n_clicks", None)],
        [
            ("controls-deploy-agent", "value", "market_insight"),
            ("controls-version", "value", "abc"),
            ("controls-force", "value", []),
        ],
    )
    answer = operator.post("/mlops/_dash-update-component", json=promote)
    assert answer.status_code == 200 and "a model version is a positive whole number, not 'abc'" in answer.text
    schedule = callback([("controls-schedule", "message")], [("controls-schedule-name", "value", "nope")])
    answer = operator.post("/mlops/_dash-update-component", json=schedule)
    assert answer.status_code == 422 and "unknown scheduled job 'nope'" in answer.json()["message"], answer.text
    flag_message = callback(
        [("controls-flag", "message"), ("controls-flag-button", "children")],
        [("controls-flag-name", "value", "nope"), ("controls-flag-state", "value", "on")],
    )
    answer = admin.post("/mlops/_dash-update-component", json=flag_message)
    assert answer.status_code == 422 and "unknown feature flag 'nope'" in answer.json()["message"], answer.text
    follow = callback(
        [("sweeps-job-status", "children"), ("sweeps-job-poll", "disabled")],
        [("sweeps-job", "data", 10**9), ("sweeps-job-poll", "n_intervals", 3)],
    )
    answer = viewer.post("/mlops/_dash-update-component", json=follow)  # a job pruned since: said once, no polling
    assert answer.status_code == 200 and f"no job with id {10**9}" in answer.text and '"disabled":true' in answer.text

    audit = [(r.actor, r.action, r.status_code) for r in list_audit(dashboard.settings, limit=50)]
    assert ("dashboard:viewer-key", "POST /mlops/_dash-update-component", 403) in audit
    assert ("dashboard:operator-key", "POST /mlops/_dash-update-component", 403) in audit
