"""The auto-rollback rule's statistics: where the looks of a probation fall, what each may spend, and the
test each makes. No I/O: the champion watch (mlops/pipeline/watch.py) and bench/rollback.py call the same
functions, so the benchmark's error rates are the watch's.

The rule, in words: a champion that replaced another is on probation for `auto_rollback_max_bars` bars
after its data. The watch looks at it K times, at bar counts fixed in advance: K = 3 looks at 1/3, 2/3 and
all of the probation, fewer when the probation is shorter than 3 × 60 bars (a look needs MIN_LOOK_BARS = 60:
on fewer bars the bootstrap's p-values are too small under H0); the default 250 bars give three. Look k
asks the promotion gate's own paired question with the roles swapped — would the previous champion pass the
gate against the new one? — on the first n_k probation bars: a paired stationary block bootstrap of the two
versions' net returns (risk_assessor: of their Brier scores when both define the same tail, as the gate
does), one-sided, H0 "the new champion is not worse". The look rolls back when p < auto_rollback_alpha / K ×
SMALL_SAMPLE_SHARE (¼). Bonferroni: whatever the looks' correlation, the chance that any look fires on a new
champion truly as good as the previous one is at most the sum of the looks' levels; the ¼ pays for the
bootstrap's small-sample optimism (its p-values run up to 3× too small on 60–100 bars), so that the measured
false rollback rate stays ≤ auto_rollback_alpha.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mlops.settings import Settings
from mlops.stats import PairedTest, paired_mean_test, paired_sharpe_test

MAX_LOOKS = 3
MIN_LOOK_BARS = 60  # on fewer bars the bootstrap's p-values run 3–5× too small under H0 (bench/rollback.py)
MIN_TEST_BARS = 10  # mlops.stats refuses fewer
# Each look spends this share of its Bonferroni α/K: on 60–100 bars of fat-tailed, volatility-clustered
# returns the paired bootstrap's p-value falls below 0.005 up to three times as often as it should under H0
# (bench/rollback.py measured 1.5 % at 60 bars, ρ = 0.5); a quarter of the share brings the whole
# probation's measured false rollbacks under α.
SMALL_SAMPLE_SHARE = 0.25


@dataclass(frozen=True)
class Look:
    number: int  # 1..count
    n_bars: int  # probation bars this look is made on (the first n_bars after the data)
    alpha: float  # its share of auto_rollback_alpha
    count: int  # looks planned in all


def planned_looks(max_bars: int, alpha: float) -> tuple[Look, ...]:
    """The looks of a probation of `max_bars` bars spending `alpha` in all: K = min(3, max_bars // 60)
    (at least 1) looks at ⌈max_bars·k/K⌉ bars (at least 10, the paired test's minimum), each at
    α/K × SMALL_SAMPLE_SHARE."""
    if max_bars < 1 or not 0 < alpha < 1:
        raise ValueError(f"a probation needs max_bars >= 1 and 0 < alpha < 1, got {max_bars} and {alpha}")
    count = max(1, min(MAX_LOOKS, max_bars // MIN_LOOK_BARS))
    share = alpha / count * SMALL_SAMPLE_SHARE
    return tuple(
        Look(k, max(MIN_TEST_BARS, math.ceil(max_bars * k / count)), share, count) for k in range(1, count + 1)
    )


def replications(settings: Settings, look_alpha: float) -> int:
    """Bootstrap draws for a look: the gate's, or more when its smallest p-value 1/(B+1) would not be
    well below the look's α (a look at 0.00083 needs B ≥ 3,600 for a p-value 3 × smaller to exist)."""
    return max(settings.gate_bootstrap_replications, math.ceil(3 / look_alpha))


@dataclass(frozen=True)
class LookTest:
    """One look's test. `p_value` is for H0 "the new champion is not worse" (small: it is worse);
    `sharpe` is the paired Sharpe test of previous − new, whichever decided."""

    statistic: str  # sharpe_ratio | brier
    p_value: float
    sharpe: PairedTest
    brier: PairedTest | None = None

    @property
    def difference(self) -> float:
        """Annualised Sharpe of the new champion minus the previous one's."""
        return -self.sharpe.difference

    def details(self) -> dict[str, float | str | None]:
        out: dict[str, float | str | None] = {
            "statistic": self.statistic,
            "p_value": self.p_value,
            "new_sharpe": self.sharpe.b,
            "previous_sharpe": self.sharpe.a,
            "sharpe_difference": self.difference,
            "sharpe_difference_ci": f"[{-self.sharpe.ci_high:+.3f}, {-self.sharpe.ci_low:+.3f}]",
            "sharpe_p_value": self.sharpe.p_value,
            "return_correlation": self.sharpe.correlation,
            "block_length": self.sharpe.block_length,
            "replications": self.sharpe.replications,
        }
        if self.brier is not None:
            out |= {"brier_difference": self.brier.difference, "brier_p_value": self.brier.p_value}
        return out


def look_test(
    new_returns: np.ndarray,
    previous_returns: np.ndarray,
    periods_per_year: float,
    settings: Settings,
    look: Look,
    *,
    brier: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> LookTest:
    """The look's test on the same bars: net per-bar returns (in excess of the risk-free rate) of the new
    and the previous champion; `brier` = (labels, new p, previous p) for a risk_assessor pair whose tails
    match, which the Brier scores then decide (as at the gate). H0: the new champion is not worse."""
    draws, confidence, seed = replications(settings, look.alpha), settings.gate_confidence, settings.seed
    # previous − new: the gate's test of a candidate (here the previous champion) against a champion.
    sharpe = paired_sharpe_test(
        previous_returns, new_returns, periods_per_year, replications=draws, confidence=confidence, seed=seed
    )
    if brier is None:
        return LookTest("sharpe_ratio", sharpe.p_value, sharpe)
    y, p_new, p_previous = brier
    worse = paired_mean_test(
        (p_new - y) ** 2, (p_previous - y) ** 2, name="brier", replications=draws, confidence=confidence, seed=seed
    )
    return LookTest("brier", worse.p_value, sharpe, worse)
