"""The data quality gate a training set must pass before any training happens."""

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


def check_quality(data: Dataset, settings: Settings) -> QualityReport:
    """≥ min_training_samples training rows, no NaN/inf after warm-up, both classes present in a
    sensible share in every split, no duplicate timestamps."""
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
        },
        positive_share=shares.get("train"),
    )
