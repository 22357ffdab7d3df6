"""Null distributions of the drift statistics, built once at training time so a check never resamples.

A check's current window is a stretch of consecutive bars, and features such as a 60-bar volatility are
strongly autocorrelated: the KL of a calm-but-ordinary window against the training window is far from
what independent draws would give. So the null is the same statistic on windows of the check's length
drawn from the training window by a *stationary block bootstrap* (`mlops.stats.stationary_paths`: the
sampler of `arch.bootstrap.StationaryBootstrap`, every resample drawn at once), with a mean block length
of at least the check window itself (`block_share` × window, in whole rows) and never below
Politis–White's optimal length: short blocks break volatility clusters apart and give a far too narrow
null (too many false alarms), as the simulation in bench/decisions_drift.py shows. Each window is
compared with a resampled *pseudo-reference* of the training window's length, not with the reference
itself: the real reference is a sample of the process too, and ignoring that made the null too narrow.
Even so, with 2,000 persistent training bars the per-feature p-values remain somewhat anti-conservative
(a new window can be more extreme than anything the training window holds); the critical levels are
calibrated by simulation for that reason.

All features share one set of resampled indices per draw (their dependence is kept; Benjamini–Hochberg
assumes positive dependence, which this roughly is). A null is stored compactly as `Null`: the 101
percentiles of the draws plus the largest `TAIL` draws exactly, so p-values are exact where decisions
are made (p ≤ TAIL / draws) and interpolated above that.

Cost: a resample is kept as its blocks of consecutive rows, and a window's bin counts are sums of
differences of the training rows' cumulative bin counts, one per block — O(blocks × bins) per draw
instead of O(window) — since blocks are at least the window long on average (the position-by-position
count, `_bin_counts`, serves shorter blocks and checks the other in the tests)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from drift.bins import FLOOR
from mlops.stats import StationaryPaths, politis_white_block_length, stationary_paths

TAIL = 100  # largest draws stored exactly
PERCENTILES = np.linspace(0.0, 100.0, 101)
MAX_RESAMPLED_ROWS = 20_000  # longer training windows: the null resamples their most recent rows
PREDICTION_GRID = 2_000  # more reference predictions than this: W1 of the null on a quantile grid
CHUNK_DRAWS = 500  # draws handled at once (bounds memory)
CDF_CHUNK_CELLS = 100_000  # CDF values per step of the prediction null (≈ 0.8 MB: the arrays stay in cache)
CHUNK_CELLS = 4_000_000  # picked (row, feature) cells per counting step: ≈ 32 MB of int64 codes
REFERENCE_DRAWS = 250  # pseudo-references, paired in turn with the windows


def _compact(values: np.ndarray) -> list[float]:
    """float32 precision, 5 significant digits: what JSON needs to stay small and p-values exact enough."""
    return [float(f"{v:.5g}") for v in np.asarray(values, dtype=np.float32)]


@dataclass(frozen=True)
class Null:
    """The null distribution of one statistic at one window length, from `draws` bootstrap draws."""

    window: int
    draws: int
    percentiles: np.ndarray  # the draws' 0th..100th percentiles
    tail: np.ndarray  # the largest min(TAIL, draws) draws, ascending

    @classmethod
    def from_draws(cls, window: int, draws: np.ndarray) -> Null:
        values = np.sort(np.asarray(draws, dtype=float))
        if values.size == 0 or not np.all(np.isfinite(values)):
            raise ValueError("a null distribution needs finite draws")
        return cls(window, int(values.size), np.percentile(values, PERCENTILES), values[-TAIL:])

    def count_at_least(self, value: float) -> float:
        """How many draws are ≥ `value`: exact in the stored tail, interpolated in the body."""
        if value >= self.tail[0]:
            return float(self.tail.size - np.searchsorted(self.tail, value, side="left"))
        below = float(np.interp(value, self.percentiles, PERCENTILES)) / 100.0
        return max(self.draws * (1.0 - below), float(self.tail.size))

    def p_value(self, value: float) -> float:
        """Bootstrap p-value with the +1 correction: (1 + #{draws ≥ value}) / (draws + 1), never 0."""
        return (1.0 + self.count_at_least(value)) / (self.draws + 1.0)

    def percentile(self, value: float) -> float:
        """Where `value` falls in the null, 0–100 (100: above every draw)."""
        return 100.0 * (1.0 - self.count_at_least(value) / self.draws)

    def to_payload(self) -> dict[str, Any]:
        return {"draws": self.draws, "percentiles": _compact(self.percentiles), "tail": _compact(self.tail)}

    @classmethod
    def from_payload(cls, window: int, payload: Mapping[str, Any]) -> Null:
        return cls(
            window,
            int(payload["draws"]),
            np.asarray(payload["percentiles"], dtype=float),
            np.asarray(payload["tail"], dtype=float),
        )


def nearest_window(windows: Sequence[int], window: int) -> int:
    """The stored window length nearest to `window` in ratio (a null is for one length)."""
    if not windows:
        raise ValueError("no null windows stored")
    return min(windows, key=lambda w: (abs(np.log(w / window)), -w))


def politis_white(values: np.ndarray) -> float:
    """The largest Politis–White (stationary) optimal block length over the non-constant columns of
    `values`, at least 1."""
    estimates = [politis_white_block_length(values[:, j]) for j in range(values.shape[1]) if np.ptp(values[:, j]) > 0]
    return max([1.0, *estimates])


def block_length(
    values: np.ndarray, window: int, block_share: float, politis_white_length: float | None = None
) -> float:
    """Mean block length for windows of `window` bars: the larger of `block_share` × window and the largest
    Politis–White (stationary) optimal block length over the columns of `values` (`politis_white_length`
    when already computed)."""
    pw = politis_white(values) if politis_white_length is None else politis_white_length
    return max(block_share * window, pw, 1.0)


def resampled_windows(n: int, window: int, draws: int, block: float, seed: int) -> StationaryPaths:
    """The first `window` positions of `draws` stationary-bootstrap resamples of n rows with mean block
    length `block` (blocks wrap around the end, as the method defines), seeded by `seed`. The mean is
    rounded up to a whole number of rows, as the nulls always had it (arch took an integer block)."""
    if not 1 <= window <= n:
        raise ValueError(f"a window of {window} rows cannot be drawn from {n} rows")
    return stationary_paths(n, window, draws, float(np.ceil(block)), np.random.default_rng(seed))


def _bin_counts(bins: np.ndarray, rows: np.ndarray, n_bins: int) -> np.ndarray:
    """(draws, features, bins) counts of the binned training rows picked by each row of `rows`, position
    by position, a few draws at a time (about CHUNK_CELLS picked cells each, so memory stays bounded)."""
    n_draws, length = rows.shape
    n_features = bins.shape[1]
    out = np.empty((n_draws, n_features, n_bins), dtype=np.int64)
    step = max(1, CHUNK_CELLS // (length * n_features))
    offsets = np.arange(n_features) * n_bins
    for start in range(0, n_draws, step):
        chunk = rows[start : start + step]
        codes = bins[chunk] + offsets  # (draws, length, features)
        codes += (np.arange(chunk.shape[0]) * n_features * n_bins)[:, None, None]
        counts = np.bincount(codes.ravel(), minlength=chunk.shape[0] * n_features * n_bins)
        out[start : start + chunk.shape[0]] = counts.reshape(chunk.shape[0], n_features, n_bins)
    return out


def cumulative_bin_counts(bins: np.ndarray, n_bins: int) -> np.ndarray:
    """(n + 1, features × bins): row r holds how many of the first r training rows fall in each
    (feature, bin); row 0 is zeros."""
    n, n_features = bins.shape
    onehot = np.zeros((n, n_features * n_bins), dtype=np.int32)
    onehot[np.arange(n)[:, None], bins + np.arange(n_features) * n_bins] = 1
    out = np.zeros((n + 1, n_features * n_bins), dtype=np.int32)
    np.cumsum(onehot, axis=0, out=out[1:])
    return out


def _block_bin_counts(cumulative: np.ndarray, paths: StationaryPaths, n_features: int) -> np.ndarray:
    """(draws, features, bins) counts of the rows each resample picks: per block, the cumulative counts
    at its end minus at its start (plus the wrapped part from row 0), summed over each draw's blocks."""
    n = paths.n
    end = paths.starts + paths.sizes  # ≤ 2n: a block is at most n rows long
    per_block = cumulative[np.minimum(end, n)] - cumulative[paths.starts] + cumulative[np.maximum(end - n, 0)]
    counts = np.add.reduceat(per_block, paths.first, axis=0)
    return counts.reshape(paths.draws, n_features, -1).astype(np.int64)


def _path_counts(bins: np.ndarray, cumulative: np.ndarray, paths: StationaryPaths, n_bins: int) -> np.ndarray:
    """(draws, features, bins) counts of every resample: by blocks when blocks are longer than a row's
    bins (as the nulls' are: at least the window on average), else position by position — both give the
    same counts. A few draws at a time (about CHUNK_CELLS block counts each)."""
    n_features = bins.shape[1]
    if paths.sizes.mean() < n_bins:
        return _bin_counts(bins, paths.indices(), n_bins)
    out = np.empty((paths.draws, n_features, n_bins), dtype=np.int64)
    step = max(1, int(CHUNK_CELLS * paths.draws // (paths.sizes.size * cumulative.shape[1])))
    for start in range(0, paths.draws, step):
        part = paths.select(start, start + step)
        out[start : start + part.draws] = _block_bin_counts(cumulative, part, n_features)
    return out


def _floored_shares(counts: np.ndarray, length: int, floor: float) -> np.ndarray:
    shares = np.maximum(counts / length, floor)
    return np.asarray(shares / shares.sum(axis=2, keepdims=True))


def kl_draws(
    bins: np.ndarray, n_bins: int, windows: StationaryPaths, references: StationaryPaths, floor: float = FLOOR
) -> np.ndarray:
    """KL(pseudo-reference ‖ window) per draw and feature, shape (draws, features). `bins` (n, features)
    holds each training row's bin per feature; `windows` (draws of the window's length) and `references`
    (R of n rows) are resamples of the rows. Draw b pairs window b with pseudo-reference b mod R.

    Why a pseudo-reference rather than the reference itself: a check compares a new window with a
    reference that is a sample too (its decile shares are 0.1 by construction, the process's are not).
    With persistent features that sampling error is as large as the window's own, and a null that
    ignores it is too narrow (the simulation's false-alarm rate doubled)."""
    cumulative = cumulative_bin_counts(bins, n_bins)
    ref = _floored_shares(_path_counts(bins, cumulative, references, n_bins), references.length, floor)
    out = np.empty((windows.draws, bins.shape[1]))
    for start in range(0, windows.draws, CHUNK_DRAWS):
        chunk = windows.select(start, start + CHUNK_DRAWS)
        q = _floored_shares(_path_counts(bins, cumulative, chunk, n_bins), windows.length, floor)
        p = ref[np.arange(start, start + chunk.draws) % ref.shape[0]]
        out[start : start + chunk.draws] = np.sum(p * np.log(p / q), axis=2)
    return out


def feature_nulls(
    values: np.ndarray,
    edges: Sequence[np.ndarray],
    shares: Sequence[np.ndarray],
    *,
    windows: Sequence[int],
    draws: int,
    block_share: float,
    seed: int,
    floor: float = FLOOR,
) -> dict[int, tuple[float, list[Null]]]:
    """Per window length: the mean block length used and one KL null per feature (columns of `values`,
    the training window in time order; rows with a non-finite value are left out)."""
    recent = values[-MAX_RESAMPLED_ROWS:]
    rows = recent[np.all(np.isfinite(recent), axis=1)]
    bins = np.column_stack([np.searchsorted(e, rows[:, j], side="left") for j, e in enumerate(edges)])
    bins = bins.astype(np.int16)
    n_bins = max(len(s) for s in shares)
    lengths = sorted(w for w in windows if w <= len(rows))
    out: dict[int, tuple[float, list[Null]]] = {}
    if not lengths:
        return out
    # One set of pseudo-references for every length, resampled with the longest length's blocks (the
    # reference's own dependence does not depend on the check's window).
    pw = politis_white(rows)
    reference_block = block_length(rows, lengths[-1], block_share, pw)
    references = resampled_windows(len(rows), len(rows), min(draws, REFERENCE_DRAWS), reference_block, seed + 1000)
    for k, window in enumerate(lengths):
        block = block_length(rows, window, block_share, pw)
        windows_ = resampled_windows(len(rows), window, draws, block, seed + k)
        kl = kl_draws(bins, n_bins, windows_, references, floor)
        out[window] = (block, [Null.from_draws(window, kl[:, j]) for j in range(kl.shape[1])])
    return out


def _grid_cdfs(slot: np.ndarray, rows: np.ndarray, grid_size: int) -> np.ndarray:
    """(draws, grid_size − 1): each resample's empirical CDF at the grid points but the last."""
    size, width = rows.shape[0], grid_size + 1  # slot == grid_size: above the grid's last point
    codes = slot[rows] + (np.arange(size) * width)[:, None]
    counts = np.bincount(codes.ravel(), minlength=size * width).reshape(size, width)
    return np.cumsum(counts, axis=1)[:, : grid_size - 1] / rows.shape[1]


def normalised_w1_draws(predictions: np.ndarray, windows: StationaryPaths, references: StationaryPaths) -> np.ndarray:
    """W1(pseudo-reference, window) / sd(predictions) per draw: `windows` (draws of m rows) and `references`
    (R of n rows) are resamples of the time-ordered `predictions`; draw b pairs window b with reference
    b mod R (the reference is a sample too, see kl_draws). Resamples hold reference values, so their
    CDFs are cumulative counts on the sorted reference: O(draws × n), no sort per draw. Beyond
    PREDICTION_GRID values the integral runs over a grid of reference quantiles."""
    u = np.sort(predictions)
    grid = u if u.size <= PREDICTION_GRID else np.quantile(u, (np.arange(PREDICTION_GRID) + 0.5) / PREDICTION_GRID)
    slot = np.searchsorted(grid, predictions, side="left")  # value ≤ grid[k] ⇔ slot ≤ k
    ref_cdf = _grid_cdfs(slot, references.indices(), grid.size)
    deltas = np.diff(grid)
    sd = float(np.std(u))
    out = np.empty(windows.draws)
    step = max(1, CDF_CHUNK_CELLS // grid.size)
    for start in range(0, windows.draws, step):
        cdf = _grid_cdfs(slot, windows.select(start, start + step).indices(), grid.size)
        gap = ref_cdf[np.arange(start, start + cdf.shape[0]) % ref_cdf.shape[0]]
        np.subtract(cdf, gap, out=gap)  # in place: these arrays are draws × grid, the null's largest
        out[start : start + cdf.shape[0]] = np.abs(gap, out=gap) @ deltas
    return out / sd if sd > 0 else out


def prediction_nulls(
    predictions: np.ndarray, *, windows: Sequence[int], draws: int, block_share: float, seed: int
) -> dict[int, tuple[float, Null]]:
    """Per window length: the mean block length and the null of the normalised W1 of the training window's
    own (time-ordered) predicted probabilities against all of them."""
    values = np.asarray(predictions, dtype=float)
    values = values[np.isfinite(values)][-MAX_RESAMPLED_ROWS:]
    out: dict[int, tuple[float, Null]] = {}
    lengths = sorted(w for w in windows if w <= values.size)
    if not lengths:
        return out
    pw = politis_white(values[:, None])
    reference_block = block_length(values[:, None], lengths[-1], block_share, pw)
    references = resampled_windows(values.size, values.size, min(draws, REFERENCE_DRAWS), reference_block, seed + 2000)
    for k, window in enumerate(lengths):
        block = block_length(values[:, None], window, block_share, pw)
        windows_ = resampled_windows(values.size, window, draws, block, seed + 100 + k)
        w1 = normalised_w1_draws(values, windows_, references)
        out[window] = (block, Null.from_draws(window, w1))
    return out
