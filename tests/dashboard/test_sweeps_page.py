"""The Sweeps page as users see it: the session's 4-point sweep with its parallel coordinates, trials and best
trial's deflated significance; a viewer gets no register button (and a forged call gets 403); an operator
registers the best configuration and follows its job to the gate's verdict."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from mlops.jobs import list_jobs
from mlops.pipeline.queries import list_runs
from tests.dashboard.conftest import Console, Dashboard
from tests.dashboard.test_sessions import logged_in

pytestmark = pytest.mark.slow
GATE_SECONDS = 180_000  # ms: a retrain of the small store, queued behind whatever the dispatcher runs


def register_payload(sweep_id: int) -> dict[str, Any]:
    """What the page's "Register best through the gate" sends: a forged request builds it by hand."""
    return {
        "output": "..sweeps-register-result.children...sweeps-job.data..",
        "outputs": [{"id": "sweeps-register-result", "property": "children"}, {"id": "sweeps-job", "property": "data"}],
        "inputs": [{"id": "sweeps-register", "property": "submit_n_clicks", "value": 1}],
        "changedPropIds": ["sweeps-register.submit_n_clicks"],
        "state": [{"id": "sweeps-selected", "property": "data", "value": sweep_id}],
    }


def trial_rows(page: Any) -> Any:
    return page.locator("#sweeps-trials tr").filter(has=page.locator("td"))


def test_viewer_sees_the_sweep_and_its_trials_but_no_register_button(
    dashboard: Dashboard, page: Any, console: Console
) -> None:
    dashboard.login(page, "viewer", "/sweeps")
    sweep_row = page.locator("#sweeps-table tr").filter(
        has=page.locator('td[data-dash-column="id"]', has_text=re.compile(rf"^\s*{dashboard.sweep_id}\s*$"))
    )
    sweep_row.wait_for()
    assert "4/4" in sweep_row.inner_text() and "completed" in sweep_row.inner_text()
    assert sweep_row.locator('a[href*="/#/runs/"]').count() == 1  # the parent run in the MLflow UI
    assert page.locator("#sweeps-detail").is_hidden()
    sweep_row.locator("input").click()  # select the row

    page.wait_for_selector("#sweeps-parcoords .parcoords")
    page.wait_for_function("document.querySelectorAll('#sweeps-trials tr td').length > 0")
    assert trial_rows(page).count() == 4
    assert page.locator('#sweeps-trials a[href*="/#/runs/"]').count() == 4  # each trial's nested run
    assert "complete" in trial_rows(page).first.inner_text()
    significance = page.inner_text("#sweeps-significance")
    assert "over 4 trials" in significance or "No deflated significance" in significance, significance
    assert page.locator("#sweeps-best-card a.mlflow").count() == 1
    assert page.locator("#sweeps-register-button").count() == 0
    assert not console.errors, console.errors


def test_a_forged_register_call_from_a_viewer_is_refused(dashboard: Dashboard) -> None:
    viewer = logged_in(dashboard, "viewer")
    before = len(list_jobs(dashboard.settings, kind="retrain", limit=500))
    csrf = {"X-CSRFToken": viewer.cookies["_csrf_token"]}
    refused = viewer.post("/mlops/_dash-update-component", json=register_payload(dashboard.sweep_id), headers=csrf)
    assert refused.status_code == 403 and "operator role" in refused.json()["message"]
    assert len(list_jobs(dashboard.settings, kind="retrain", limit=500)) == before


def _wait_for_no_retrain_of(dashboard: Dashboard, agent: str) -> None:
    """Other tests of the session may have left a retrain of the agent running: its lock would refuse ours."""
    deadline = time.monotonic() + GATE_SECONDS / 1000
    while time.monotonic() < deadline:
        active = [
            j for j in list_jobs(dashboard.settings, kind="retrain", agent=agent) if j.status in ("queued", "running")
        ]
        if not active:
            return
        time.sleep(0.5)
    raise AssertionError(f"a retrain of {agent} is still active: {active}")


def test_operator_registers_the_best_trial_through_the_gate(dashboard: Dashboard, page: Any, console: Console) -> None:
    _wait_for_no_retrain_of(dashboard, "market_insight")
    dashboard.login(page, "operator", f"/sweeps?sweep={dashboard.sweep_id}")
    page.wait_for_selector("#sweeps-parcoords .parcoords")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#sweeps-register-button")
    page.wait_for_selector("#sweeps-register-result .notice-info")  # "Queued as job #N: ..."
    page.wait_for_function(
        "['succeeded', 'rejected'].includes(document.querySelector('#sweeps-job-state')?.textContent)",
        timeout=GATE_SECONDS,
    )
    verdict = page.inner_text("#sweeps-job-state")
    [job] = [j for j in list_jobs(dashboard.settings, kind="retrain") if j.parameters.get("trigger") == "sweep"][:1]
    assert job.status == verdict and job.requested_by == "dashboard:operator-key"
    runs = [r for r in list_runs(dashboard.settings, trigger="sweep") if r.id == job.model_run_id]
    assert runs and runs[0].status == verdict
    assert page.locator(f'#sweeps-job-status a[href="/mlops/runs?run={job.model_run_id}"]').count() == 1
    assert re.search(r"Job #\d+ (succeeded|rejected): \S", page.inner_text("#sweeps-job-status"))  # with the reason
    assert not console.errors, console.errors
