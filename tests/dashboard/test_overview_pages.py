"""Overview (the landing page), Performance and Feature importance as a viewer sees them, on the session's
trained store: real traces in every figure, versions linked to the MLflow UI, no console errors."""

from __future__ import annotations

from typing import Any

import pytest

from mlops.insights import get_insight
from mlops.pipeline.queries import list_models, list_runs
from mlops.scheduler import JOBS
from tests.dashboard.conftest import Console, Dashboard

pytestmark = pytest.mark.slow

VERSION_1 = "#/models/market_insight/versions/1"


def test_viewer_reads_overview_performance_and_importance(dashboard: Dashboard, page: Any, console: Console) -> None:
    # The store is shared with the other dashboard tests (which retrain, promote and roll back): expectations
    # come from the services, not from the order the tests ran in.
    champion_version = next(m.champion for m in list_models(dashboard.settings) if m.agent_type == "market_insight")
    last = list_runs(dashboard.settings, agent="market_insight", limit=1)[0]
    dashboard.login(page, "viewer", "/")
    page.wait_for_selector("#overview-agent-market_insight #overview-metrics-market_insight")
    assert page.url.endswith("/mlops/") and page.inner_text("#page h2") == "Overview"  # the landing page
    champion = page.locator("#overview-metrics-market_insight th a", has_text=f"v{champion_version}")
    assert champion.get_attribute("href").endswith(f"#/models/market_insight/versions/{champion_version}")
    metrics = page.inner_text("#overview-metrics-market_insight")
    assert "Sharpe, test" in metrics and "(buy & hold)" in metrics and "(majority class)" in metrics
    verdict = page.inner_text("#overview-verdict-market_insight")
    assert (f"v{last.model_version}" in verdict) if last.model_version else verdict, verdict
    assert "(coin flip)" in page.inner_text("#overview-metrics-risk_assessor")  # risk_assessor's AUC baseline
    drift = page.inner_text("#overview-drift-market_insight")
    assert all(f"{kind}:" in drift for kind in ("feature", "prediction", "performance"))
    assert "No drift check yet" in page.inner_text("#overview-agent-risk_assessor")  # only market_insight checked
    assert page.inner_text("#overview-alert-count").isdigit()
    assert page.locator("#overview-schedule tbody tr").count() == len(JOBS)
    insight = get_insight(dashboard.settings, "retrain", last.id)
    box = page.locator("#overview-insight-market_insight")
    if insight is None:
        assert box.count() == 0
    else:
        assert insight.text[:40] in box.inner_text() and insight.source in box.inner_text()

    page.click("#nav-performance")
    page.wait_for_selector("#performance-history .scatterlayer .trace")
    page.wait_for_selector("#performance-equity .scatterlayer .trace")
    assert page.locator("#performance-history .scatterlayer .trace").count() >= 1  # v1's live score
    assert page.locator("#performance-history .annotation-text", has_text="promotion v1").count() >= 1
    assert page.locator("#performance-equity .scatterlayer .trace").count() == 2  # champion and buy & hold
    assert "SYNTH test bars" in page.locator("#performance-equity .g-xtitle").text_content()  # dates recovered
    equity_link = page.locator("#performance-equity-links a", has_text=f"v{champion_version}")
    assert equity_link.get_attribute("href").endswith(f"#/models/market_insight/versions/{champion_version}")

    page.click("#nav-importance")
    page.wait_for_selector("#importance-heatmap .heatmaplayer .hm")
    page.wait_for_selector("#importance-ranking .barlayer .trace")
    assert page.locator("#importance-versions a", has_text="v1").get_attribute("href").endswith(VERSION_1)
    assert not console.errors, console.errors
