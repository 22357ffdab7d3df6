"""Close a sweep once its grid is exhausted (or it is stopped): the best trial, judged for selection
bias (`sweeps.selection`), goes to the app DB row and the parent MLflow run, which is ended."""

from __future__ import annotations

from typing import Any

from mlops.db.sweeps import (
    TERMINAL,
    SelectionReport,
    SweepRecord,
    TrialRecord,
    finish_sweep_once,
    get_sweep,
    ranked_trials,
)
from mlops.logs import get_logger
from mlops.settings import Settings
from sweeps.selection import assess_selection
from sweeps.study import progress

log = get_logger(__name__)


def finalize(settings: Settings, sweep_id: int, *, stop_reason: str | None = None) -> SweepRecord:
    """Close the sweep when its grid is exhausted, or now as `stopped` with `stop_reason` (resumable:
    its remaining points stay queued). Idempotent: only the first caller writes."""
    from tracking.runs import end_run, log_batch

    sweep = get_sweep(settings, sweep_id)
    if sweep.status in TERMINAL:
        return sweep
    state = progress(settings, sweep_id)
    if state.remaining and stop_reason is None:
        return sweep
    status = "completed" if not state.remaining else "stopped"
    ranked = [t for t in ranked_trials(settings, sweep) if t.status == "complete"]
    best = ranked[0] if ranked else None
    selection = judge_selection(sweep, ranked)
    if not finish_sweep_once(
        settings,
        sweep_id,
        status=status,
        n_complete=state.complete,
        n_failed=state.failed,
        best_trial_number=best.trial_number if best else None,
        best_value=best.objective_value if best else None,
        best_params=best.params if best else None,
        selection=selection.to_json(),
        error=stop_reason,
    ):
        return get_sweep(settings, sweep_id)
    if sweep.parent_run_id:
        metrics: dict[str, float] = {
            "n_complete": state.complete,
            "n_failed": state.failed,
            "n_remaining": state.remaining,
        }
        params: dict[str, Any] = {}
        if best is not None:
            metrics[f"best_{sweep.objective_metric}"] = float(best.objective_value or 0.0)
            metrics |= {f"best_trial_{k}": v for k, v in best.metrics.items() if not k.startswith("test_")}
            params = {f"best_{k}": v for k, v in best.params.items()} | {"best_trial_number": best.trial_number}
        if selection.dsr is not None:
            metrics |= {
                "best_deflated_sharpe_ratio": selection.dsr,
                "best_expected_max_sharpe": float(selection.expected_max_sharpe or 0.0),
                "best_psr": float(selection.psr_vs_zero or 0.0),
            }
        log_batch(
            settings,
            sweep.parent_run_id,
            params=params,
            metrics=metrics,
            tags={
                "skippy.status": status,
                "skippy.best_child_run_id": (best.child_run_id or "") if best else "",
                "skippy.selection_verdict": selection.verdict[:5000],
            },
        )
        end_run(settings, sweep.parent_run_id, "FINISHED")
    log.info(
        "sweep finished",
        sweep_id=sweep_id,
        agent_type=sweep.agent_type,
        deployment_status=status,
        metrics={"complete": state.complete, "failed": state.failed, "best": best.objective_value if best else None},
    )
    return get_sweep(settings, sweep_id)


def judge_selection(sweep: SweepRecord, complete: list[TrialRecord]) -> SelectionReport:
    """The winner (first of `complete`, ranked best first) judged for selection bias: its validation
    Sharpe deflated for the number of trials it was picked from, whatever the sweep's objective."""
    if not complete:
        return SelectionReport(verdict="no DSR: no trial completed", objective=sweep.objective_metric)
    return assess_selection(
        complete[0].metrics,
        [t.metrics for t in complete],
        objective=sweep.objective_metric,
        best_trial_number=complete[0].trial_number,
    )
