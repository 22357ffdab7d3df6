"""What each scheduled job does: decide whether there is work, and queue it through the same service a
person's request goes through (`mlops.jobs.submit_*`), as `actor`. A job with nothing to do is
*skipped*, with the reason in words:

- its feature flag is off (`mlops_auto_retrain` for the retrains, `mlops_drift_detection` for the drift
  check). The weekly validation and the champion watch are safety checks and have no flag: what they may
  lead to (an automatic retrain) is gated where it happens;
- a retrain whose champion was trained on the newest bars there are (no new bars since);
- a retrain of an agent that already has one queued or running (the holder is named);
- a drift check, validation or watch with no champion to check; a watch with no champion on probation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlops.errors import ConflictError, FeatureDisabledError
from mlops.scheduler.schedules import JobDefinition
from mlops.settings import AGENTS, Settings


@dataclass(frozen=True)
class Step:
    """What a job did: the queue jobs it submitted and what to remember, or the reason it did nothing."""

    job_ids: list[int] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None


def skip(reason: str, **result: Any) -> Step:
    return Step(result=result, skipped=reason)


def queued_for(job_id: int, what: str, agents: list[str]) -> Step:
    return Step([job_id], {"agents": agents, "summary": f"{what} of {', '.join(agents)} queued as job {job_id}"})


def flag_off(settings: Settings, flag: str | None) -> str | None:
    """The reason a job's flag stops it (the flag service's own words), or None."""
    from mlops.flags import require

    if flag is None:
        return None
    try:
        require(settings, flag)
    except FeatureDisabledError as exc:
        return str(exc)
    return None


def agents_with_champion(settings: Settings) -> list[str]:
    """From the deployment history (app DB only, no MLflow)."""
    from mlops.db import session_scope
    from mlops.pipeline.deployments import CHAMPION, current_aliases

    with session_scope(settings.app_db_url) as session:
        return [agent for agent in AGENTS if current_aliases(session, agent)[CHAMPION] is not None]


def retrain(settings: Settings, job: JobDefinition, actor: str) -> Step:
    from mlops.jobs import submit_retrain
    from mlops.pipeline.freshness import champion_freshness

    assert job.agent is not None
    from mlops.jobs.reactions import rejected_without_new_bars

    freshness = champion_freshness(settings, job.agent)
    if not freshness.has_new_bars:
        return skip(freshness.describe(), agent=job.agent)
    if (repeat := rejected_without_new_bars(settings, job.agent)) is not None:
        return skip(repeat, agent=job.agent)
    try:
        queued = submit_retrain(settings, agent=job.agent, actor=actor, trigger="scheduled")
    except ConflictError as exc:  # the agent's lock: its message names the run (and job) holding it
        return skip(str(exc), agent=job.agent)
    summary = f"retrain of {job.agent} queued as job {queued.id} (run {queued.model_run_id})"
    return Step(
        [queued.id],
        {"agent": job.agent, "model_run_id": queued.model_run_id, "why": freshness.describe(), "summary": summary},
    )


def still_active(settings: Settings, kind: str) -> str | None:
    """Why a check of every agent must not be queued again: the previous one of `kind` has not run yet
    (a long retrain or sweep holds the job slots, or no dispatcher runs) — queueing another each slot would
    pile them up and run them all later. Missed slots coalesce in the queue as they do in the scheduler."""
    from mlops.jobs import list_jobs

    for status in ("queued", "running"):
        active = [j for j in list_jobs(settings, kind=kind, status=status, limit=20) if j.agent_type is None]
        if active:
            return f"the previous {kind} job {active[0].id} is still {status}"
    return None


def drift_check(settings: Settings, job: JobDefinition, actor: str) -> Step:
    from mlops.jobs import submit_drift

    agents = agents_with_champion(settings)
    if not agents:
        return skip("no agent has a champion to check for drift")
    if (busy := still_active(settings, "drift")) is not None:
        return skip(busy)
    queued = submit_drift(settings, agent=None, actor=actor)
    return queued_for(queued.id, "drift check", agents)


def weekly_validation(settings: Settings, job: JobDefinition, actor: str) -> Step:
    from mlops.jobs import submit_validation

    agents = agents_with_champion(settings)
    if not agents:
        return skip("no agent has a champion to validate")
    if (busy := still_active(settings, "validation")) is not None:
        return skip(busy)
    queued = submit_validation(settings, agent=None, actor=actor)
    return queued_for(queued.id, "validation", agents)


def champion_watch(settings: Settings, job: JobDefinition, actor: str) -> Step:
    from mlops.jobs import submit_watch
    from mlops.pipeline.watch import agents_on_probation

    if not agents_with_champion(settings):
        return skip("no agent has a champion to watch")
    agents = agents_on_probation(settings)
    if not agents:
        return skip("no champion is on probation (each has passed its auto-rollback test or its probation ended)")
    if (busy := still_active(settings, "watch")) is not None:
        return skip(busy)
    queued = submit_watch(settings, agent=None, actor=actor)
    return queued_for(queued.id, "watch", agents)


def preload() -> None:
    """Import what the steps use (the queue, the flags, freshness, drift, the watch: pandas and numpy
    among them) now, so that the first fire is as quick as the others instead of paying for imports."""
    import mlops.flags
    import mlops.jobs
    import mlops.pipeline.deployments
    import mlops.pipeline.drift
    import mlops.pipeline.freshness
    import mlops.pipeline.watch  # noqa: F401


BODIES: dict[str, Callable[[Settings, JobDefinition, str], Step]] = {
    "retrain_market_insight": retrain,
    "retrain_risk_assessor": retrain,
    "drift_check": drift_check,
    "weekly_validation": weekly_validation,
    "champion_watch": champion_watch,
}


def perform(settings: Settings, job: JobDefinition, actor: str) -> Step:
    """Run `job`'s body, unless its flag stops it. A flag switched off between the check and the submission
    (the service refuses with FeatureDisabledError) is a skip too."""
    reason = flag_off(settings, job.flag)
    if reason is not None:
        return skip(reason)
    try:
        return BODIES[job.name](settings, job, actor)
    except FeatureDisabledError as exc:
        return skip(str(exc))
