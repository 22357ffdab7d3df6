"""How a drift statistic becomes a status: the rule's thresholds (effect-size floors) and p-value
levels, the threshold-only classification of baselines without a null, and the worst of several."""

from __future__ import annotations

from dataclasses import dataclass

SEVERITY = {"ok": 0, "insufficient": 1, "warning": 2, "critical": 3}


@dataclass(frozen=True)
class Rule:
    """A statistic's status rule (DESIGN §8): `critical` when its p-value is below `critical_p` and its
    value passes `critical`; `warning` likewise with `warning_p` and `warning`; else `ok`. The values come
    from Settings (drift.registry names the fields); there are no defaults here to drift apart from them."""

    warning: float
    critical: float
    warning_p: float
    critical_p: float


def classify(value: float | None, warning: float, critical: float) -> str:
    """ok / warning / critical for a value above its thresholds; no value (too little data) is `insufficient`."""
    if value is None or value != value:  # None or NaN: nothing to judge
        return "insufficient"
    if value > critical:
        return "critical"
    if value > warning:
        return "warning"
    return "ok"


def worst(statuses: list[str]) -> str:
    return max(statuses, key=SEVERITY.__getitem__) if statuses else "ok"
