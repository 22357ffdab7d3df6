"""Feature drift as a test: each feature's KL against its stored bootstrap null, Benjamini–Hochberg
across features, the KL thresholds kept as effect-size floors.

Rule (DESIGN §8): a feature is `critical` when its BH-adjusted p-value is below `critical_p` **and** its
KL ≥ `critical`; `warning` when adjusted p < `warning_p` and KL ≥ `warning`; else `ok`. The
check's feature status is the worst feature's, and the summary names the feature that decides it (the
most significant among those at the worst status), so its KL, p and status always belong together.

The null is stored for a few window lengths. A check of another length uses the nearest stored length
(in ratio) with the KL rescaled by current/stored length (KL's sampling noise falls roughly as
1/length) and says `approximate`. Baselines written before nulls existed have no test: their status is
judged on the KL thresholds alone and every row says so (`tested: false`); retraining writes a null."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from statsmodels.stats.multitest import multipletests

from drift.bins import kl_and_psi
from drift.null import Null, nearest_window
from drift.status import SEVERITY, Rule, classify

UNTESTED_NOTE = "baseline has no null distribution (trained before drift tests): status on KL thresholds only"


@dataclass(frozen=True)
class FeatureRule(Rule):
    """The KL thresholds and BH-adjusted p levels, and the floor of the bin shares KL is computed on."""

    floor: float


@dataclass(frozen=True)
class FeatureVerdict:
    feature: str
    kl: float
    psi: float
    status: str
    p_value: float | None  # bootstrap p with the +1 correction; None without a stored null
    adjusted_p: float | None  # Benjamini–Hochberg across the check's features
    null_percentile: float | None  # where the KL falls in the null, 0–100
    null_window: int | None  # the stored window length whose null was used
    approximate: bool  # the check's window differs from null_window
    non_finite: int

    def details(self) -> dict[str, Any]:
        tested = self.p_value is not None
        out: dict[str, Any] = {"psi": self.psi, "non_finite": self.non_finite, "tested": tested}
        if tested:
            out |= {
                "p_value": self.p_value,
                "adjusted_p": self.adjusted_p,
                "null_percentile": self.null_percentile,
                "null_window": self.null_window,
                "approximate": self.approximate,
            }
        else:
            out["note"] = UNTESTED_NOTE
        return out


def benjamini_hochberg(p_values: list[float]) -> list[float]:
    """BH-adjusted p-values (statsmodels' fdr_bh), in the input order."""
    if not p_values:
        return []
    return [float(p) for p in multipletests(np.asarray(p_values, dtype=float), method="fdr_bh")[1]]


def _null_for(baseline: Mapping[str, Any], name: str, window: int) -> Null | None:
    null = baseline.get("null")
    if not null or not null.get("windows"):
        return None
    stored = nearest_window([int(w) for w in null["windows"]], window)
    entry = null["windows"][str(stored)]["features"].get(name)
    return Null.from_payload(stored, entry) if entry else None


def _status(kl: float, adjusted_p: float | None, rule: FeatureRule) -> str:
    if adjusted_p is None:
        return classify(kl, rule.warning, rule.critical)
    if adjusted_p < rule.critical_p and kl >= rule.critical:
        return "critical"
    if adjusted_p < rule.warning_p and kl >= rule.warning:
        return "warning"
    return "ok"


def feature_verdicts(
    baseline: Mapping[str, Any], current: Mapping[str, np.ndarray], rule: FeatureRule
) -> list[FeatureVerdict]:
    """One verdict per feature of `baseline["features"]`, in its order; `current` maps each name to the
    window's values (every column the same length)."""
    names = list(baseline["features"])
    missing = [n for n in names if n not in current]
    if missing:
        raise ValueError(f"current window lacks features {missing}")
    stats = []
    for name in names:
        ref = baseline["features"][name]
        values = np.asarray(current[name], dtype=float)
        kl, psi = kl_and_psi(np.asarray(ref["shares"]), np.asarray(ref["edges"]), values, rule.floor)
        null = _null_for(baseline, name, len(values))
        scaled = kl * len(values) / null.window if null else kl
        p = null.p_value(scaled) if null else None
        pct = null.percentile(scaled) if null else None
        stats.append((name, kl, psi, null, p, pct, int((~np.isfinite(values)).sum())))
    tested = [s[4] for s in stats if s[4] is not None]
    adjusted = iter(benjamini_hochberg(tested))
    verdicts = []
    for name, kl, psi, null, p, pct, non_finite in stats:
        adj = next(adjusted) if p is not None else None
        verdicts.append(
            FeatureVerdict(
                name,
                kl,
                psi,
                _status(kl, adj, rule),
                p,
                adj,
                pct,
                null.window if null else None,
                bool(null and null.window != len(current[name])),
                non_finite,
            )
        )
    return verdicts


def deciding_feature(verdicts: list[FeatureVerdict]) -> FeatureVerdict:
    """The feature that decides the check's status: at the worst status, the most significant (smallest
    adjusted p, then the largest KL; without a test, the largest KL)."""
    if not verdicts:
        raise ValueError("no feature verdicts to summarise")
    worst = max(SEVERITY[v.status] for v in verdicts)
    at_worst = [v for v in verdicts if SEVERITY[v.status] == worst]
    return min(at_worst, key=lambda v: (v.adjusted_p if v.adjusted_p is not None else 1.0, -v.kl))


def summary_details(verdicts: list[FeatureVerdict]) -> dict[str, Any]:
    """The summary row's details: the deciding feature with its numbers, the largest KL for reference,
    and which features are drifting."""
    top = deciding_feature(verdicts)
    largest = max(verdicts, key=lambda v: v.kl)
    return {
        "deciding_feature": top.feature,
        "deciding_kl": top.kl,
        "deciding_p_value": top.p_value,
        "deciding_adjusted_p": top.adjusted_p,
        "deciding_null_percentile": top.null_percentile,
        "tested": top.p_value is not None,
        "max_kl": largest.kl,
        "max_kl_feature": largest.feature,
        "critical": [v.feature for v in verdicts if v.status == "critical"],
        "drifted": [v.feature for v in verdicts if v.status in ("warning", "critical")],
    } | ({} if top.p_value is not None else {"note": UNTESTED_NOTE})
