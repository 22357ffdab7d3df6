"""Each channel against a real server on loopback, with the exact shape of what it sends: Slack's
incoming webhook, PagerDuty's Events API v2, the generic JSON webhook, e-mail over SMTP (aiosmtpd,
with and without a login) and an apprise URL (json://). Every message says severity, agent, what
happened and when, the alert id and the command that acknowledges it."""

from __future__ import annotations

import email
from email.message import Message
from pathlib import Path

import pytest

from mlops.alerts import flush, raise_alert
from mlops.alerts.channels import email_apprise_url
from mlops.alerts.secrets import mask_url
from mlops.processes import HOSTNAME
from tests.alerts.loopback import (
    APPRISE_TOKEN,
    PD_KEY,
    SLACK_TOKEN,
    SMTP_PASSWORD,
    WEBHOOK_TOKEN,
    http_recorder,
    settled,
    smtp_recorder,
)
from tests.conftest import make_settings

DETAILS = {"max_kl": 0.31, "p_value": 0.001, "feature": "volatility_20"}


def _says_everything(text: str, alert_id: int, severity: str = "CRITICAL") -> None:
    assert f"[{severity}] drift_critical" in text
    assert "market_insight" in text
    assert "feature drift is critical" in text
    assert " UTC" in text  # when
    assert f"Alert {alert_id}" in text and f"skippy alerts ack {alert_id}" in text


def test_slack_gets_one_text_message(tmp_path: Path) -> None:
    with http_recorder() as slack:
        settings = make_settings(
            tmp_path,
            alert_slack_webhook_url=slack.url(f"/services/T01/B02/{SLACK_TOKEN}"),
            alert_slack_min_severity="info",
        )
        _migrate(settings)
        alert = raise_alert(
            settings,
            severity="critical",
            kind="drift_critical",
            agent="market_insight",
            message="feature drift is critical: KL 0.31 > 0.1",
            details=DETAILS,
        )
        assert alert is not None
        flush(settings, 10)
        [request] = slack.wait_for(1)
    assert request.path == f"/services/T01/B02/{SLACK_TOKEN}"
    body = request.json()
    assert list(body) == ["text"]
    _says_everything(body["text"], alert.id)
    assert '"max_kl": 0.31' in body["text"]
    assert settled(settings, alert.id)["slack"].status == "sent"


def test_pagerduty_gets_an_events_v2_trigger(tmp_path: Path) -> None:
    with http_recorder() as pagerduty:
        settings = make_settings(
            tmp_path,
            alert_pagerduty_routing_key=PD_KEY,
            alert_pagerduty_url=pagerduty.url("/v2/enqueue"),
            alert_pagerduty_min_severity="warning",
        )
        _migrate(settings)
        alert = raise_alert(
            settings,
            severity="warning",
            kind="drift_critical",
            agent="market_insight",
            message="feature drift is critical: KL 0.31 > 0.1",
            details=DETAILS,
        )
        assert alert is not None
        flush(settings, 10)
        [request] = pagerduty.wait_for(1)
    assert request.path == "/v2/enqueue"
    event = request.json()
    assert set(event) == {"routing_key", "event_action", "dedup_key", "client", "payload"}
    assert event["routing_key"] == PD_KEY and event["event_action"] == "trigger"
    assert event["dedup_key"] == "skippy:drift_critical:market_insight"
    payload = event["payload"]
    assert payload["severity"] == "warning"  # PagerDuty's own severities: critical, warning, info
    assert payload["component"] == "market_insight" and payload["source"] == HOSTNAME
    assert payload["class"] == "drift_critical"
    assert payload["summary"].startswith("[Skippy WARNING] drift_critical on market_insight: feature drift")
    details = payload["custom_details"]
    assert details["alert_id"] == alert.id and details["details"] == DETAILS and details["count"] == 1
    assert details["acknowledge"] == f"skippy alerts ack {alert.id}"


def test_webhook_gets_the_alert_as_json(tmp_path: Path) -> None:
    with http_recorder() as hook:
        settings = make_settings(tmp_path, alert_webhook_url=hook.url(f"/hooks/{WEBHOOK_TOKEN}?source=skippy"))
        _migrate(settings)
        alert = raise_alert(
            settings,
            severity="info",
            kind="retrain_rejected",
            agent="risk_assessor",
            message="the candidate did not beat the champion",
            details={"p_value": 0.4},
        )
        assert alert is not None
        flush(settings, 10)
        [request] = hook.wait_for(1)
    assert request.path == f"/hooks/{WEBHOOK_TOKEN}?source=skippy"
    assert request.headers["Content-Type"] == "application/json"
    body = request.json()
    assert body == {
        "id": alert.id,
        "severity": "info",
        "kind": "retrain_rejected",
        "agent": "risk_assessor",
        "message": "the candidate did not beat the champion",
        "details": {"p_value": 0.4},
        "first_seen": alert.first_seen.isoformat(),
        "last_seen": alert.last_seen.isoformat(),
        "count": 1,
    }


