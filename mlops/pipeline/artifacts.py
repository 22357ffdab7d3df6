"""Files logged with each retrain: feature importance, equity curve plot, confusion matrix,
data quality and the validation decision."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from mlops.agents.training import Dataset, TrainedAgent
from mlops.pipeline.quality import QualityReport
from mlops.pipeline.validation import ValidationDecision


def _json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(payload, indent=2, default=str))


def confusion_matrix(agent: str, test: dict[str, float]) -> dict[str, Any]:
    """The test split's confusion matrix: market_insight's traded positions (short/flat/long rows)
    against the outcome (down/up columns); risk_assessor's tail call at the training tail rate."""
    if agent == "market_insight":
        rows = ("short", "flat", "long")
        return {
            "split": "test",
            "rows": "position",
            "columns": "outcome",
            "row_labels": list(rows),
            "column_labels": ["down", "up"],
            "matrix": [[test[f"cm_{r}_down"], test[f"cm_{r}_up"]] for r in rows],
        }
    return {
        "split": "test",
        "rows": "actual",
        "columns": "predicted",
        "labels": ["no tail", "tail"],
        "matrix": [[test["tn"], test["fp"]], [test["fn"], test["tp"]]],
    }


def write_equity_plot(path: Path, agent: TrainedAgent, data: Dataset) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    index = data.features.index[data.splits.test]
    fig, ax = plt.subplots(figsize=(9, 4), dpi=90)
    ax.plot(index, agent.test_equity, label=f"{agent.agent} (Sharpe {agent.test['sharpe_ratio']:.2f})")
    ax.plot(
        index,
        agent.test_buy_hold_equity,
        label=f"buy & hold (Sharpe {agent.test['buy_hold_sharpe_ratio']:.2f})",
        alpha=0.7,
    )
    ax.set_title(f"{agent.agent}: equity on the held-out test window, net of costs")
    ax.set_ylabel("equity (start = 1)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_artifacts(
    folder: Path, agent: TrainedAgent, data: Dataset, quality: QualityReport, decision: ValidationDecision
) -> None:
    _json(
        folder / "feature_importance.json",
        [{"feature": f, "importance": m, "std": s, "rank": i + 1} for i, (f, m, s) in enumerate(agent.importance)],
    )
    _json(folder / "data_quality.json", asdict(quality))
    _json(folder / "confusion_matrix.json", confusion_matrix(agent.agent, agent.test))
    _json(folder / "validation.json", asdict(decision))
    windows = {p: [str(t) for t in w] if (w := data.window(p)) else None for p in ("train", "validation", "test")}
    _json(
        folder / "windows.json",
        windows
        | {
            "label_cut": data.label_cut,
            "base_rate": data.base_rate,
            "execution_fill": data.fill,
            "periods_per_year": data.periods_per_year,
        },
    )
    np.savetxt(
        folder / "test_equity.csv",
        np.column_stack([agent.test_equity, agent.test_buy_hold_equity]),
        delimiter=",",
        header="agent,buy_hold",
        comments="",
    )
    write_equity_plot(folder / "equity_curve.png", agent, data)
