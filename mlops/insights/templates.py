"""The deterministic explanations: a few plain sentences made from the facts alone (mlops/insights/facts.py).
Written at once with the run or check, they are what everyone sees until (and unless) a generated text
arrives, and what stays when there is no key or the model does not answer."""

from __future__ import annotations

from typing import Any


def _num(value: Any, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _p(value: Any) -> str:
    return "n/a" if value is None else ("< 0.001" if value < 0.001 else f"{value:.3f}")


OUTCOME_WORDS = {
    "promoted": "passed the promotion gate and is the champion now",
    "challenger": "passed the promotion gate and is the challenger (staged rollout: it paper-trades before promotion)",
    "rejected": "was rejected by the promotion gate; the champion is unchanged",
    "rejected_data_quality": "was rejected by the data quality gate before training; nothing was deployed",
    "failed": "failed; nothing was deployed",
    "cancelled": "was cancelled; nothing was deployed",
}


def _metrics_sentence(facts: dict[str, Any]) -> str | None:
    m, previous = facts.get("metrics") or {}, facts.get("previous")
    if not m:
        return None
    said = (
        f"On its held-out bars it scored accuracy {_pct(m.get('accuracy'))} and a Sharpe ratio of "
        f"{_num(m.get('sharpe_ratio'))} (buy-and-hold: {_num(m.get('buy_hold_sharpe_ratio'))}), with a maximum "
        f"drawdown of {_pct(m.get('max_drawdown'))}"
    )
    if previous and previous.get("metrics"):
        pm = previous["metrics"]
        said += (
            f"; v{previous['version']} had accuracy {_pct(pm.get('accuracy'))} and Sharpe "
            f"{_num(pm.get('sharpe_ratio'))} on its own held-out bars"
        )
    return said + "."


def _gate_sentence(gate: dict[str, Any]) -> str:
    failed = [c for c in gate["checks"] if not c["passed"]]
    passed = [c for c in gate["checks"] if c["passed"]]
    head = f"The gate compared it with {gate['against']}"
    if not gate["checks"]:
        return head + "."
    if failed:
        parts = [f"{c['check'].replace('_', ' ')} (value {_num(c['value'], 3)}, p {_p(c['p_value'])})" for c in failed]
        return f"{head}; it failed: " + "; ".join(parts) + "."
    parts = [f"{c['check'].replace('_', ' ')} (p {_p(c['p_value'])})" for c in passed]
    return f"{head}; every check passed: " + ", ".join(parts) + "."


def _rank_move(item: dict[str, Any]) -> str:
    before = "new" if item["previous_rank"] is None else f"from #{item['previous_rank']}"
    return f"{item['feature']} {before} → #{item['rank']}"


def _importance_sentence(importance: dict[str, Any] | None) -> str | None:
    if not importance or not importance.get("top"):
        return None
    top = importance["top"][:3]
    names = ", ".join(f"{t['feature']} ({t['meaning']})" for t in top)
    said = f"It leans most on {names}"
    previous = importance.get("previous_version")
    if previous is not None:
        moved = [_rank_move(t) for t in importance["top"] if t["previous_rank"] != t["rank"]]
        said += f"; against v{previous}: " + (", ".join(moved) if moved else "the same top features in the same order")
    return said + "."


def retrain_template(facts: dict[str, Any]) -> str:
    agent, version = facts["agent"], facts.get("model_version")
    what = f"{agent} v{version}" if version is not None else agent
    outcome = OUTCOME_WORDS.get(facts["outcome"], facts["outcome"])
    sentences = [f"Retrain run {facts['run_id']} of {what} ({facts['trigger']}) {outcome}."]
    if facts.get("error"):
        sentences.append(f"Why: {facts['error']}")
    if (metrics := _metrics_sentence(facts)) is not None:
        sentences.append(metrics)
    if facts.get("gate"):
        sentences.append(_gate_sentence(facts["gate"]))
    if (importance := _importance_sentence(facts.get("importance"))) is not None:
        sentences.append(importance)
    return " ".join(sentences)


def _feature_phrase(item: dict[str, Any]) -> str:
    shift = f", PSI {_num(item['psi'], 3)}: {item['shift']}" if item.get("psi") is not None else ""
    return (
        f"{item['feature']} ({item['meaning']}): KL {_num(item['value'], 3)} > {item['critical_threshold']:g}, "
        f"adjusted p {_p(item['adjusted_p'])}{shift}"
    )


def drift_template(facts: dict[str, Any]) -> str:
    what = f"{facts['agent']} v{facts['model_version']} on {facts['symbol']}"
    start, end = facts["current_window"]
    sentences = [f"Critical drift of {what} in the bars {start} → {end} against its training window."]
    critical = facts["critical_features"]
    if critical:
        shown = "; ".join(_feature_phrase(i) for i in critical[:4])
        more = f" and {len(critical) - 4} more" if len(critical) > 4 else ""
        sentences.append(
            f"{len(critical)} of {facts['features_checked']} features moved beyond chance: {shown}{more}. "
            "The market these features describe no longer looks like the one the model learned from."
        )
    prediction = facts.get("prediction")
    if prediction and prediction["status"] in ("warning", "critical"):
        sentences.append(
            f"The model's predictions moved too ({prediction['status']}, {_num(prediction['value'], 3)}): its mean "
            f"probability went from {_num(prediction['reference_mean_probability'], 3)} to "
            f"{_num(prediction['current_mean_probability'], 3)}."
        )
    performance = facts.get("performance")
    if performance and performance["status"] in ("warning", "critical"):
        sentences.append(
            f"Its Sharpe ratio fell from {_num(performance['baseline_sharpe'])} to "
            f"{_num(performance['current_sharpe'])} ({performance['status']}, p {_p(performance['p_value'])})."
        )
    sentences.append("A retrain on recent bars is the usual answer; the gate decides whether it replaces the champion.")
    return " ".join(sentences)


def template_for(subject: str, facts: dict[str, Any]) -> str:
    return retrain_template(facts) if subject == "retrain" else drift_template(facts)