def _mail(raw: bytes) -> Message:
    return email.message_from_bytes(raw)


def _plain_text(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode()
    raise AssertionError("no text/plain part")


def test_email_over_plain_smtp_reaches_every_recipient(tmp_path: Path) -> None:
    with smtp_recorder() as smtp:
        settings = make_settings(
            tmp_path,
            alert_smtp_url=f"smtp://127.0.0.1:{smtp.port}",
            alert_email_from="skippy@example.com",
            alert_email_to=["ops@example.com", "quant@example.com"],
            alert_email_min_severity="critical",
        )
        _migrate(settings)
        alert = raise_alert(
            settings,
            severity="critical",
            kind="drift_critical",
            agent="market_insight",
            message="feature drift is critical: KL 0.31 > 0.1",
            details=DETAILS,
        )
        assert alert is not None
        flush(settings, 10)
        mails = smtp.wait_for(2)
    assert sorted(r for m in mails for r in m.rcpt_tos) == ["ops@example.com", "quant@example.com"]
    for mail in mails:
        message = _mail(mail.content)
        assert mail.mail_from == "skippy@example.com" and message["From"] == "skippy@example.com"
        assert message["Subject"].startswith("[Skippy CRITICAL] drift_critical on market_insight: feature drift")
        _says_everything(_plain_text(message), alert.id)
        assert mail.login is None
    assert settled(settings, alert.id)["email"].status == "sent"


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_email_logs_in_with_the_urls_user_and_password(tmp_path: Path) -> None:
    with smtp_recorder(password=SMTP_PASSWORD) as smtp:
        settings = make_settings(
            tmp_path,
            alert_smtp_url=f"smtp://alerts:{SMTP_PASSWORD}@127.0.0.1:{smtp.port}",
            alert_email_to=["ops@example.com"],
            alert_email_min_severity="info",
        )
        _migrate(settings)
        alert = raise_alert(settings, severity="info", kind="test", agent=None, message="hello")
        assert alert is not None
        flush(settings, 10)
        [mail] = smtp.wait_for(1)
    assert mail.login == "alerts" and mail.rcpt_tos == ["ops@example.com"]


def test_smtp_urls_translate_to_apprise_modes() -> None:
    plain = email_apprise_url("smtp://mail.example.com", "a@x.org", ["b@y.org"], 10)
    assert plain.startswith("mailto://mail.example.com/?mode=insecure&") and "to=b%40y.org" in plain
    tls = email_apprise_url("smtp://u:p@mail.example.com:587?starttls=true", "a@x.org", ["b@y.org"], 10)
    assert tls.startswith("mailtos://u:p@mail.example.com:587/?mode=starttls&")
    assert email_apprise_url("smtps://mail.example.com", "a@x.org", ["b@y.org"], 10).startswith(
        "mailtos://mail.example.com/?mode=ssl&"
    )


def test_apprise_url_reaches_its_service(tmp_path: Path) -> None:
    with http_recorder() as service:
        url = f"json://127.0.0.1:{service.port}/notify/{APPRISE_TOKEN}"
        settings = make_settings(tmp_path, alert_apprise_urls=[url], alert_apprise_min_severity="warning")
        _migrate(settings)
        alert = raise_alert(
            settings,
            severity="critical",
            kind="drift_critical",
            agent="market_insight",
            message="feature drift is critical: KL 0.31 > 0.1",
        )
        assert alert is not None
        flush(settings, 10)
        [request] = service.wait_for(1)
    assert request.path == f"/notify/{APPRISE_TOKEN}"
    body = request.json()
    assert body["title"].startswith("[Skippy CRITICAL] drift_critical on market_insight")
    assert body["type"] == "failure"  # apprise's own type for a critical alert
    _says_everything(body["message"], alert.id)
    [delivery] = settled(settings, alert.id).values()
    assert delivery.channel.startswith("apprise:") and delivery.status == "sent"


def test_targets_are_masked() -> None:
    assert mask_url(f"https://hooks.slack.com/services/T01/B02/{SLACK_TOKEN}") == "https://hooks.slack.com/***"
    assert mask_url(f"smtp://alerts:{SMTP_PASSWORD}@mail.example.com:587?starttls=true") == (
        "smtp://***@mail.example.com:587/***"
    )
    assert mask_url(f"tgram://{APPRISE_TOKEN}/12345", keep_host=False) == "tgram://***"
    assert mask_url("not a url") == "***"


def _migrate(settings: object) -> None:
    from mlops.db import upgrade_database
    from mlops.settings import Settings

    assert isinstance(settings, Settings)
    upgrade_database(settings.app_db_url)
