"""The closed loop (DESIGN §9): what happens after a finding or the end of an automatic retrain.

    react_to_drift      a critical drift check → `drift_critical` alert (+ a retrain, trigger `drift`)
    react_to_checkups   a degraded champion → `performance_degraded` alert (+ a retrain, trigger `performance`);
                        a champion that fails its validation → `validation_failed` alert, no retrain
    job_ended           an automatic retrain rejected or failed → `retrain_rejected` / `retrain_failed`;
                        one the loop started promoted → `retrain_promoted` (info: the answer to its alert)
    auto_retrain        queue a retrain under the flag and the no-storm rules (`retrain_blocker`)

The retrain the loop queues is an ordinary job through the ordinary gate: the champion never changes
without passing it. Drift and validation jobs react in their runner (kinds.py), so the job's result
says what was done; the inline CLI drift check calls `react_to_drift` too. `job_ended` is called by
`finish_job` after the update that ends the job, which exactly one caller wins: a job's end reacts once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from mlops.alerts import raise_alert
from mlops.db import session_scope
from mlops.db.models import AgentLock, ModelRun
from mlops.errors import ConflictError, SkippyError, brief
from mlops.flags import is_enabled
from mlops.insights import link_alert, note_drift
from mlops.logs import get_logger
from mlops.settings import Settings

if TYPE_CHECKING:
    from mlops.jobs.service import JobRecord
    from mlops.pipeline.checkup import Checkup
    from mlops.pipeline.drift import DriftCheck, DriftRow

log = get_logger(__name__)
AUTOMATION = "automation"  # the actor of the retrains the loop queues
LOOP_TRIGGERS = ("drift", "performance")  # the loop's own retrains
# Automatic retrains: nobody watches them, so their end alerts; the no-storm rules count them.
AUTOMATIC_TRIGGERS = ("scheduled", *LOOP_TRIGGERS)
FLAG = "mlops_auto_retrain"
LISTED = 6  # critical statistics named in an alert's message (all of them are in its details)


@dataclass(frozen=True)
class AutoRetrain:
    """What the loop did about retraining one agent: queued a job, or why not (`skipped`)."""

    agent_type: str
    trigger: str
    queued: bool
    skipped: str | None  # flag_off | in_flight | cooldown | rejected_without_new_bars | refused
    reason: str
    job_id: int | None = None
    model_run_id: int | None = None

    def sentence(self) -> str:
        return self.reason[:1].upper() + self.reason[1:] + "."


@dataclass(frozen=True)
class Reaction:
    """One finding about an agent (or about every agent: None), the alert it raised and the retrain it led to."""

    agent_type: str | None
    model_version: int | None
    kind: str  # the alert's kind
    severity: str
    message: str
    alert_id: int | None  # None: the alert could not be stored (raise_alert logged why)
    retrain: AutoRetrain | None = None


# --- the no-storm rules --------------------------------------------------------------------------------


def retrain_blocker(settings: Settings, agent: str) -> tuple[str, str] | None:
    """Why the loop must not queue a retrain of `agent` now, as (code, reason), or None. In order:

    1. `in_flight`: a retrain of the agent is queued or running (its lock is held) — not a second one;
    2. `cooldown`: at most one automatic retrain (trigger scheduled, drift or performance) per agent per
       `auto_retrain_cooldown_hours` — one was queued within that time;
    3. `rejected_without_new_bars`: after an automatic retrain the gate rejected, none until new bars
       arrive — the newest automatic retrain the gate judged was rejected and no bar is newer than the data
       it was trained on (the same data would give the same verdict). A person's retrain counts for neither."""

    with session_scope(settings.app_db_url) as session:
        lock = session.get(AgentLock, agent)
        if lock is not None:
            return "in_flight", f"a retrain of {agent} is already queued or running (run {lock.model_run_id})"
        newest = session.execute(
            select(ModelRun.id, ModelRun.created_at, ModelRun.trigger)
            .where(ModelRun.agent_type == agent, ModelRun.trigger.in_(AUTOMATIC_TRIGGERS))
            .order_by(ModelRun.id.desc())
            .limit(1)
        ).first()
    cooldown = timedelta(hours=settings.auto_retrain_cooldown_hours)
    if newest is not None:
        run_id, created, trigger = newest
        created = created.replace(tzinfo=UTC) if created.tzinfo is None else created
        if datetime.now(UTC) - created < cooldown:
            return "cooldown", (
                f"cool-down: the automatic retrain run {run_id} (trigger {trigger}) of {agent} was queued "
                f"{created:%Y-%m-%d %H:%M} UTC; at most one per {settings.auto_retrain_cooldown_hours:g} h "
                f"(SKIPPY_AUTO_RETRAIN_COOLDOWN_HOURS), next from {created + cooldown:%Y-%m-%d %H:%M} UTC"
            )
    rejected = rejected_without_new_bars(settings, agent)
    return ("rejected_without_new_bars", rejected) if rejected is not None else None


