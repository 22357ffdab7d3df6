"""The stationary bootstrap drawn in numpy (`mlops.stats`) is arch's: the same index paths from the same
random numbers, the same Politis–White block lengths, bootstrap distributions that agree within
Monte-Carlo error, and the drift nulls' two ways of counting a resample's bins agree exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest
from arch.bootstrap import StationaryBootstrap, optimal_block_length
from arch.bootstrap._samplers import stationary_bootstrap_sample
from scipy.stats import ks_2samp

from drift.null import _bin_counts, _block_bin_counts, _path_counts, cumulative_bin_counts
from mlops.stats import (
    StationaryPaths,
    annualised_sharpe,
    block_length,
    paired_sharpe_test,
    politis_white_block_length,
    stationary_paths,
)


def _ar1(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    x = np.empty(n)
    x[0] = rng.normal()
    shocks = rng.normal(size=n) * math.sqrt(1 - phi**2)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + shocks[t]
    return x


@pytest.mark.parametrize(("n", "block"), [(40, 1.0), (40, 3.7), (500, 12.0), (500, 800.0)])
def test_the_paths_are_arch_s_resamples_from_the_same_random_numbers(n: int, block: float) -> None:
    """arch's update_indices draws n rows then n uniforms per resample; fed the same numbers (a new block
    where u ≤ 1/block, its row from the rows drawn at those positions), the paths are arch's, index for index."""
    seed, draws = 7, 25
    bootstrap = StationaryBootstrap(block, np.arange(n), seed=np.random.default_rng(seed))  # type: ignore[arg-type]
    expected = np.stack([bootstrap.update_indices() for _ in range(draws)])
    rng = np.random.default_rng(seed)
    rows, uniforms = [], []
    for _ in range(draws):
        rows.append(rng.integers(n, size=n, dtype=np.int64))
        uniforms.append(rng.random(n))
    row, u = np.stack(rows), np.stack(uniforms)
    assert np.array_equal(
        np.stack([stationary_bootstrap_sample(r.copy(), v, 1 / block) for r, v in zip(row, u, strict=True)]), expected
    )
    new = u <= 1 / block
    new[:, 0] = True
    paths = StationaryPaths.from_block_starts(n, new, row[new])
    assert np.array_equal(paths.indices(), expected)
    # A prefix of the positions is the prefix of the resamples (the drift nulls' windows).
    window = StationaryPaths.from_block_starts(n, new[:, :17], row[:, :17][new[:, :17]])
    assert np.array_equal(window.indices(), expected[:, :17])


def test_paths_are_seeded_and_split_into_chunks_without_changing() -> None:
    paths = stationary_paths(300, 120, 50, 9.5, np.random.default_rng(3))
    again = stationary_paths(300, 120, 50, 9.5, np.random.default_rng(3))
    assert np.array_equal(paths.indices(), again.indices())
    assert not np.array_equal(paths.indices(), stationary_paths(300, 120, 50, 9.5, np.random.default_rng(4)).indices())
    pieces = [part.indices() for _, part in paths.chunks(cells=120 * 7)]
    assert len(pieces) == 8 and np.array_equal(np.concatenate(pieces), paths.indices())
    assert paths.indices().shape == (50, 120) and paths.indices().min() >= 0 and paths.indices().max() < 300
    with pytest.raises(ValueError, match="mean block length"):
        stationary_paths(300, 120, 50, 0.5, np.random.default_rng(3))
    with pytest.raises(ValueError, match="cannot draw"):
        stationary_paths(100, 120, 50, 5.0, np.random.default_rng(3))


def test_block_lengths_are_geometric_with_the_asked_mean() -> None:
    paths = stationary_paths(10_000, 10_000, 20, 25.0, np.random.default_rng(5))
    complete = np.ones(paths.sizes.size, dtype=bool)
    complete[np.append(paths.first[1:], paths.sizes.size) - 1] = False  # each draw's last block is cut short
    whole = paths.sizes[complete]
    assert whole.mean() == pytest.approx(25.0, rel=0.05)  # ≈ 8,000 complete blocks: sd of the mean ≈ 1.1 %
    assert np.mean(whole == 1) == pytest.approx(1 / 25, abs=0.01)  # P(size 1) = p


