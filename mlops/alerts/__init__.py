"""Alerts (DESIGN §9): stored, deduplicated, routed by severity to the configured channels (Slack,
PagerDuty, e-mail, a JSON webhook, any apprise URL), sent in the background with retries.

`raise_alert` never raises and never waits for a channel; `flush` lets a short-lived process wait for
its sends in flight; a `Courier` drains due deliveries (retries) in long-lived processes.
"""

from mlops.alerts.channels import configured_channels
from mlops.alerts.delivery import Courier, drain, flush
from mlops.alerts.records import (
    SEVERITIES,
    AlertRecord,
    AlertTestReport,
    ChannelInfo,
    ChannelResult,
    DeliveryRecord,
)
from mlops.alerts.service import (
    acknowledge_alert,
    dedup_key,
    get_alert,
    list_alerts,
    list_channels,
    raise_alert,
    send_test_alert,
)

__all__ = [
    "SEVERITIES",
    "AlertRecord",
    "AlertTestReport",
    "ChannelInfo",
    "ChannelResult",
    "Courier",
    "DeliveryRecord",
    "acknowledge_alert",
    "configured_channels",
    "dedup_key",
    "drain",
    "flush",
    "get_alert",
    "list_alerts",
    "list_channels",
    "raise_alert",
    "send_test_alert",
]