def rejected_without_new_bars(settings: Settings, agent: str) -> str | None:
    """Why an automatic retrain of `agent` would only repeat a rejection: the newest automatic retrain the
    gate judged was rejected and no bar is newer than its data (a scheduled retrain checks this too)."""
    from mlops.pipeline.freshness import run_freshness

    with session_scope(settings.app_db_url) as session:
        finished = session.execute(
            select(ModelRun.id, ModelRun.status)
            .where(
                ModelRun.agent_type == agent,
                ModelRun.trigger.in_(AUTOMATIC_TRIGGERS),
                ModelRun.status.in_(("succeeded", "rejected")),  # judged by the gate: a failed run was not
            )
            .order_by(ModelRun.id.desc())
            .limit(1)
        ).first()
    if finished is None or finished[1] != "rejected":
        return None
    freshness = run_freshness(settings, finished[0])
    if freshness.has_new_bars:
        return None
    return (
        f"the automatic retrain run {finished[0]} of {agent} was rejected by the gate and "
        f"{freshness.describe()}: none until new bars arrive"
    )


def auto_retrain(settings: Settings, agent: str, trigger: str) -> AutoRetrain:
    """Queue a retrain of `agent` (actor `automation`) unless the `mlops_auto_retrain` flag is off or a
    no-storm rule (`retrain_blocker`) says not now. Never raises for a refusal: it says why instead."""
    try:
        return _auto_retrain(settings, agent, trigger)
    except SkippyError as exc:  # e.g. a bad SKIPPY_FLAG_ value, no bars left, a tracking store of another app DB
        return _skipped(agent, trigger, "refused", f"the retrain could not be queued: {exc}")
    except Exception as exc:  # the finding's alert must still go out: say what stopped the retrain
        log.exception("automatic retrain could not be considered", agent_type=agent, trigger=trigger)
        return _skipped(agent, trigger, "refused", f"the retrain could not be queued: {type(exc).__name__}: {exc}")


def _auto_retrain(settings: Settings, agent: str, trigger: str) -> AutoRetrain:
    from mlops.jobs.service import submit_retrain

    if not is_enabled(settings, FLAG):
        return AutoRetrain(
            agent, trigger, False, "flag_off",
            f"no retrain queued: automatic retraining is off (flag {FLAG}); "
            f"`skippy flags set {FLAG} on` turns it on, `skippy ai retrain --agent {agent}` retrains by hand",
        )  # fmt: skip
    blocker = retrain_blocker(settings, agent)
    if blocker is not None:
        return _skipped(agent, trigger, *blocker)
    try:
        job = submit_retrain(settings, agent=agent, actor=AUTOMATION, trigger=trigger)
    except ConflictError as exc:  # queued by someone else since the check: the lock decides, race-free
        return _skipped(agent, trigger, "in_flight", str(exc))
    log.info(
        "automatic retrain queued", agent_type=agent, trigger=trigger, job_id=job.id, model_run_id=job.model_run_id
    )
    return AutoRetrain(
        agent, trigger, True, None,
        f"retrain queued as job {job.id} (run {job.model_run_id}, trigger {trigger}); "
        "the gate decides whether it replaces the champion",
        job.id, job.model_run_id,
    )  # fmt: skip


