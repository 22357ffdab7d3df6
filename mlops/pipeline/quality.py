"""The data quality gate a training set must pass before any training happens.

Problems fail the gate (too few samples, NaN/inf after warm-up, one class missing, duplicate
timestamps). Warnings do not: missing bars against the series' own calendar above a share, zero-volume
bars, an open equal to the previous close on most bars (the `gap` feature is then zeroed) are recorded
in `checks` (stored in `training_data_quality.checks`) with the numbers behind them, because each has a
legitimate cause in real data and the features already handle it (see `mlops/data/features.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlops.agents.training import Dataset
from mlops.settings import Settings


@dataclass(frozen=True)
class QualityReport:
    passed: bool
    problems: list[str]
    checks: dict[str, Any] = field(default_factory=dict)
    positive_share: float | None = None
    warnings: list[str] = field(default_factory=list)


def _warnings(bar_checks: dict[str, Any], settings: Settings) -> list[str]:
    """Plain-words flags for the artefacts `bar_checks` measured."""
    found: list[str] = []
    calendar = bar_checks.get("calendar", {})
    share = float(calendar.get("missing_bar_share", 0.0))
    if share > settings.missing_bars_warning_share:
        found.append(
            f"{calendar.get('missing_bars', 0)} bars ({share:.1%}) of the series' own trading calendar are missing "
            f"(warning above {settings.missing_bars_warning_share:.0%})"
        )
    zero = int(bar_checks.get("zero_volume_bars", 0))
    if zero:
        found.append(f"{zero} bars have zero volume: volume_z scores them 0 and leaves them out of its statistics")
    if bar_checks.get("gap_zeroed_bars", 0):
        found.append(
            f"the open equals the previous close on {bar_checks.get('open_equals_previous_close_share', 0.0):.0%} "
            f"of bars: gap carries no information and is set to 0 on {bar_checks['gap_zeroed_bars']} bars"
        )
    return found


def check_quality(data: Dataset, settings: Settings) -> QualityReport:
    """≥ min_training_samples training rows, no NaN/inf after warm-up, both classes present in a
    sensible share in every split, no duplicate timestamps; calendar and bar artefacts as warnings."""
    sizes = data.splits.sizes()
    problems: list[str] = []
    if sizes["train"] < settings.min_training_samples:
        problems.append(
            f"only {sizes['train']} training samples (from {data.n_bars} bars); "
            f"at least {settings.min_training_samples} are required"
        )
    if sizes["validation"] < 10 or sizes["test"] < 10:
        problems.append(f"validation/test splits too small: {sizes}")
    if data.n_non_finite:
        problems.append(f"{data.n_non_finite} feature rows contain NaN or inf after the warm-up")
    if data.n_duplicate_ts:
        problems.append(f"{data.n_duplicate_ts} duplicate timestamps in the bars")
    shares: dict[str, float] = {}
    for part in ("train", "validation", "test"):
        idx = getattr(data.splits, part)
        if len(idx) == 0:
            continue
        share = float(np.mean(data.y[idx]))
        shares[part] = share
        low, high = settings.min_class_share, 1 - settings.min_class_share
        if not low <= share <= high:
            problems.append(
                f"{part} split has {share:.1%} positive labels: both classes must be at least "
                f"{settings.min_class_share:.0%} of it"
            )
    warnings = _warnings(data.bar_checks, settings)
    return QualityReport(
        passed=not problems,
        problems=problems,
        checks={
            "sizes": sizes,
            "positive_share": shares,
            "bars": data.n_bars,
            "non_finite_rows": data.n_non_finite,
            "duplicate_timestamps": data.n_duplicate_ts,
            "min_training_samples": settings.min_training_samples,
            "execution_fill": data.fill,
            "label_cut": data.label_cut,
            "base_rate": data.base_rate,
            "periods_per_year": data.periods_per_year,
            **data.bar_checks,
            "warnings": warnings,
        },
        positive_share=shares.get("train"),
        warnings=warnings,
    )
