"""The scheduled jobs, their cron expressions, and the fire-time arithmetic every process agrees on.

A cron expression (UTC) has five fields — minute hour day month weekday — or six with seconds first.
Weekdays follow cron, not APScheduler 3: 0 and 7 are Sunday (APScheduler 3 counts 0 as Monday, a
historical mistake it keeps), so they are translated to day names before APScheduler sees them.
Restricting both the day of the month and the weekday is refused: cron runs on either, APScheduler
only on both, and a schedule must not mean two things."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.cron import CronTrigger

from mlops.errors import ConfigurationError
from mlops.settings import Settings


@dataclass(frozen=True)
class JobDefinition:
    name: str
    description: str
    setting: str  # the Settings field that holds its cron expression
    flag: str | None  # the feature flag that gates it (None: a safety check, never switched off by a flag)
    agent: str | None = None  # the agent it retrains

    @property
    def env_var(self) -> str:
        return f"SKIPPY_{self.setting.upper()}"


JOBS: tuple[JobDefinition, ...] = (
    JobDefinition(
        "retrain_market_insight",
        "Retrain market_insight when new bars arrived since its champion's training",
        "schedule_retrain_market_insight",
        "mlops_auto_retrain",
        "market_insight",
    ),
    JobDefinition(
        "retrain_risk_assessor",
        "Retrain risk_assessor when new bars arrived since its champion's training",
        "schedule_retrain_risk_assessor",
        "mlops_auto_retrain",
        "risk_assessor",
    ),
    JobDefinition(
        "drift_check", "Drift check of every agent with a champion", "schedule_drift_check", "mlops_drift_detection"
    ),
    JobDefinition(
        "weekly_validation",
        "Validate every champion on data it has not seen: re-score, load-and-predict, data quality",
        "schedule_weekly_validation",
        None,
    ),
    JobDefinition(
        "champion_watch",
        "Auto-rollback test of every champion still on probation against the one it replaced",
        "schedule_champion_watch",
        None,
    ),
)
JOB_NAMES: tuple[str, ...] = tuple(j.name for j in JOBS)
ENABLE_HINT = (
    "ENABLE_MLOPS_JOBS=true (or SKIPPY_ENV=production) runs it inside `skippy up` / `skippy serve`; "
    "`skippy scheduler` runs it alone"
)


def definition(name: str) -> JobDefinition:
    from mlops.errors import NotFoundError

    for job in JOBS:
        if job.name == name:
            return job
    raise NotFoundError(f"unknown scheduled job {name!r}; scheduled jobs: {', '.join(JOB_NAMES)}")


def scheduler_enabled(settings: Settings) -> bool:
    """Whether `skippy up` / `skippy serve` (and the API's lifespan) run the scheduler."""
    return settings.enable_mlops_jobs or settings.env == "production"


def enabled_reason(settings: Settings) -> str:
    if settings.enable_mlops_jobs:
        return "on (ENABLE_MLOPS_JOBS=true)"
    if settings.env == "production":
        return "on (SKIPPY_ENV=production)"
    return f"off: {ENABLE_HINT}"


# --- cron ----------------------------------------------------------------------------------------------

_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _day(token: str) -> int:
    if token.isdigit() and 0 <= int(token) <= 7:
        return int(token)
    if token in _DAYS:
        return _DAYS.index(token)
    raise ValueError(f"weekday {token!r} is not 0-7 (0 and 7: Sunday) or a day name (sun, mon, ...)")


def cron_weekdays(field: str) -> str:
    """A cron weekday field as APScheduler 3 day names: '1-5' → 'mon,tue,wed,thu,fri', '0' → 'sun'."""
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for part in field.lower().split(","):
        span, slash, step_text = part.partition("/")
        if slash and not (step_text.isdigit() and int(step_text) > 0):
            raise ValueError(f"step {step_text!r} in weekday {part!r} is not a positive whole number")
        step = int(step_text) if slash else 1
        if span == "*":
            low, high = 0, 6
        elif "-" in span:
            first, last = span.split("-", 1)
            low, high = _day(first), _day(last)
        else:
            low = _day(span)
            high = 7 if slash else low  # cron: 'n/s' is n through the end of the week
        if low > high:
            raise ValueError(f"weekday range {span!r} runs backwards")
        days.update(day % 7 for day in range(low, high + 1, step))
    return ",".join(_DAYS[day] for day in sorted(days))


def parse_cron(expression: str, *, setting: str = "schedule") -> CronTrigger:
    """A UTC trigger for `expression`, or ConfigurationError naming the setting's variable and the value."""
    name = f"SKIPPY_{setting.upper()}"
    fields = expression.split()
    try:
        if len(fields) not in (5, 6):
            raise ValueError(f"it has {len(fields)} fields")
        second, minute, hour, day, month, weekday = fields if len(fields) == 6 else ["0", *fields]
        trigger = CronTrigger(
            second=second,
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=cron_weekdays(weekday),
            timezone=UTC,
        )
        if day not in ("*", "?") and weekday not in ("*", "?"):
            raise ValueError(
                "it restricts both the day of the month and the weekday (cron runs on either, APScheduler on "
                "both): restrict one of them"
            )
        return trigger
    except ValueError as exc:
        raise ConfigurationError(
            f"{name}={expression!r} is not a valid schedule: {exc}. Use a cron expression in UTC with five fields "
            "(minute hour day month weekday, e.g. '0 */6 * * *') or six with seconds first (e.g. '*/10 * * * * *')"
        ) from None


def triggers(settings: Settings) -> dict[str, CronTrigger]:
    """Every job's trigger; ConfigurationError naming each invalid setting (all of them, in one message)."""
    compiled: dict[str, CronTrigger] = {}
    problems: list[str] = []
    for job in JOBS:
        try:
            compiled[job.name] = parse_cron(getattr(settings, job.setting), setting=job.setting)
        except ConfigurationError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigurationError("\n".join(problems))
    return compiled


# --- fire times ----------------------------------------------------------------------------------------

# Far enough back to find a fire time of any cron that names a real date (29 February: every 4 years, or 8
# around a skipped leap year such as 2100).
LOOKBACK = timedelta(days=366 * 9)


def next_fire(trigger: CronTrigger, now: datetime) -> datetime | None:
    """The first fire time at or after `now`."""
    fire: datetime | None = trigger.get_next_fire_time(None, now)
    return fire.astimezone(UTC) if fire is not None else None


def previous_fire(trigger: CronTrigger, now: datetime) -> datetime | None:
    """The last fire time at or before `now` — the slot a run that starts at `now` belongs to.

    A pure function of the trigger and the clock, so every process computes the same slot for a fire
    (APScheduler 3 hands a job its function call, not the run time it fired for, and offers no
    "previous fire time"). Found by bisection over whole seconds (cron's resolution) with the trigger's
    own `get_next_fire_time`: `next_fire(t) <= now` holds for every t up to that slot and for none after
    it, so ~40 calls find it whatever the schedule."""
    now = now.astimezone(UTC)
    low = now.replace(microsecond=0) - LOOKBACK
    first = next_fire(trigger, low)
    if first is None or first > now:
        return None
    high = now.replace(microsecond=0) + timedelta(seconds=1)  # next_fire(high) > now: high is past the slot
    while (high - low) > timedelta(seconds=1):
        middle = low + timedelta(seconds=int((high - low).total_seconds()) // 2)
        fire = next_fire(trigger, middle)
        if fire is not None and fire <= now:
            low = middle
        else:
            high = middle
    return next_fire(trigger, low)
