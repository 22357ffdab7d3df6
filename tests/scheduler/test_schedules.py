"""Cron expressions: five or six fields, cron's weekdays (0 and 7 are Sunday, unlike APScheduler 3), a
clear error naming the setting and the value; and the fire-time arithmetic every process agrees on."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mlops.errors import ConfigurationError
from mlops.scheduler import JOB_NAMES, Scheduler, parse_cron, scheduler_enabled, triggers
from mlops.scheduler.schedules import cron_weekdays, next_fire, previous_fire
from tests.conftest import make_settings

NOW = datetime(2026, 11, 29, 22, 41, 7, 123456, tzinfo=UTC)  # a Sunday


def test_the_default_schedules_are_the_issues() -> None:
    compiled = triggers(make_settings(Path("/nonexistent")))
    assert (
        set(compiled)
        == set(JOB_NAMES)
        == {
            "retrain_market_insight",
            "retrain_risk_assessor",
            "drift_check",
            "weekly_validation",
            "champion_watch",
        }
    )
    assert next_fire(compiled["retrain_market_insight"], NOW) == datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
    assert next_fire(compiled["retrain_risk_assessor"], NOW) == datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
    assert next_fire(compiled["drift_check"], NOW) == datetime(2026, 11, 30, 0, 0, tzinfo=UTC)
    assert previous_fire(compiled["drift_check"], NOW) == datetime(2026, 11, 29, 18, 0, tzinfo=UTC)
    # "0 4 * * 0" is Sunday 04:00 as in cron (APScheduler 3 alone would read 0 as Monday).
    assert next_fire(compiled["weekly_validation"], NOW) == datetime(2026, 12, 6, 4, 0, tzinfo=UTC)
    assert next_fire(compiled["weekly_validation"], NOW).strftime("%A") == "Sunday"
    assert next_fire(compiled["champion_watch"], NOW) == datetime(2026, 11, 29, 23, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("field", "names"),
    [
        ("*", "*"),
        ("0", "sun"),
        ("7", "sun"),
        ("1-5", "mon,tue,wed,thu,fri"),
        ("5-7", "sun,fri,sat"),
        ("*/2", "sun,tue,thu,sat"),
        ("1/3", "mon,thu,sun"),
        ("sat,sun", "sun,sat"),
        ("mon-wed", "mon,tue,wed"),
    ],
)
def test_weekdays_are_read_as_cron_reads_them(field: str, names: str) -> None:
    assert set(cron_weekdays(field).split(",")) == set(names.split(","))


def test_six_fields_put_seconds_first() -> None:
    every_ten = parse_cron("*/10 * * * * *")
    assert next_fire(every_ten, NOW) == datetime(2026, 11, 29, 22, 41, 10, tzinfo=UTC)
    assert previous_fire(every_ten, NOW) == datetime(2026, 11, 29, 22, 41, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("0 4 * *", "it has 4 fields"),
        ("0 0 0 4 * * *", "it has 7 fields"),
        ("61 * * * *", "higher than the maximum value (59)"),
        ("0 25 * * *", "higher than the maximum value (23)"),
        ("0 0 * * 8", "weekday '8' is not 0-7"),
        ("0 0 * * 5-1", "weekday range '5-1' runs backwards"),
        ("0 0 1 * 1", "restricts both the day of the month and the weekday"),
        ("every day", "it has 2 fields"),
    ],
)
def test_an_invalid_schedule_names_the_setting_and_the_value(expression: str, problem: str) -> None:
    settings = make_settings(Path("/nonexistent"), schedule_drift_check=expression)
    with pytest.raises(ConfigurationError) as caught:
        triggers(settings)
    message = str(caught.value)
    assert f"SKIPPY_SCHEDULE_DRIFT_CHECK={expression!r}" in message and problem in message
    assert "five fields" in message and "six with seconds first" in message
    with pytest.raises(ConfigurationError, match="SKIPPY_SCHEDULE_DRIFT_CHECK"):
        Scheduler(settings).start()  # the scheduler refuses to start


def test_every_invalid_schedule_is_named_at_once() -> None:
    settings = make_settings(Path("/nonexistent"), schedule_drift_check="x", schedule_champion_watch="1 2 3")
    with pytest.raises(ConfigurationError) as caught:
        triggers(settings)
    assert "SKIPPY_SCHEDULE_DRIFT_CHECK='x'" in str(caught.value)
    assert "SKIPPY_SCHEDULE_CHAMPION_WATCH='1 2 3'" in str(caught.value)


@pytest.mark.parametrize(
    "expression",
    ["*/2 * * * * *", "7 */3 * * *", "0 9 * * 1-5", "30 4 1,15 * *", "0 0 29 2 *", "*/7 5-9 * * 6", "0 0 1 1 *"],
)
def test_the_previous_fire_time_is_the_last_one_at_or_before_now(expression: str) -> None:
    """Checked against the trigger's own forward iteration, at random moments, and exactly on a fire time."""
    trigger = parse_cron(expression)
    rng = random.Random(expression)
    for _ in range(20):
        now = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.uniform(0, 3 * 365 * 86400))
        slot = previous_fire(trigger, now)
        assert slot is not None and slot <= now
        following = next_fire(trigger, slot + timedelta(microseconds=1))
        assert following is not None and following > now  # nothing fired in between
        assert previous_fire(trigger, slot) == slot  # on the fire time itself: that slot
        assert previous_fire(trigger, slot - timedelta(microseconds=1)) != slot


def test_the_scheduler_is_on_with_enable_mlops_jobs_or_in_production() -> None:
    assert not scheduler_enabled(make_settings(Path("/nonexistent")))
    assert scheduler_enabled(make_settings(Path("/nonexistent"), enable_mlops_jobs=True))
    assert scheduler_enabled(make_settings(Path("/nonexistent"), env="production"))


def test_enable_mlops_jobs_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENABLE_MLOPS_JOBS", "true")
    monkeypatch.setenv("SKIPPY_SCHEDULE_DRIFT_CHECK", "*/5 * * * *")
    from mlops.settings import Settings

    settings = Settings(_env_file=None, home=Path("/nonexistent"))  # type: ignore[call-arg]
    assert scheduler_enabled(settings) and settings.schedule_drift_check == "*/5 * * * *"