@pytest.mark.parametrize("n", [50, 300, 3000])
@pytest.mark.parametrize("phi", [0.0, 0.5, 0.95])
def test_politis_white_is_arch_s_optimal_block_length(n: int, phi: float) -> None:
    x = _ar1(np.random.default_rng(int(1000 * phi) + n), n, phi)
    arch_length = float(optimal_block_length(x)["stationary"].iloc[0])
    assert politis_white_block_length(x) == pytest.approx(arch_length, rel=1e-12, abs=1e-12)
    if phi == 0.95 and n == 3000:
        assert arch_length > 20  # a persistent series: long blocks (the case that matters)


def _arch_paired_draws(a: np.ndarray, b: np.ndarray, replications: int, seed: int) -> np.ndarray:
    """The gate's bootstrap as it was written with arch: one update_indices call per replication."""
    bootstrap = StationaryBootstrap(block_length(a, b), np.arange(a.size), seed=seed)  # type: ignore[arg-type]
    indices = np.stack([bootstrap.update_indices() for _ in range(replications)])
    return annualised_sharpe(a[indices], 252) - annualised_sharpe(b[indices], 252)


def test_the_bootstrap_distribution_of_a_sharpe_difference_matches_arch_s() -> None:
    """Persistent, correlated returns (AR(1) volatility-like dependence): the bootstrap distribution of the
    Sharpe difference from the vectorised draws and from arch's agree within Monte-Carlo error."""
    rng = np.random.default_rng(21)
    common = _ar1(rng, 750, 0.6)
    a = 0.01 * (0.9 * common + math.sqrt(1 - 0.81) * _ar1(rng, 750, 0.6)) + 0.0006
    b = 0.01 * common + 0.0003
    ours = paired_sharpe_test(a, b, 252, replications=4000, seed=1)
    arch_draws = _arch_paired_draws(a, b, 4000, seed=2)
    rows = np.random.default_rng(1)
    paths = stationary_paths(a.size, a.size, 4000, ours.block_length, rows)
    idx = paths.indices()
    our_draws = annualised_sharpe(a[idx], 252) - annualised_sharpe(b[idx], 252)
    sd = float(np.std(arch_draws))
    # Quantiles of 4,000 draws: standard errors ≈ 0.02 sd (median) to 0.035 sd (5 %, 95 %) each.
    for q in (0.05, 0.25, 0.5, 0.75, 0.95):
        assert np.quantile(our_draws, q) == pytest.approx(np.quantile(arch_draws, q), abs=0.2 * sd)
    assert float(np.std(our_draws)) == pytest.approx(sd, rel=0.08)
    assert ks_2samp(our_draws, arch_draws).pvalue > 0.001
    # paired_sharpe_test's CI is the 5 % and 95 % quantiles of exactly these draws.
    assert (ours.ci_low, ours.ci_high) == pytest.approx(tuple(np.quantile(our_draws, [0.05, 0.95])))


def test_the_drift_null_counts_by_blocks_equal_the_counts_position_by_position() -> None:
    rng = np.random.default_rng(8)
    n, n_bins = 400, 10
    bins = rng.integers(0, n_bins, size=(n, 3)).astype(np.int16)
    bins[:, 2] = np.minimum(bins[:, 2], 6)  # a feature with fewer bins than the others
    cumulative = cumulative_bin_counts(bins, n_bins)
    for length, block in ((60, 60.0), (400, 150.0), (400, 3.0), (7, 1.0)):  # 400: whole-length, wrapping
        paths = stationary_paths(n, length, 300, block, rng)
        expected = _bin_counts(bins, paths.indices(), n_bins)
        assert np.array_equal(_block_bin_counts(cumulative, paths, 3), expected)
        assert np.array_equal(_path_counts(bins, cumulative, paths, n_bins), expected)
        assert expected.sum(axis=2).min() == length
