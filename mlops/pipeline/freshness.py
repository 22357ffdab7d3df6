"""Has the market moved on since a model was trained? A scheduled retrain with no bar newer than its
champion's data is skipped, and after a rejected drift-triggered retrain the loop waits for new bars.

The reference is a run's `data_end`: the newest bar its data held. Runs trained before that column
existed have none, and count as stale (retraining is the safe answer when we cannot tell)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mlops.data.store import as_utc, last_bar_time
from mlops.db import session_scope
from mlops.db.models import ModelRun
from mlops.pipeline.deployments import CHAMPION, current_aliases
from mlops.settings import Settings


@dataclass(frozen=True)
class Freshness:
    agent_type: str
    model_run_id: int | None  # the run the comparison is against (None: no such run)
    model_version: int | None
    symbol: str | None
    trained_through: datetime | None  # the newest bar that run's data held
    newest_bar: datetime | None  # the newest bar of that symbol now

    @property
    def has_new_bars(self) -> bool:
        if self.trained_through is None or self.newest_bar is None:
            return self.newest_bar is not None or self.model_run_id is None
        return self.newest_bar > self.trained_through

    def describe(self) -> str:
        what = f"v{self.model_version}" if self.model_version is not None else f"run {self.model_run_id}"
        if self.model_run_id is None:
            return f"{self.agent_type} has no trained model to compare with"
        if self.trained_through is None:
            return f"{self.agent_type} {what} predates the record of its data's end: treated as stale"
        if self.newest_bar is None:
            return f"no {self.symbol} bars in the store"
        if self.has_new_bars:
            return (
                f"{self.symbol} has bars up to {self.newest_bar:%Y-%m-%d %H:%M} UTC, newer than the "
                f"{self.trained_through:%Y-%m-%d %H:%M} UTC {what} of {self.agent_type} was trained through"
            )
        return (
            f"no new {self.symbol} bars since {self.agent_type} {what} was trained "
            f"(through {self.trained_through:%Y-%m-%d %H:%M} UTC)"
        )


def version_run(session: Session, agent: str, version: int) -> ModelRun | None:
    """The run that registered `agent` v`version` (the newest, should a version have been registered twice)."""
    return session.scalars(
        select(ModelRun)
        .where(ModelRun.agent_type == agent, ModelRun.model_version == version)
        .order_by(ModelRun.id.desc())
        .limit(1)
    ).first()


def _freshness(settings: Settings, agent: str, run: ModelRun | None) -> Freshness:
    if run is None:
        return Freshness(agent, None, None, None, None, None)
    newest = last_bar_time(settings.app_db_url, run.symbol) if run.symbol else None
    through = as_utc(run.data_end) if run.data_end is not None else None
    return Freshness(agent, run.id, run.model_version, run.symbol, through, newest[0] if newest else None)


def run_freshness(settings: Settings, run_id: int) -> Freshness:
    """New bars since the data of run `run_id` (e.g. a rejected retrain) ended."""
    with session_scope(settings.app_db_url) as session:
        run = session.get(ModelRun, run_id)
        if run is not None:
            session.expunge(run)
    return _freshness(settings, run.agent_type if run else "?", run)


def champion_freshness(settings: Settings, agent: str) -> Freshness:
    """New bars since the data of `agent`'s champion (from the deployment history: no MLflow) ended.
    No champion: `has_new_bars` is True (there is nothing to be stale against)."""
    with session_scope(settings.app_db_url) as session:
        version = current_aliases(session, agent)[CHAMPION]
        run = version_run(session, agent, version) if version is not None else None
        if run is not None:
            session.expunge(run)
    return _freshness(settings, agent, run)
