"""The drift check, the one way in for every caller (CLI, API job, scheduler, dashboard):
prepare (flag, agent, window) → each champion → its baseline and the current window → scoring →
the registered statistics → the check's status → Evidently report → `drift_metrics`, all in one audit row.

`prepare_drift_check` holds every validation of a request: `check_drift`/`check_all` run it first, and
a queued check also when it is submitted (refused at once, not as a failed job). The audit row
("drift check", {agent, window_bars}, {check_ids, status per agent}) is the same whoever calls."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from mlops.agents.specs import get_spec
from mlops.audit import audited
from mlops.data.features import FEATURE_NAMES
from mlops.errors import InvalidRequestError, NotFoundError
from mlops.flags import require
from mlops.logs import get_logger
from mlops.pipeline.drift.records import DriftCheck, record_check
from mlops.pipeline.drift.statistics import check_status, insufficient, measure
from mlops.pipeline.drift.window import load_baseline, load_window, score_window
from mlops.settings import AGENTS, Settings

log = get_logger(__name__)
ACTION = "drift check"


@dataclass(frozen=True)
class DriftCheckParams:
    """A validated drift check request."""

    agent: str | None  # None: every agent that has a champion
    window_bars: int  # the configured default when none was asked for


def _window_bars(settings: Settings, window_bars: int | None) -> int:
    return settings.drift_window_bars if window_bars is None else window_bars


def prepare_drift_check(settings: Settings, *, agent: str | None, window_bars: int | None) -> DriftCheckParams:
    """Every check a drift check request must pass, written once for the inline and the queued path: the
    `mlops_drift_detection` flag, a known agent, a window of at least one bar. The champion and its
    baseline are looked up when the check runs (a queued check may see a newer champion)."""
    require(settings, "mlops_drift_detection")
    if agent is not None:
        get_spec(agent)
    window = _window_bars(settings, window_bars)
    if window < 1:
        source = "SKIPPY_DRIFT_WINDOW_BARS" if window_bars is None else "window_bars"
        raise InvalidRequestError(f"{source} must be >= 1, got {window}")
    return DriftCheckParams(agent, window)


def check_drift(settings: Settings, *, actor: str, agent: str, window_bars: int | None = None) -> DriftCheck:
    """Check `agent`'s champion on the newest `window_bars` bars (default: drift_window_bars)."""
    (check,) = _audited_checks(settings, actor=actor, agent=agent, window_bars=window_bars)
    return check


def check_all(settings: Settings, *, actor: str, window_bars: int | None = None) -> list[DriftCheck]:
    """Check every agent that has a champion (none: an empty list)."""
    return _audited_checks(settings, actor=actor, agent=None, window_bars=window_bars)


def _audited_checks(settings: Settings, *, actor: str, agent: str | None, window_bars: int | None) -> list[DriftCheck]:
    # The window as it will run (the default resolved), so a queued and an inline check write the same row;
    # resolved before validation so that a refused request is audited too.
    parameters = {"agent": agent, "window_bars": _window_bars(settings, window_bars)}
    try:
        params = prepare_drift_check(settings, agent=agent, window_bars=window_bars)
    except Exception:
        with audited(settings, actor=actor, action=ACTION, parameters=parameters):
            raise
    return execute_drift_check(settings, params, actor=actor)


def execute_drift_check(settings: Settings, params: DriftCheckParams, *, actor: str) -> list[DriftCheck]:
    """Run a prepared check (validated once, by `prepare_drift_check`, inline or when it was queued) and
    write its audit row."""
    parameters = {"agent": params.agent, "window_bars": params.window_bars}
    with audited(settings, actor=actor, action=ACTION, parameters=parameters) as result:
        checks = [_check(settings, a, version, params.window_bars) for a, version in _champions(settings, params.agent)]
        result.update({"check_ids": [c.check_id for c in checks], "status": {c.agent_type: c.status for c in checks}})
    return checks


def _champions(settings: Settings, agent: str | None) -> list[tuple[str, int]]:
    """(agent, champion version) of `agent`, or of every agent that has a champion."""
    from tracking import registry

    if agent is None:
        versions = {a: registry.alias_version(settings, a, registry.CHAMPION) for a in AGENTS}
        return [(a, v) for a, v in versions.items() if v is not None]
    version = registry.alias_version(settings, agent, registry.CHAMPION)
    if version is None:
        raise NotFoundError(f"{agent} has no champion to check for drift")
    return [(agent, version)]


def _check(settings: Settings, agent: str, version: int, window_bars: int) -> DriftCheck:
    """One champion: a window shorter than drift_min_window_bars is `insufficient` on every statistic."""
    baseline = load_baseline(settings, agent, version)
    current = load_window(settings, baseline.symbol, window_bars)
    check_id = uuid.uuid4().hex[:16]
    n = len(current.features)
    report: dict[str, str] = {}
    if n < settings.drift_min_window_bars:
        rows = insufficient(settings, n)
    else:
        window = score_window(settings, get_spec(agent), version, baseline, current)
        rows = measure(settings, baseline.payload, window)
        if settings.drift_report:
            report = _report(settings, baseline.payload, current.features, check_id)
    check = DriftCheck(
        check_id, agent, version, baseline.symbol, check_status(rows), n, current.start, current.end, rows, report
    )
    record_check(settings, check, baseline)
    log.info(
        "drift check",
        agent_type=agent,
        model_version=version,
        drift_status=check.status,
        check_id=check_id,
        metrics={r.drift_type: r.value for r in check.summary()},
    )
    return check


def _report(settings: Settings, baseline: Mapping[str, Any], current: pd.DataFrame, check_id: str) -> dict[str, str]:
    from drift.report import write_report

    try:
        reference = pd.DataFrame(baseline["sample"])[list(FEATURE_NAMES)]
        folder = settings.home / "reports" / "drift" / check_id
        return write_report(reference, current[list(FEATURE_NAMES)], folder, settings.drift_report_rows, settings.seed)
    except Exception as exc:  # the report is for people; our numbers stand without it
        log.warning("drift report failed", check_id=check_id, error=str(exc))
        return {"error": str(exc)}