def _skipped(agent: str, trigger: str, code: str, reason: str) -> AutoRetrain:
    log.info("automatic retrain skipped", agent_type=agent, trigger=trigger, skipped=code, reason=reason)
    return AutoRetrain(agent, trigger, False, code, f"no retrain queued: {reason}")


def _report_skip(settings: Settings, retrain: AutoRetrain, finding: str, version: int | None) -> None:
    """A skipped loop retrain is also an alert of its own: the finding's alert is deduplicated (the same
    critical drift every 6 hours counts on one row, and a repeat notifies no one), so the first skip
    for each reason is news of its own. Info when a rule held it back by design; warning when the retrain
    was refused (something is wrong). The flag off is a choice, said in the finding's alert."""
    if retrain.skipped in (None, "flag_off"):
        return
    why = retrain.reason.removeprefix("no retrain queued: ")
    raise_alert(
        settings,
        severity="warning" if retrain.skipped == "refused" else "info",
        kind="auto_retrain_skipped",
        agent=retrain.agent_type,
        message=f"{retrain.agent_type}: no automatic retrain after {finding}: {why}",
        details={"finding": finding, "model_version": version, "trigger": retrain.trigger, "skipped": retrain.skipped},
        key=retrain.skipped,
    )


def _raise(
    settings: Settings,
    *,
    severity: str,
    kind: str,
    agent: str | None,
    version: int | None,
    message: str,
    details: dict[str, Any],
    key: str,
    retrain: AutoRetrain | None = None,
) -> Reaction:
    if retrain is not None:
        message = f"{message} {retrain.sentence()}"
        details = details | {"auto_retrain": asdict(retrain)}
    record = raise_alert(settings, severity=severity, kind=kind, agent=agent, message=message, details=details, key=key)
    log.info("loop alert", agent_type=agent, kind=kind, severity=severity, alert_id=record and record.id)
    return Reaction(agent, version, kind, severity, message, record.id if record is not None else None, retrain)


# --- findings ------------------------------------------------------------------------------------------


def react_to_drift(settings: Settings, checks: Sequence[DriftCheck]) -> list[Reaction]:
    """Rule: a drift check whose status is `critical` (a feature, the predictions or the performance
    drifted, by its test and past its threshold) raises a critical `drift_critical` alert naming each
    critical statistic with its value and p-value, and — with `mlops_auto_retrain` on and no no-storm
    rule against it — queues a retrain of that agent with trigger `drift`. Ok, warning and insufficient
    checks raise nothing: they are in the drift history."""
    reactions = []
    for check in checks:
        if check.status != "critical":
            continue
        critical = [_critical_item(r) for r in _critical_rows(check.rows)]
        retrain = auto_retrain(settings, check.agent_type, "drift")
        window = f"{check.window_bars} bars"
        if check.current_start is not None and check.current_end is not None:
            window += f", {check.current_start:%Y-%m-%d} → {check.current_end:%Y-%m-%d}"
        named = "; ".join(_describe(item) for item in critical[:LISTED])
        more = f"; and {len(critical) - LISTED} more" if len(critical) > LISTED else ""
        reactions.append(
            _raise(
                settings,
                severity="critical",
                kind="drift_critical",
                agent=check.agent_type,
                version=check.model_version,
                message=(
                    f"Critical drift of {check.agent_type} v{check.model_version} on {check.symbol} ({window}): "
                    f"{named}{more}."
                ),
                details={
                    "check_id": check.check_id,
                    "model_version": check.model_version,
                    "symbol": check.symbol,
                    "window_bars": check.window_bars,
                    "current_start": _iso(check.current_start),
                    "current_end": _iso(check.current_end),
                    "critical": critical,
                },
                key=f"v{check.model_version}",
                retrain=retrain,
            )
        )
        # The check's plain-language explanation, linked to its alert (the generated text joins it later).
        note_drift(settings, check.check_id, [reactions[-1].alert_id])
        _report_skip(settings, retrain, f"critical drift (check {check.check_id})", check.model_version)
    return reactions


