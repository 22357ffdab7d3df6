"""The promotion gate (`mlops.pipeline.validation.decide`) on constructed inputs whose right answer is
known: seeded numpy series, no stores, no MLflow, seconds."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops.agents.metrics import net_returns, sharpe_ratio
from mlops.pipeline.champion import ChampionWindows, is_out_of_sample
from mlops.pipeline.validation import Scored, decide
from mlops.settings import Settings
from tests.conftest import make_settings
from tests.factories import (
    GATE_BARS,
    foresight,
    gate_inputs,
    market_moves,
    risk_gate_inputs,
    strategy,
    tail_labels,
    tail_probabilities,
)

N = GATE_BARS


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(tmp_path_factory.mktemp("gate"), gate_bootstrap_replications=1000, gate_require_edge=True)


def coin_flipper(moves: np.ndarray, seed: int = 6) -> Scored:
    return strategy(np.random.default_rng(seed).choice([-1.0, 1.0], len(moves)), moves)


# --- a first model: an edge over the naive baselines --------------------------------------------------------


def test_a_first_model_without_an_edge_over_the_naive_baselines_is_rejected(settings: Settings) -> None:
    moves = market_moves(5, drift=0.001)  # a rising market: always-long is hard to beat
    decision = decide(gate_inputs(moves, coin_flipper(moves)), settings)
    assert not decision.passed
    assert decision.reason.startswith("rejected against naive baselines (no champion yet)")
    sharpe, hits = decision.checks["edge_sharpe_vs_always_long"], decision.checks["edge_hit_rate_vs_majority"]
    assert not sharpe["passed"] and sharpe["value"] < sharpe["baseline"]
    assert not hits["passed"] and hits["value"] < hits["baseline"]
    for name in ("edge_sharpe_vs_always_long", "edge_hit_rate_vs_majority"):
        assert f"{name} FAILED" in decision.reason


def test_a_first_model_with_an_edge_passes_and_records_always_long_as_comparator(settings: Settings) -> None:
    moves = market_moves(5, drift=0.001)
    decision = decide(gate_inputs(moves, strategy(foresight(moves, 0.25, 7), moves)), settings)
    assert decision.passed, decision.reason
    assert decision.reason.startswith("passed against naive baselines (no champion yet)")
    # Without a champion the gate_sharpe_* metrics compare with always-long (recorded, not a test).
    assert decision.metrics["gate_sharpe_diff"] == pytest.approx(decision.metrics["gate_naive_sharpe_diff"])
    low, diff, high = (decision.metrics[f"gate_sharpe_diff{s}"] for s in ("_ci_low", "", "_ci_high"))
    assert low < diff < high and diff > 0
    assert decision.champion_version is None and decision.comparison == "none"


def test_a_model_that_never_trades_has_no_edge(settings: Settings) -> None:
    moves = market_moves(8)
    decision = decide(gate_inputs(moves, strategy(np.zeros(N), moves)), settings)
    assert not decision.passed
    hits = decision.checks["edge_hit_rate_vs_majority"]
    assert hits["n_traded"] == 0 and not hits["passed"] and hits["p_value"] is None
    assert decision.metrics["gate_coverage"] == 0


@pytest.mark.parametrize("require_edge", [True, False])
def test_gate_require_edge_decides_whether_a_missing_edge_rejects(settings: Settings, require_edge: bool) -> None:
    moves = market_moves(5, drift=0.001)
    configured = settings.model_copy(update={"gate_require_edge": require_edge})
    decision = decide(gate_inputs(moves, coin_flipper(moves)), configured)
    assert decision.passed is not require_edge
    sharpe = decision.checks["edge_sharpe_vs_always_long"]
    assert sharpe["value"] < sharpe["baseline"]  # measured and recorded either way
    waived = "not required: SKIPPY_GATE_REQUIRE_EDGE=false"
    assert (sharpe.get("note") == waived) is not require_edge
    assert (waived in decision.reason) is not require_edge
    assert decision.metrics["gate_sharpe_diff"] < 0


def test_waiving_the_edge_does_not_waive_the_champion_test(settings: Settings) -> None:
    moves = market_moves(9)
    champion = strategy(foresight(moves, 0.30, 10), moves)
    worse = strategy(foresight(moves, 0.10, 10), moves)
    lenient = settings.model_copy(update={"gate_require_edge": False})
    decision = decide(gate_inputs(moves, worse, champion), lenient)
    assert not decision.passed and not decision.checks["beats_champion_sharpe"]["passed"]
    assert "note" not in decision.checks["beats_champion_sharpe"]


# --- against the champion --------------------------------------------------------------------------------


def test_a_clearly_better_candidate_passes(settings: Settings) -> None:
    moves = market_moves(9)
    champion = strategy(foresight(moves, 0.15, 10), moves)
    better = strategy(foresight(moves, 0.30, 10), moves)  # knows more of the same bars
    decision = decide(gate_inputs(moves, better, champion), settings)
    assert decision.passed, decision.reason
    assert decision.reason.startswith("passed against champion v1 (champion scored)")
    assert decision.metrics["gate_p_value"] < 0.05 and decision.metrics["gate_sharpe_diff_ci_low"] > 0
    assert decision.metrics["gate_return_correlation"] > 0.5  # same bars, overlapping foresight
    assert decision.metrics["gate_p_value"] == decision.checks["beats_champion_sharpe"]["p_value"]


def test_a_clearly_worse_candidate_is_rejected(settings: Settings) -> None:
    moves = market_moves(9)
    champion = strategy(foresight(moves, 0.30, 10), moves)
    worse = strategy(foresight(moves, 0.10, 10), moves)
    decision = decide(gate_inputs(moves, worse, champion), settings)
    assert not decision.passed
    check = decision.checks["beats_champion_sharpe"]
    assert not check["passed"] and check["value"] < 0 and check["ci"][1] < 0 and check["p_value"] > 0.95
    assert "beats_champion_sharpe FAILED" in decision.reason


def test_a_difference_of_pure_noise_is_not_a_reason_to_redeploy(settings: Settings) -> None:
    moves = market_moves(9)
    champion = strategy(foresight(moves, 0.15, 10), moves)
    peer = strategy(foresight(moves, 0.15, 11), moves)  # the same skill, on other bars
    decision = decide(gate_inputs(moves, peer, champion), settings)
    assert not decision.passed and not decision.checks["beats_champion_sharpe"]["passed"]
    assert decision.checks["edge_sharpe_vs_always_long"]["passed"]  # it is a good model, just not better


def test_the_candidate_that_is_the_champion_is_not_better(settings: Settings) -> None:
    moves = market_moves(9)
    same = strategy(foresight(moves, 0.2, 10), moves)
    decision = decide(gate_inputs(moves, same, same), settings)
    assert not decision.passed
    assert decision.metrics["gate_sharpe_diff"] == 0 and decision.metrics["gate_p_value"] > 0.5
    assert decision.metrics["gate_return_correlation"] == pytest.approx(1)


# --- risk_assessor -----------------------------------------------------------------------------------------


def test_risk_assessor_needs_auc_and_brier_skill_not_accuracy(settings: Settings) -> None:
    y, moves = tail_labels(12), market_moves(13)
    # "Never a tail" is 90 % accurate and worthless: AUC 0.5, no Brier skill over the base rate.
    never = decide(risk_gate_inputs(y, np.full(N, 0.1), moves), settings)
    assert not never.passed
    assert never.checks["edge_auc"]["value"] == pytest.approx(0.5)
    assert not never.checks["edge_brier_skill"]["passed"]
    informed = decide(risk_gate_inputs(y, tail_probabilities(y, 0.25, 12), moves), settings)
    assert informed.passed, informed.reason
    assert informed.metrics["gate_auc"] > 0.8 and informed.metrics["gate_brier_skill"] > 0
    assert "edge_sharpe_vs_always_long" not in informed.checks  # its exposure Sharpe is recorded, not a check
    assert "gate_naive_sharpe_diff" in informed.metrics


def test_risk_assessor_beats_its_champion_on_brier_and_not_on_a_worse_sharpe(settings: Settings) -> None:
    y, moves = tail_labels(14), market_moves(15)
    weak = risk_gate_inputs(y, tail_probabilities(y, 0.1, 14), moves).candidate
    strong = tail_probabilities(y, 0.6, 16)
    decision = decide(risk_gate_inputs(y, strong, moves, weak), settings)
    assert decision.passed, decision.reason
    assert set(decision.checks) >= {"beats_champion_brier", "not_worse_sharpe"}
    assert "beats_champion_sharpe" not in decision.checks  # comparable tails: Brier decides
    assert decision.metrics["gate_brier_diff"] > 0 and decision.metrics["gate_brier_diff_ci_low"] > 0
    assert decision.metrics["gate_p_value"] == decision.metrics["gate_brier_p_value"] < 0.05
    # The other way round: the weak one is rejected against the strong champion, on Brier.
    strong_champion = risk_gate_inputs(y, strong, moves).candidate
    reverse = decide(risk_gate_inputs(y, weak.p, moves, strong_champion), settings)
    assert not reverse.passed and not reverse.checks["beats_champion_brier"]["passed"]
    assert reverse.metrics["gate_brier_diff"] < 0


def test_risk_assessor_with_a_champion_of_another_tail_size_is_judged_on_sharpe(settings: Settings) -> None:
    y, moves = tail_labels(14), market_moves(15)
    weak = risk_gate_inputs(y, tail_probabilities(y, 0.1, 14), moves).candidate
    other = Scored(weak.p, weak.positions, weak.returns, tail_share=0.05)
    decision = decide(risk_gate_inputs(y, tail_probabilities(y, 0.6, 16), moves, other), settings)
    assert "gate_brier_diff" not in decision.metrics and "beats_champion_brier" not in decision.checks
    check = decision.checks["beats_champion_sharpe"]
    assert check["note"] == "tails of different size: Brier scores not comparable"
    assert decision.metrics["gate_p_value"] == check["p_value"]


# --- what is recorded --------------------------------------------------------------------------------------


def test_the_recorded_decision_names_every_check_with_its_numbers(settings: Settings) -> None:
    moves = market_moves(9)
    champion = strategy(foresight(moves, 0.15, 10), moves)
    decision = decide(gate_inputs(moves, strategy(foresight(moves, 0.30, 10), moves), champion), settings)
    record = decision.record()
    assert set(record) == {"passed", "verdict", "comparison", "champion_version", "metrics", "checks"}
    assert (record["passed"], record["comparison"], record["champion_version"]) == (True, "champion_scored", 1)
    assert record["verdict"] == decision.reason
    assert set(record["checks"]) == {"edge_sharpe_vs_always_long", "edge_hit_rate_vs_majority", "beats_champion_sharpe"}
    for name, check in record["checks"].items():
        assert {"passed", "value", "rule", "p_value"} <= set(check), name
        assert f"{name} {'ok' if check['passed'] else 'FAILED'}: {check['value']:+.4f}" in record["verdict"]
    assert record["checks"]["beats_champion_sharpe"]["ci"] == [
        record["metrics"]["gate_sharpe_diff_ci_low"],
        record["metrics"]["gate_sharpe_diff_ci_high"],
    ]
    assert all(isinstance(v, float) for v in record["metrics"].values())
    assert record["metrics"]["gate_passed"] == 1.0
    assert record["metrics"]["gate_n_bars"] == N


def test_the_decision_is_deterministic(settings: Settings) -> None:
    moves = market_moves(9)
    inputs = gate_inputs(moves, strategy(foresight(moves, 0.2, 11), moves), strategy(foresight(moves, 0.2, 10), moves))
    assert decide(inputs, settings).record() == decide(inputs, settings).record()


def test_sharpe_ratios_are_in_excess_of_the_risk_free_rate(settings: Settings) -> None:
    moves = market_moves(17)
    skilled = strategy(foresight(moves, 0.1, 18), moves)
    decision = decide(gate_inputs(moves, skilled, risk_free_rate=0.05), settings)
    assert decision.metrics["gate_candidate_sharpe"] == pytest.approx(sharpe_ratio(skilled.returns, 252.0, 0.05))
    assert decision.metrics["gate_always_long_sharpe"] == pytest.approx(
        sharpe_ratio(net_returns(np.ones(N), moves, 1.0), 252.0, 0.05)
    )


def test_paper_trading_tests_against_the_champion_alone(settings: Settings) -> None:
    moves = market_moves(5, drift=0.001)  # always-long is hard to beat here
    champion = strategy(-foresight(moves, 0.15, 19), moves)  # a champion that has gone wrong
    better = strategy(foresight(moves, 0.06, 20), moves)  # clearly better than it, not than always-long
    paper = gate_inputs(moves, better, champion, comparison="paper_trading")
    assert not decide(paper, settings).passed  # the full gate would also ask for the edge ...
    decision = decide(paper, settings, edge=False)  # ... paper trading asks only the paired test
    assert decision.passed and "beats_champion_sharpe ok" in decision.reason
    assert "not part of paper trading's test" in decision.reason


def test_unknown_comparison_is_refused(settings: Settings) -> None:
    moves = market_moves(16)
    with pytest.raises(ValueError, match="unknown comparison 'eyeballed'; one of none, champion_scored"):
        decide(gate_inputs(moves, strategy(np.ones(N), moves), comparison="eyeballed"), settings)


def test_settings_refuse_an_impossible_gate(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="gate_alpha"):
        make_settings(tmp_path, gate_alpha=0.0)


# --- which champion score is fair --------------------------------------------------------------------------


def test_champion_is_scored_only_on_bars_it_never_learned_from() -> None:
    def stamp(text: str) -> pd.Timestamp:
        return pd.Timestamp(text, tz="UTC")

    windows = ChampionWindows("SPY", datetime(1999, 1, 1, tzinfo=UTC), datetime(2013, 12, 31, tzinfo=UTC))
    assert is_out_of_sample(windows, "SPY", stamp("2014-01-02"), stamp("2016-12-30"))
    assert not is_out_of_sample(windows, "SPY", stamp("2008-01-02"), stamp("2008-12-31"))  # inside training
    assert not is_out_of_sample(windows, "QQQ", stamp("2014-01-02"), stamp("2016-12-30"))  # another market
    unknown = ChampionWindows("SPY", None, None)
    assert not is_out_of_sample(unknown, "SPY", stamp("2014-01-02"), stamp("2016-12-30"))
