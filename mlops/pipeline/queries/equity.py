"""The champion's equity curve on its held-out test window against buy-and-hold, as its retrain logged it
(`test_equity.csv`, mlops/pipeline/artifacts.py: one row per test bar, net of costs, starting at 1).

The file holds no dates; they are recovered from the app DB: the bars of the run's symbol within its test
window (`model_performance_history`, window `test`) are the test split's bars when their number matches the
curve's length. When it does not (bars imported into that range afterwards), the curve is shown by bar
index and says so. One MLflow read per run, cached (tracking.artifacts)."""

from __future__ import annotations

import csv
import io
from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from mlops.db import session_scope
from mlops.db.models import MarketBar, ModelPerformanceHistory, ModelRun
from mlops.errors import NotFoundError
from mlops.pipeline.deployments import CHAMPION, current_aliases
from mlops.pipeline.queries.agents import known_agent
from mlops.settings import Settings

ARTIFACT = "test_equity.csv"


class EquityCurve(BaseModel):
    model_config = ConfigDict(frozen=True)

    agent_type: str
    version: int
    mlflow_run_id: str
    symbol: str | None
    strategy: list[float]  # the agent's positions, net of costs, start = 1
    buy_hold: list[float]  # holding the market over the same bars
    dates: list[datetime] | None  # the test bars' times; None: unknown, plot by bar index
    window_start: datetime | None
    window_end: datetime | None


def parse_equity_csv(text: str) -> tuple[list[float], list[float]]:
    """The two columns of `test_equity.csv` (header `agent,buy_hold`)."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header != ["agent", "buy_hold"]:
        raise NotFoundError(f"{ARTIFACT} has header {header}, expected ['agent', 'buy_hold']")
    strategy, buy_hold = [], []
    for number, row in enumerate(reader, start=2):
        if not row:
            continue
        try:
            strategy.append(float(row[0]))
            buy_hold.append(float(row[1]))
        except (ValueError, IndexError) as exc:
            raise NotFoundError(f"{ARTIFACT} line {number} is not two numbers: {row}") from exc
    return strategy, buy_hold


def champion_equity(settings: Settings, agent: str) -> EquityCurve | None:
    """The champion's test-window equity against buy-and-hold; None when the agent has no champion.
    NotFoundError when its run or its logged curve is missing."""
    known_agent(agent)
    with session_scope(settings.app_db_url) as session:
        version = current_aliases(session, agent)[CHAMPION]
        if version is None:
            return None
        run = session.execute(
            select(ModelRun.id, ModelRun.mlflow_run_id, ModelRun.symbol).where(
                ModelRun.agent_type == agent, ModelRun.model_version == version
            )
        ).first()
        if run is None or not run.mlflow_run_id:
            raise NotFoundError(f"{agent} v{version} has no model run with an MLflow run in the app DB")
        window = session.execute(
            select(ModelPerformanceHistory.window_start, ModelPerformanceHistory.window_end)
            .where(ModelPerformanceHistory.model_run_id == run.id, ModelPerformanceHistory.window == "test")
            .limit(1)
        ).first()
    from tracking.artifacts import artifact_text

    strategy, buy_hold = parse_equity_csv(artifact_text(settings, run.mlflow_run_id, ARTIFACT))
    start, end = (window.window_start, window.window_end) if window else (None, None)
    return EquityCurve(
        agent_type=agent,
        version=version,
        mlflow_run_id=run.mlflow_run_id,
        symbol=run.symbol,
        strategy=strategy,
        buy_hold=buy_hold,
        dates=_test_dates(settings, run.symbol, start, end, len(strategy)),
        window_start=start,
        window_end=end,
    )


def _test_dates(
    settings: Settings, symbol: str | None, start: datetime | None, end: datetime | None, n: int
) -> list[datetime] | None:
    if symbol is None or start is None or end is None or n == 0:
        return None
    query = (
        select(MarketBar.ts)
        .where(MarketBar.symbol == symbol, MarketBar.ts >= start, MarketBar.ts <= end)
        .order_by(MarketBar.ts)
        .limit(n + 1)  # one more tells a mismatch without reading a whole re-imported history
    )
    with session_scope(settings.app_db_url) as session:
        times = list(session.scalars(query))
    return times if len(times) == n else None