def _critical_rows(rows: Sequence[DriftRow]) -> list[DriftRow]:
    """The critical per-feature rows, largest statistic first (the message names the first few), then the
    critical summary rows of the other kinds (the feature summary repeats its deciding feature: named
    only when no single feature row is critical)."""
    features = sorted(
        (r for r in rows if r.feature is not None and r.status == "critical"), key=lambda r: -(r.value or 0.0)
    )
    summaries = [
        r for r in rows if r.feature is None and r.status == "critical" and (r.drift_type != "feature" or not features)
    ]
    return features + summaries


def _critical_item(row: DriftRow) -> dict[str, Any]:
    from mlops.pipeline.drift_history import test_numbers

    numbers = test_numbers(row.feature, row.drift_type, row.details)
    return {
        "drift_type": row.drift_type,
        "statistic": row.statistic,
        "feature": row.feature or numbers.get("deciding_feature"),
        "value": row.value,
        "critical_threshold": row.critical,
        "p_value": numbers["p_value"],
        "adjusted_p": numbers["adjusted_p"],
    }


def _p(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2g}"


def _describe(item: dict[str, Any]) -> str:
    what = f"feature {item['feature']}" if item["drift_type"] == "feature" else f"{item['drift_type']} drift"
    value = "n/a" if item["value"] is None else f"{item['value']:.3g}"
    test = f"p {_p(item['p_value'])}" + (f", adj. p {_p(item['adjusted_p'])}" if item["adjusted_p"] is not None else "")
    return f"{what} {item['statistic']} {value} (critical > {item['critical_threshold']:g}; {test})"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def react_to_checkups(settings: Settings, checkups: Sequence[Checkup]) -> list[Reaction]:
    """Rules for the weekly validation of each champion:
    - `failed` (the deployed version no longer loads or predicts, or the recent data is bad) raises a
      critical `validation_failed` alert and no retrain: retraining does not fix a broken store or bad
      data, and a retrain on bad data would be rejected by its quality gate anyway;
    - `degraded` (a significant performance degradation, by the sound-decisions test) raises a critical
      `performance_degraded` alert and — with `mlops_auto_retrain` on and no no-storm rule against it —
      queues a retrain of that agent with trigger `performance`;
    - ok, insufficient and no_champion raise nothing (the checkup and its history say so)."""
    reactions = []
    for c in checkups:
        what = f"{c.agent_type} v{c.model_version}" if c.model_version is not None else c.agent_type
        reason = c.reason.removeprefix(f"{what}: ")
        details = {"model_version": c.model_version, "status": c.status, "reason": c.reason, "checkup": c.details}
        if c.status == "failed":
            reactions.append(
                _raise(
                    settings,
                    severity="critical",
                    kind="validation_failed",
                    agent=c.agent_type,
                    version=c.model_version,
                    message=(
                        f"Weekly validation of {what} failed: {reason}. No automatic retrain (it would not fix "
                        "a model that does not load or bad data): look at the model and the recent bars."
                    ),
                    details=details,
                    key=f"v{c.model_version}",
                )
            )
        elif c.status == "degraded" or c.degraded:
            retrain = auto_retrain(settings, c.agent_type, "performance")
            reactions.append(
                _raise(
                    settings,
                    severity="critical",
                    kind="performance_degraded",
                    agent=c.agent_type,
                    version=c.model_version,
                    message=f"Performance of {what} degraded significantly (weekly validation): {reason}.",
                    details=details,
                    key=f"v{c.model_version}",
                    retrain=retrain,
                )
            )
            _report_skip(settings, retrain, "a performance degradation", c.model_version)
    return reactions


# --- the end of an automatic retrain -------------------------------------------------------------------


def job_ended(settings: Settings, job_id: int) -> Reaction | None:
    """React to the end of job `job_id` (finish_job calls this, once per job); never raises: the job has
    ended either way, and its end is recorded."""
    from mlops.jobs.service import get_job

    try:
        job = get_job(settings, job_id)
        if job.kind == "retrain":
            reaction = _retrain_ended(settings, job)
            if reaction is not None and job.model_run_id is not None:  # the alert gets the run's explanation
                link_alert(settings, "retrain", job.model_run_id, reaction.alert_id)
            return reaction
        return _check_failed(settings, job) if job.kind in CHECKS else None
    except Exception:
        log.exception("could not react to the end of a job", job_id=job_id)
        return None


