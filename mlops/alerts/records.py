"""What the alert services return: frozen pydantic models, never ORM rows. Every target and error text in
them is already masked (`mlops.alerts.secrets`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "critical")  # in rising order


def rank(severity: str) -> int:
    """0 for info, 1 for warning, 2 for critical."""
    return SEVERITIES.index(severity)


class DeliveryRecord(BaseModel):
    """One alert's sending to one channel."""

    model_config = ConfigDict(frozen=True)

    channel: str = Field(description="slack | pagerduty | email | webhook | apprise:<id>")
    target: str = Field(description="Where it goes, masked")
    status: str = Field(description="pending | sending | sent | failed")
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None = Field(description="The last attempt's error, secrets masked")
    sent_at: datetime | None


class AlertRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    severity: str
    kind: str
    agent_type: str | None
    message: str
    details: dict[str, Any]
    dedup_key: str
    first_seen: datetime
    last_seen: datetime
    count: int = Field(description="How many times it was raised within the deduplication window")
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    insight: str | None = Field(
        default=None,
        description="The generated plain-language explanation, added when it arrives (the message has the template's)",
    )
    deliveries: list[DeliveryRecord] = Field(default_factory=list)


class ChannelInfo(BaseModel):
    """A configured channel as `skippy alerts channels` shows it."""

    model_config = ConfigDict(frozen=True)

    channel: str
    kind: str = Field(description="slack | pagerduty | email | webhook | apprise")
    target: str = Field(description="Masked")
    min_severity: str
    settings: list[str] = Field(description="The settings (environment variables) that configure it")
    problem: str | None = Field(default=None, description="Why it cannot send, when its configuration is wrong")


class ChannelResult(BaseModel):
    """One channel's answer to a test alert."""

    model_config = ConfigDict(frozen=True)

    channel: str
    target: str
    ok: bool
    error: str | None
    seconds: float


class AlertTestReport(BaseModel):
    """What `skippy alerts test` prints: each configured channel's result."""

    model_config = ConfigDict(frozen=True)

    alert_id: int | None
    results: list[ChannelResult]
    hint: str | None = Field(default=None, description="With no channel configured: the settings that configure one")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        return bool(self.results) and all(r.ok for r in self.results)
