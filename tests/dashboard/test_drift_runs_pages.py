"""The Drift and Runs & jobs pages as a viewer sees them, on the session's trained store: the figures drawn
from the stored check, its table and Evidently report (served only to a session), the runs with their
filters, and a run's detail opened from a link (?run=)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mlops.insights import InsightRecord, get_insight
from tests.dashboard.conftest import Console, Dashboard

pytestmark = pytest.mark.slow


def assert_insight(shown: str, record: InsightRecord | None, otherwise: str) -> None:
    """The insight box shows the stored explanation (its text and where it came from), or why there is none."""
    if record is None:
        assert otherwise in shown, shown
    else:
        assert record.text[:40] in shown and record.source in shown, shown


TRACES = "id => document.getElementById(id).querySelectorAll('.scatterlayer .trace').length"


def test_drift_page_draws_the_check_and_serves_its_report_to_a_session_only(
    dashboard: Dashboard, page: Any, console: Console
) -> None:
    dashboard.login(page, "viewer", "/drift")
    page.wait_for_selector("#drift-table td")
    for kind in ("feature", "prediction", "performance"):  # the statistic and both floors
        page.wait_for_function(f"({TRACES})('drift-{kind}') === 3")
    page.wait_for_selector("#drift-heatmap .hm")
    assert "KL ÷ critical floor" in page.inner_text("#drift-heatmap")
    assert dashboard.check_id in page.inner_text("#drift-check-info")
    rows = page.locator("#drift-table tbody tr:has(td)")
    assert rows.count() >= 3 + 13  # the three summary rows and market_insight's 13 features
    critical = "critical; no explanation" if "critical" in page.inner_text("#drift-check-info") else "not critical"
    page.wait_for_selector("#drift-insight :is(.insight, .notice, p)")
    insight = get_insight(dashboard.settings, "drift", dashboard.check_id)
    assert_insight(page.inner_text("#drift-insight"), insight, critical)

    report = f"{dashboard.url}/reports/drift/{dashboard.check_id}"
    assert page.get_attribute("#drift-report-link", "href") == f"/mlops/reports/drift/{dashboard.check_id}"
    answer = page.request.get(report)  # the page's own cookies
    assert answer.status == 200 and answer.headers["content-type"].startswith("text/html")
    # Third-party HTML, sandboxed: its scripts run, in an opaque origin (no cookies, no session)
    assert answer.headers["content-security-policy"] == "sandbox allow-scripts"
    anonymous = httpx.get(report, follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/mlops/login")
    for bad in ("0123456789abcdef", "not-a-check!"):
        refused = page.request.get(f"{dashboard.url}/reports/drift/{bad}")
        assert refused.status == 404 and "no drift check" in refused.json()["message"]

    page.click("#drift-report-show")  # loaded on request only: it weighs megabytes
    frame = page.frame_locator("iframe.report-frame")
    frame.get_by_text("Dataset Drift").first.wait_for()  # drawn by its scripts, in the sandbox
    assert page.get_attribute("iframe.report-frame", "sandbox") == "allow-scripts"
    inside = next(f for f in page.frames if f.url.endswith(f"/reports/drift/{dashboard.check_id}"))
    cookie = "() => { try { return document.cookie } catch (e) { return 'refused: ' + e.name } }"
    assert inside.evaluate(cookie) == "refused: SecurityError"

    page.goto(f"{dashboard.url}/drift?check=nope")  # a link to a check that is not there: says so, shows the newest
    page.wait_for_selector("#drift-table td")
    assert "No drift check 'nope'" in page.inner_text(".notice-error")
    assert dashboard.check_id in page.inner_text("#drift-check-info")
    assert not console.errors, console.errors


def test_runs_page_filters_runs_and_opens_one_from_a_link(dashboard: Dashboard, page: Any, console: Console) -> None:
    dashboard.login(page, "viewer", "/runs")
    page.wait_for_selector("#runs-table td")
    agents = (
        "() => Array.from(document.querySelectorAll('#runs-table td[data-dash-column=agent]')).map(c => c.innerText)"
    )
    assert {"market_insight", "risk_assessor"} <= set(page.evaluate(agents))
    page.click("#runs-agent")
    page.get_by_role("option", name="risk_assessor").click()
    page.wait_for_function(f"(({agents})()).every(a => a === 'risk_assessor')")
    assert page.locator("#runs-jobs").count() == 1 and page.locator("#runs-executions").count() == 1

    page.goto(f"{dashboard.url}/runs?run=1")
    page.wait_for_selector("#runs-verdict")
    detail = page.inner_text("#runs-detail")
    assert "Run #1" in detail and "market_insight" in detail
    assert "promotion gate" in page.inner_text("#runs-verdict")
    assert page.locator("#runs-detail a.mlflow").count() == 2  # the MLflow run and the model version
    page.wait_for_selector("#runs-insight")
    run_insight = get_insight(dashboard.settings, "retrain", 1)
    assert_insight(page.inner_text("#runs-insight"), run_insight, "No explanation was written for this run.")

    page.goto(f"{dashboard.url}/runs?run=abc")
    page.wait_for_selector("#runs-detail .notice-error")
    assert "must be a model run's id" in page.inner_text("#runs-detail .notice-error")
    assert not console.errors, console.errors