CHECKS = {"drift": "drift check", "validation": "weekly validation", "watch": "champion watch (auto-rollback)"}


def _check_failed(settings: Settings, job: JobRecord) -> Reaction | None:
    """A drift check, weekly validation or champion watch that failed (an agent's check raised, a timeout, a
    dead worker) → warning `<kind>_failed`: a safety check that stops working must not go unnoticed (the
    champion watch failing hour after hour would leave a bad champion in place). Cancelled: a person's call."""
    if job.status != "failed":
        return None
    error = job.error or "failed"
    return _raise(
        settings,
        severity="warning",
        kind=f"{job.kind}_failed",
        agent=job.agent_type,
        version=None,
        message=f"The {CHECKS[job.kind]} job {job.id} failed: {brief(error, 600)}.",
        details={"job_id": job.id, "requested_by": job.requested_by, "error": error, "result": job.result},
        key=job.kind,
    )


def _retrain_ended(settings: Settings, job: JobRecord) -> Reaction | None:
    """Rules for the end of an automatic retrain (trigger scheduled, drift or performance; a person's
    retrain is watched by that person):
    - rejected → `retrain_rejected` with the gate's verdict: info for a scheduled one (the daily retrain
      found nothing better: not a page), warning for a loop one (the answer to a critical finding did not
      pass; the champion stays and no loop retrain follows until new bars arrive);
    - failed (an error, a timeout, a dead worker) → warning `retrain_failed` with the error;
    - succeeded after drift/performance → info `retrain_promoted` (or its challenger, in a staged
      rollout): the answer to the critical alert. A scheduled one that succeeded is routine: the
      deployment history shows it;
    - cancelled → nothing: a person (or a server stopping) decided it."""
    trigger = str(job.parameters.get("trigger", "api"))
    if trigger not in AUTOMATIC_TRIGGERS or job.agent_type is None:
        return None
    agent, result = job.agent_type, job.result
    version = result.get("model_version")
    details: dict[str, Any] = {
        "job_id": job.id,
        "model_run_id": job.model_run_id,
        "trigger": trigger,
        "model_version": version,
        "champion_version": result.get("champion_version"),
    }
    run = f"{trigger} retrain of {agent} (job {job.id}, run {job.model_run_id})"
    loop = trigger in LOOP_TRIGGERS
    if job.status == "rejected":
        champion = result.get("champion_version")
        stays = f"the champion v{champion} stays" if champion else "nothing was deployed"
        after = "; no automatic retrain of it until new bars arrive" if loop else ""
        verdict = result.get("reason") or job.error or "rejected"
        return _raise(
            settings,
            severity="warning" if loop else "info",
            kind="retrain_rejected",
            agent=agent,
            version=version,
            message=f"The {run} was rejected: {brief(verdict, 600)}; {stays}{after}.",
            details=details | {"verdict": verdict, "validation": result.get("validation") or {}},
            key=f"run{job.model_run_id}",
        )
    if job.status == "failed":
        error = job.error or result.get("reason") or "failed"
        return _raise(
            settings,
            severity="warning",
            kind="retrain_failed",
            agent=agent,
            version=version,
            message=f"The {run} failed: {brief(error, 600)}; nothing was deployed.",
            details=details | {"error": error},
            key=f"run{job.model_run_id}",
        )
    if job.status == "succeeded" and loop:
        deployed = result.get("deployment_status")
        outcome = "is the champion now" if deployed == "promoted" else f"passed the gate ({deployed})"
        return _raise(
            settings,
            severity="info",
            kind="retrain_promoted",
            agent=agent,
            version=version,
            message=f"The {run} passed the gate: v{version} {outcome}. {brief(str(result.get('reason', '')), 400)}",
            details=details | {"deployment_status": deployed, "verdict": result.get("reason")},
            key=f"run{job.model_run_id}",
        )
    return None
