"""Prediction drift as a test: Wasserstein-1 between the reference's and the window's predicted
probabilities, divided by the reference predictions' standard deviation (Evidently's convention for
its 0.1 threshold: raw W1 on probabilities near 0.1 missed a 33 % rise of P(tail)), with a bootstrap
p-value from the null stored at training time (drift.null.prediction_nulls).

Rule: `critical` when p < `critical_p` and the normalised W1 > `critical`; `warning` when p <
`warning_p` and it is > `warning`; else `ok`. Without a stored null (older baselines) the thresholds
alone judge it and the details say so. Another window length than the stored ones uses the nearest,
the statistic rescaled by √(current/stored) (W1's sampling noise falls roughly as 1/√length)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from drift.null import Null, nearest_window
from drift.status import Rule, classify
from drift.wasserstein import wasserstein_1


@dataclass(frozen=True)
class PredictionVerdict:
    value: float  # W1 / sd(reference predictions)
    raw_w1: float
    reference_sd: float
    status: str
    p_value: float | None
    null_percentile: float | None
    null_window: int | None
    approximate: bool
    current_mean: float
    reference_mean: float

    def details(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "raw_w1": self.raw_w1,
            "reference_sd": self.reference_sd,
            "current_mean": self.current_mean,
            "reference_mean": self.reference_mean,
            "tested": self.p_value is not None,
        }
        if self.p_value is not None:
            out |= {
                "p_value": self.p_value,
                "null_percentile": self.null_percentile,
                "null_window": self.null_window,
                "approximate": self.approximate,
            }
        else:
            out["note"] = "baseline has no prediction null (trained before drift tests): thresholds only"
        if self.reference_sd == 0:
            out["note"] = "reference predictions are constant: the value is the raw W1, not normalised"
        return out


def _null(baseline: Mapping[str, Any], window: int) -> Null | None:
    null = baseline.get("null")
    if not null or not null.get("windows"):
        return None
    stored = nearest_window([int(w) for w in null["windows"]], window)
    entry = null["windows"][str(stored)].get("prediction")
    return Null.from_payload(stored, entry) if entry else None


def prediction_verdict(baseline: Mapping[str, Any], predictions: np.ndarray, rule: Rule) -> PredictionVerdict:
    reference = np.asarray(baseline["predictions_sorted"], dtype=float)
    current = np.asarray(predictions, dtype=float)
    current = current[np.isfinite(current)]
    raw = wasserstein_1(reference, current)
    sd = float(np.std(reference))
    value = raw / sd if sd > 0 else raw  # constant reference predictions: W1 cannot be normalised (noted)
    null = _null(baseline, current.size)
    scaled = value * math.sqrt(current.size / null.window) if null else value
    p = null.p_value(scaled) if null else None
    if p is None:
        status = classify(value, rule.warning, rule.critical)
    elif p < rule.critical_p and value > rule.critical:
        status = "critical"
    elif p < rule.warning_p and value > rule.warning:
        status = "warning"
    else:
        status = "ok"
    return PredictionVerdict(
        value,
        raw,
        sd,
        status,
        p,
        null.percentile(scaled) if null else None,
        null.window if null else None,
        bool(null and null.window != current.size),
        float(current.mean()),
        float(reference.mean()),
    )
