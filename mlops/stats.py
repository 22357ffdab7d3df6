"""Statistics behind the platform's deploy decisions: a paired stationary block bootstrap of two
strategies' per-bar series on the same bars, and the number of bars a paired Sharpe test needs; and the
stationary bootstrap itself, which the drift nulls (drift/null.py) resample with too.

Pure numpy (scipy only for a normal quantile in `bars_for_power`), no I/O. The bootstrap resamples the
bars *jointly* (both series with the same indices), so the correlation between candidate and champion —
usually high, since both trade the same market with similar features — shrinks the standard error of
their difference, as it should; blocks keep volatility clustering and autocorrelation inside each
resample.

The sampler is Politis & Romano's stationary bootstrap exactly as `arch.bootstrap.StationaryBootstrap`
runs it (a position starts a new block at a uniformly drawn row with probability 1/mean block length,
else continues the previous block, wrapping past the last row), and the mean block length is Politis &
White's, as `arch.bootstrap.optimal_block_length` computes it (with Patton, Politis & White's 2009
correction). Both are written here in numpy rather than called from arch: arch's sampler draws one
resample per Python call (2,000 calls for a gate test, ≈ 40,000 for a drift baseline's nulls) and
`import arch` loads its volatility models, statsmodels and matplotlib (1–2 s of a CLI run). All
replications are drawn at once; only the random stream differs from arch's (same seed, same result,
here as there). tests/pipeline/test_bootstrap_draws.py checks both against arch: the same index paths
from the same random numbers, the same block lengths, and matching bootstrap distributions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import numpy as np

EPS = 1e-12
MIN_BLOCK = 1.0
CHUNK_CELLS = 2_000_000  # resampled positions materialised at once (bounds memory for long series)


def politis_white_block_length(x: np.ndarray) -> float:
    """Politis–White's optimal mean block length of a stationary bootstrap of the 1-D series `x` — the
    "stationary" column of `arch.bootstrap.optimal_block_length` (arch 8), step for step: the tuning
    parameter m is twice the first lag after which kₙ = max(5, log₁₀ n) autocorrelations are all inside
    ±2√(log₁₀ n / n) (at most ⌈√n⌉ + kₙ), the flat-top kernel sums give g and the long-run variance, and the
    result is (2g²/d · n)^⅓ with d = 2·(long-run variance)², capped at min(3√n, n/3)."""
    x = np.asarray(x, dtype=float)
    nobs = x.shape[0]
    eps = x - x.mean(0)
    b_max = np.ceil(min(3 * np.sqrt(nobs), nobs / 3))
    kn = max(5, int(np.log10(nobs)))
    m_max = int(np.ceil(np.sqrt(nobs))) + kn
    cv = 2 * np.sqrt(np.log10(nobs) / nobs)
    acv = np.zeros(m_max + 1)
    abs_acorr = np.zeros(m_max + 1)
    opt_m: int | None = None
    for i in range(m_max + 1):
        v1 = eps[i + 1 :] @ eps[i + 1 :]
        v2 = eps[: -(i + 1)] @ eps[: -(i + 1)]
        cross_prod = eps[i:] @ eps[: nobs - i]
        acv[i] = cross_prod / nobs
        abs_acorr[i] = np.abs(cross_prod) / np.sqrt(v1 * v2)
        if i >= kn and opt_m is None and np.all(abs_acorr[i - kn : i] < cv):
            opt_m = i - kn
    m = min(2 * max(opt_m, 1) if opt_m is not None else m_max, m_max)
    g = 0.0
    lr_acv = acv[0]
    for k in range(1, m + 1):
        lam = 1 if k / m <= 1 / 2 else 2 * (1 - k / m)
        g += 2 * lam * k * acv[k]
        lr_acv += 2 * lam * acv[k]
    d_sb = 2 * lr_acv**2
    b_sb = ((2 * g**2) / d_sb) ** (1 / 3) * nobs ** (1 / 3)
    return float(min(b_sb, b_max))


@dataclass(frozen=True)
class StationaryPaths:
    """`draws` stationary-bootstrap resamples of `length` positions over rows 0..n−1, kept as their blocks
    of consecutive rows: block k covers rows starts[k], starts[k]+1, … (sizes[k] of them, wrapping from
    n−1 to 0); the blocks of draw d are first[d] up to first[d+1] (the last draw's run to the end)."""

    n: int
    length: int
    starts: np.ndarray
    sizes: np.ndarray
    first: np.ndarray

    @classmethod
    def from_block_starts(cls, n: int, new: np.ndarray, starts: np.ndarray) -> StationaryPaths:
        """Paths from `new` (draws, length), True where a block begins (position 0 always), and the row
        each block starts at, in order (draw after draw)."""
        if not new[:, 0].all() or starts.size != np.count_nonzero(new):
            raise ValueError("every draw begins a block, and every block needs its starting row")
        begins = np.flatnonzero(new)  # flat positions where a block begins, draw after draw
        sizes = np.diff(np.append(begins, new.size))
        first = np.searchsorted(begins, np.arange(new.shape[0]) * new.shape[1])
        return cls(n, int(new.shape[1]), np.asarray(starts, dtype=np.int64), sizes, first)

    @property
    def draws(self) -> int:
        return int(self.first.size)

    def select(self, lo: int, hi: int) -> StationaryPaths:
        """Draws lo..hi−1."""
        hi = min(hi, self.draws)
        end = int(self.first[hi]) if hi < self.draws else int(self.starts.size)
        begin = int(self.first[lo])
        return StationaryPaths(
            self.n, self.length, self.starts[begin:end], self.sizes[begin:end], self.first[lo:hi] - begin
        )

    def chunks(self, cells: int = CHUNK_CELLS) -> Iterator[tuple[int, StationaryPaths]]:
        """(first draw, paths) of consecutive draws, about `cells` positions at a time."""
        step = max(1, cells // max(self.length, 1))
        for lo in range(0, self.draws, step):
            yield lo, self.select(lo, lo + step)

    def indices(self) -> np.ndarray:
        """(draws, length) row indices, the resamples as arch's `update_indices` returns them."""
        block = np.repeat(np.arange(self.sizes.size), self.sizes)
        offset = np.arange(block.size) - np.repeat(np.cumsum(self.sizes) - self.sizes, self.sizes)
        return np.asarray((self.starts[block] + offset) % self.n).reshape(self.draws, self.length)


def stationary_paths(n: int, length: int, draws: int, block: float, rng: np.random.Generator) -> StationaryPaths:
    """The first `length` positions of `draws` stationary-bootstrap resamples of n rows with mean block
    length `block` (≥ 1): position 0 and, with probability 1/block, every later position starts a block at
    a uniformly drawn row; otherwise it takes the row after the previous position's (n−1 → 0). This is
    arch's sampler (`stationary_bootstrap_sample`: a new block where its uniform u ≤ 1/block), with the
    uniforms drawn first for all draws and then one row per block, instead of n of each per draw."""
    if n < 1 or not 1 <= length <= n or draws < 1:
        raise ValueError(f"cannot draw {draws} resamples of {length} positions from {n} rows")
    if not block >= 1:
        raise ValueError(f"the mean block length must be ≥ 1, got {block}")
    p = 1.0 / block
    step = max(1, CHUNK_CELLS // length)
    new = np.concatenate([rng.random((min(step, draws - lo), length)) <= p for lo in range(0, draws, step)])
    new[:, 0] = True
    return StationaryPaths.from_block_starts(n, new, rng.integers(n, size=int(new.sum()), dtype=np.int64))


@dataclass(frozen=True)
class PairedTest:
    """Difference statistic(a) − statistic(b) on the same bars, with a bootstrap CI and one-sided p.

    `p_value` is for H0: the difference is ≤ 0 (a is no better than b), from the bootstrap distribution
    of the difference re-centred on zero: p = (1 + #{d*ᵦ − d̂ ≥ d̂}) / (B + 1)."""

    statistic: str
    a: float
    b: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    confidence: float
    block_length: float
    replications: int
    n: int
    correlation: float

    def as_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def annualised_sharpe(returns: np.ndarray, periods_per_year: float, axis: int = -1) -> np.ndarray:
    """mean / sd (ddof 1) × √periods, along `axis`; 0 where the sd is 0 (a flat strategy)."""
    r = np.asarray(returns, dtype=float)
    mean = r.mean(axis=axis)
    sd = r.std(axis=axis, ddof=1)
    return np.where(sd > EPS, mean / np.where(sd > EPS, sd, 1.0), 0.0) * math.sqrt(periods_per_year)


def block_length(*series: np.ndarray) -> float:
    """Mean block length for the stationary bootstrap: Politis–White's estimate on each series (and on
    their difference when there are two), the largest of them, at least 1."""
    columns = [np.asarray(s, dtype=float) for s in series]
    if len(columns) == 2:
        columns.append(columns[0] - columns[1])
    estimates = [politis_white_block_length(c) for c in columns if np.std(c) > EPS and c.size >= 10]
    finite = [e for e in estimates if math.isfinite(e)]
    return max([MIN_BLOCK, *finite])


def paired_bootstrap(
    a: np.ndarray,
    b: np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray],
    *,
    name: str,
    replications: int = 2000,
    confidence: float = 0.90,
    seed: int = 0,
) -> PairedTest:
    """Bootstrap the difference statistic(a) − statistic(b), resampling bars jointly.

    `statistic` maps an array of shape (..., n) to (...) along the last axis (e.g. an annualised Sharpe
    or a mean), so all replications are computed in one vectorised call. The CI is the percentile
    interval at `confidence` (two-sided); a 90 % interval's lower end is the one-sided 95 % bound. The
    `replications` resamples are drawn at once from `seed` (stationary_paths) and evaluated a chunk of
    them at a time."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired series must be 1-D and of equal length, got {a.shape} and {b.shape}")
    if a.size < 10:
        raise ValueError(f"a paired test needs at least 10 bars, got {a.size}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("paired series contain NaN or inf")
    block = block_length(a, b)  # a mean length: a float, as the stationary bootstrap defines it
    paths = stationary_paths(a.size, a.size, replications, block, np.random.default_rng(seed))
    draws = np.empty(replications)
    for lo, part in paths.chunks():
        indices = part.indices()
        draws[lo : lo + part.draws] = statistic(a[indices]) - statistic(b[indices])
    estimate_a, estimate_b = float(statistic(a)), float(statistic(b))
    difference = estimate_a - estimate_b
    exceed = int(np.sum(draws - difference >= difference))
    tail = (1 - confidence) / 2
    low, high = np.quantile(draws, [tail, 1 - tail])
    sa, sb = np.std(a), np.std(b)
    correlation = float(np.corrcoef(a, b)[0, 1]) if sa > EPS and sb > EPS else 0.0
    return PairedTest(
        statistic=name,
        a=estimate_a,
        b=estimate_b,
        difference=difference,
        ci_low=float(low),
        ci_high=float(high),
        p_value=(1 + exceed) / (replications + 1),
        confidence=confidence,
        block_length=block,
        replications=replications,
        n=int(a.size),
        correlation=correlation,
    )


def paired_sharpe_test(
    a: np.ndarray,
    b: np.ndarray,
    periods_per_year: float,
    *,
    replications: int = 2000,
    confidence: float = 0.90,
    seed: int = 0,
) -> PairedTest:
    """Annualised Sharpe of `a` minus that of `b` on the same bars; H0: a's Sharpe is no higher."""
    return paired_bootstrap(
        a,
        b,
        lambda x: annualised_sharpe(x, periods_per_year),
        name="sharpe_ratio",
        replications=replications,
        confidence=confidence,
        seed=seed,
    )


def paired_mean_test(
    a: np.ndarray, b: np.ndarray, *, name: str, replications: int = 2000, confidence: float = 0.90, seed: int = 0
) -> PairedTest:
    """Mean of `a` minus mean of `b` on the same bars (e.g. a Brier-score improvement); H0: ≤ 0."""
    return paired_bootstrap(
        a, b, lambda x: x.mean(axis=-1), name=name, replications=replications, confidence=confidence, seed=seed
    )


def bars_for_power(
    min_effect: float, periods_per_year: float, correlation: float, alpha: float, power: float = 0.5
) -> int:
    """Bars a one-sided paired Sharpe test at level `alpha` needs to detect an annualised Sharpe
    difference of `min_effect` with probability `power`.

    For two strategies with small per-bar Sharpe ratios whose returns correlate at ρ, the variance of
    the per-bar Sharpe difference is ≈ 2(1 − ρ)/n (Jobson–Korkie with Memmel's correction, leading
    term), so n = 2(1 − ρ)·periods·((z₁₋α + z_power)/effect)². At power 0.5, z_power = 0."""
    if min_effect <= 0:
        raise ValueError(f"min_effect must be > 0, got {min_effect}")
    from scipy import stats  # here only: drift/null.py imports this module and needs no scipy.stats

    rho = min(max(correlation, -0.99), 0.99)
    z = float(stats.norm.ppf(1 - alpha) + stats.norm.ppf(power))
    if not math.isfinite(z) or z <= 0:  # α ≥ 0.5 (or 1): any positive lead passes, no sample size to plan
        return 10
    return max(10, math.ceil(2 * (1 - rho) * periods_per_year * (z / min_effect) ** 2))
