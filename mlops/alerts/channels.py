"""The channels an alert can go to, one small class each, built from Settings.

Slack, PagerDuty and the generic webhook are thin httpx clients: apprise's Slack and PagerDuty plugins post
to fixed hosts, and a configurable URL is what lets each be tested against a server on loopback (and pointed
at a proxy or PagerDuty's EU endpoint). E-mail and the user's own `alert_apprise_urls` go through apprise:
its mailto plugin speaks plain SMTP, SMTPS and STARTTLS, with or without a login, so the SMTP URL of the
settings is translated to an apprise mailto URL.

A channel's `send` raises `DeliveryError` (or whatever its client raised) when the message did not get
through; the text may quote a secret, so the caller passes it through the `Redactor` of `redactor()`.
"""

from __future__ import annotations

import hashlib
import logging
from abc import ABC, abstractmethod
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from pydantic import SecretStr

from mlops.alerts import message
from mlops.alerts.records import AlertRecord, ChannelInfo
from mlops.alerts.secrets import MASK, Redactor, mask_url
from mlops.errors import ConfigurationError
from mlops.processes import HOSTNAME
from mlops.settings import Settings

PAGERDUTY_SEVERITY = {"critical": "critical", "warning": "warning", "info": "info"}
MAX_ANSWER = 300  # characters of a refusing server's answer kept in the error


class DeliveryError(Exception):
    """The channel did not take the message. May quote a secret: redact before storing or showing."""


class Channel(ABC):
    kind: str = ""

    def __init__(self, *, name: str, target: str, min_severity: str, settings: list[str], timeout: float) -> None:
        self.name = name  # the `alert_deliveries.channel` value
        self.target = target  # masked
        self.min_severity = min_severity
        self.settings = settings  # environment variables that configure it
        self.timeout = timeout

    @abstractmethod
    def send(self, alert: AlertRecord) -> None:
        """Deliver `alert` once, or raise."""

    def problem(self) -> str | None:
        """Why this channel cannot send as configured (checked without sending), or None."""
        return None

    def info(self) -> ChannelInfo:
        return ChannelInfo(
            channel=self.name,
            kind=self.kind,
            target=self.target,
            min_severity=self.min_severity,
            settings=self.settings,
            problem=self.problem(),
        )


def _post_json(url: str, body: dict[str, Any], timeout: float) -> None:
    import httpx

    try:
        response = httpx.post(url, json=body, timeout=timeout, headers={"User-Agent": "skippy-mlops-alerts"})
    except httpx.TimeoutException:
        raise DeliveryError(f"no answer within {timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from None
    if not 200 <= response.status_code < 300:
        answer = response.text[:MAX_ANSWER].strip()
        raise DeliveryError(f"HTTP {response.status_code} {response.reason_phrase}" + (f": {answer}" if answer else ""))


def _http_url(url: str, setting: str) -> str:
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("http", "https") or not urlsplit(url).hostname:
        raise ConfigurationError(f"{setting} must be an http:// or https:// URL (got {mask_url(url)})")
    return url


class SlackChannel(Channel):
    """A Slack incoming webhook: POST {"text": ...}."""

    kind = "slack"

    def __init__(self, url: str, **common: Any) -> None:
        super().__init__(**common)
        self.url = url

    def problem(self) -> str | None:
        try:
            _http_url(self.url, "SKIPPY_ALERT_SLACK_WEBHOOK_URL")
        except ConfigurationError as exc:
            return str(exc)
        return None

    def send(self, alert: AlertRecord) -> None:
        _post_json(_http_url(self.url, "SKIPPY_ALERT_SLACK_WEBHOOK_URL"), {"text": message.text(alert)}, self.timeout)


class WebhookChannel(Channel):
    """The generic webhook: POST of the alert as JSON (`message.payload`)."""

    kind = "webhook"

    def __init__(self, url: str, **common: Any) -> None:
        super().__init__(**common)
        self.url = url

    def problem(self) -> str | None:
        try:
            _http_url(self.url, "SKIPPY_ALERT_WEBHOOK_URL")
        except ConfigurationError as exc:
            return str(exc)
        return None

    def send(self, alert: AlertRecord) -> None:
        _post_json(_http_url(self.url, "SKIPPY_ALERT_WEBHOOK_URL"), message.payload(alert), self.timeout)


class PagerDutyChannel(Channel):
    """PagerDuty Events API v2: one `trigger` event. Its dedup_key is the alert's, so repeats of an alert
    PagerDuty still has open join that incident."""

    kind = "pagerduty"

    def __init__(self, url: str, routing_key: str, **common: Any) -> None:
        super().__init__(**common)
        self.url = url
        self.routing_key = routing_key

    def event(self, alert: AlertRecord) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "summary": message.subject(alert)[:1024],
            "source": HOSTNAME,
            "severity": PAGERDUTY_SEVERITY[alert.severity],
            "timestamp": alert.first_seen.isoformat(),
            "class": alert.kind,
            "group": "skippy-mlops",
            "custom_details": {
                "alert_id": alert.id,
                "message": alert.message,
                "details": alert.details,
                "count": alert.count,
                "first_seen": alert.first_seen.isoformat(),
                "last_seen": alert.last_seen.isoformat(),
                "acknowledge": message.ack_command(alert.id),
            },
        }
        if alert.agent_type:
            payload["component"] = alert.agent_type
        return {
            "routing_key": self.routing_key,
            "event_action": "trigger",
            "dedup_key": f"skippy:{alert.dedup_key}"[:255],
            "client": "Skippy MLOps",
            "payload": payload,
        }

    def problem(self) -> str | None:
        try:
            _http_url(self.url, "SKIPPY_ALERT_PAGERDUTY_URL")
        except ConfigurationError as exc:
            return str(exc)
        return None

    def send(self, alert: AlertRecord) -> None:
        _post_json(_http_url(self.url, "SKIPPY_ALERT_PAGERDUTY_URL"), self.event(alert), self.timeout)


def _quiet_apprise() -> None:
    """apprise logs through the `apprise` logger, URLs and all; its result carries the same lines, which
    are redacted before use. So its records stay out of the process's logs (and off Python's last-resort
    stderr handler)."""
    logger = logging.getLogger("apprise")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    logger.propagate = False


APPRISE_TYPE = {"critical": "failure", "warning": "warning", "info": "info"}


def apprise_notify(url: str, alert: AlertRecord, timeout: float) -> None:
    import apprise

    _quiet_apprise()
    notifier = apprise.Apprise()
    if not notifier.add(url):
        raise DeliveryError("apprise does not accept this URL (an unknown scheme, or a part missing)")
    result = notifier.notify(
        body=message.text(alert),
        title=message.subject(alert),
        notify_type=APPRISE_TYPE[alert.severity],
        body_format=apprise.NotifyFormat.TEXT,
        timeout=timeout,
    )
    if not result:
        said = [e.message for e in result.logs() if e.level in ("WARNING", "ERROR", "CRITICAL")]
        raise DeliveryError(f"apprise: {result.status.name.lower()}" + (": " + "; ".join(said[-3:]) if said else ""))


def _apprise_accepts(url: str) -> bool:
    import apprise

    _quiet_apprise()
    return bool(apprise.Apprise().add(url))


class AppriseChannel(Channel):
    """Any apprise URL: Teams, Discord, Telegram, ntfy, ... (https://github.com/caronc/apprise/wiki)."""

    kind = "apprise"

    def __init__(self, url: str, **common: Any) -> None:
        super().__init__(**common)
        self.url = url

    def problem(self) -> str | None:
        if not _apprise_accepts(self.url):
            return f"apprise does not accept {self.target}: an unknown scheme, or a part missing"
        return None

    def send(self, alert: AlertRecord) -> None:
        apprise_notify(self.url, alert, self.timeout)


_TRUE = {"1", "true", "yes", "on"}


def email_apprise_url(smtp_url: str, sender: str, recipients: list[str], timeout: float) -> str:
    """The apprise mailto URL for `smtp[s]://[user:password@]host[:port][?starttls=true]`: mailto:// with
    mode=insecure (plain SMTP, port 25 by default), mailtos:// with mode=ssl (SMTPS, 465) or mode=starttls
    (587). The login is apprise's: it logs in when the URL has a user."""
    parts = urlsplit(smtp_url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ConfigurationError(
            "SKIPPY_ALERT_SMTP_URL must be smtp://[user:password@]host[:port] or smtps://... "
            f"(got {mask_url(smtp_url)})"
        )
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"starttls"})
    if unknown:
        raise ConfigurationError(f"SKIPPY_ALERT_SMTP_URL: unknown option(s) {', '.join(unknown)}; known: starttls")
    starttls = query.get("starttls", ["false"])[-1].strip().lower() in _TRUE
    if scheme == "smtps":
        apprise_scheme, mode = "mailtos", "ssl"
    elif starttls:
        apprise_scheme, mode = "mailtos", "starttls"
    else:
        apprise_scheme, mode = "mailto", "insecure"
    if not recipients:
        raise ConfigurationError("SKIPPY_ALERT_EMAIL_TO is empty: e-mail alerts need at least one recipient")
    params = {
        "mode": mode,
        "from": sender,
        "to": ",".join(recipients),
        "format": "text",
        "cto": f"{timeout:g}",
        "rto": f"{timeout:g}",
    }
    return f"{apprise_scheme}://{parts.netloc}/?{urlencode(params)}"


class EmailChannel(Channel):
    """E-mail over SMTP (through apprise's mailto plugin), from `alert_email_from` to `alert_email_to`."""

    kind = "email"

    def __init__(self, smtp_url: str, sender: str, recipients: list[str], **common: Any) -> None:
        super().__init__(**common)
        self.smtp_url, self.sender, self.recipients = smtp_url, sender, recipients

    def apprise_url(self) -> str:
        return email_apprise_url(self.smtp_url, self.sender, self.recipients, self.timeout)

    def problem(self) -> str | None:
        try:
            url = self.apprise_url()
        except ConfigurationError as exc:
            return str(exc)
        return None if _apprise_accepts(url) else "apprise does not accept the SMTP settings"

    def send(self, alert: AlertRecord) -> None:
        apprise_notify(self.apprise_url(), alert, self.timeout)


def apprise_channel_name(url: str) -> str:
    """`apprise:<8 hex>`: stable while the URL is configured, whatever its position in the list, and
    saying nothing of the URL."""
    return "apprise:" + hashlib.sha256(url.encode()).hexdigest()[:8]


def _smtp_target(smtp_url: str) -> str:
    """The masked SMTP URL; `?starttls=true` is no secret and says how the connection is made."""
    shown = mask_url(smtp_url.split("?", 1)[0])
    return shown + " (STARTTLS)" if "starttls=true" in smtp_url.lower() else shown


def _value(secret: SecretStr | None) -> str | None:
    """A secret setting's value; None when unset or blank (`SKIPPY_ALERT_SLACK_WEBHOOK_URL=` switches off)."""
    value = secret.get_secret_value().strip() if secret is not None else ""
    return value or None


def configured_channels(settings: Settings) -> list[Channel]:
    """Every channel the settings switch on, in a fixed order."""
    timeout = settings.alert_timeout_seconds
    channels: list[Channel] = []
    if (url := _value(settings.alert_slack_webhook_url)) is not None:
        channels.append(
            SlackChannel(
                url,
                name="slack",
                target=mask_url(url),
                min_severity=settings.alert_slack_min_severity,
                settings=["SKIPPY_ALERT_SLACK_WEBHOOK_URL", "SKIPPY_ALERT_SLACK_MIN_SEVERITY"],
                timeout=timeout,
            )
        )
    if (key := _value(settings.alert_pagerduty_routing_key)) is not None:
        channels.append(
            PagerDutyChannel(
                settings.alert_pagerduty_url,
                key,
                name="pagerduty",
                target=f"{mask_url(settings.alert_pagerduty_url)} (routing key {MASK})",
                min_severity=settings.alert_pagerduty_min_severity,
                settings=[
                    "SKIPPY_ALERT_PAGERDUTY_ROUTING_KEY",
                    "SKIPPY_ALERT_PAGERDUTY_URL",
                    "SKIPPY_ALERT_PAGERDUTY_MIN_SEVERITY",
                ],
                timeout=timeout,
            )
        )
    if (smtp := _value(settings.alert_smtp_url)) is not None:
        recipients = ", ".join(settings.alert_email_to) or "(no recipient)"
        channels.append(
            EmailChannel(
                smtp,
                settings.alert_email_from,
                list(settings.alert_email_to),
                name="email",
                target=f"{_smtp_target(smtp)} → {recipients}",
                min_severity=settings.alert_email_min_severity,
                settings=[
                    "SKIPPY_ALERT_SMTP_URL",
                    "SKIPPY_ALERT_EMAIL_FROM",
                    "SKIPPY_ALERT_EMAIL_TO",
                    "SKIPPY_ALERT_EMAIL_MIN_SEVERITY",
                ],
                timeout=timeout,
            )
        )
    if (url := _value(settings.alert_webhook_url)) is not None:
        channels.append(
            WebhookChannel(
                url,
                name="webhook",
                target=mask_url(url),
                min_severity=settings.alert_webhook_min_severity,
                settings=["SKIPPY_ALERT_WEBHOOK_URL", "SKIPPY_ALERT_WEBHOOK_MIN_SEVERITY"],
                timeout=timeout,
            )
        )
    seen: set[str] = set()
    for secret in settings.alert_apprise_urls:
        url = _value(secret) or ""
        name = apprise_channel_name(url)
        if not url or name in seen:
            continue
        seen.add(name)
        channels.append(
            AppriseChannel(
                url,
                name=name,
                target=mask_url(url, keep_host=False),
                min_severity=settings.alert_apprise_min_severity,
                settings=["SKIPPY_ALERT_APPRISE_URLS", "SKIPPY_ALERT_APPRISE_MIN_SEVERITY"],
                timeout=timeout,
            )
        )
    return channels


CHANNEL_SETTINGS = (
    "SKIPPY_ALERT_SLACK_WEBHOOK_URL, SKIPPY_ALERT_PAGERDUTY_ROUTING_KEY, SKIPPY_ALERT_SMTP_URL (with "
    "SKIPPY_ALERT_EMAIL_TO), SKIPPY_ALERT_WEBHOOK_URL or SKIPPY_ALERT_APPRISE_URLS"
)


def redactor(settings: Settings) -> Redactor:
    """Masks every configured channel secret in a text."""
    secrets: list[tuple[str, bool]] = []
    for value, public_host in (
        (settings.alert_slack_webhook_url, True),
        (settings.alert_pagerduty_routing_key, False),
        (settings.alert_webhook_url, True),
        (settings.alert_smtp_url, True),
        *((url, False) for url in settings.alert_apprise_urls),
    ):
        if (secret := _value(value)) is not None:
            secrets.append((secret, public_host))
    return Redactor(secrets)
