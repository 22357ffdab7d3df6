"""The MLflow pyfunc wrapper of a trained agent: input = the feature columns (raw, unstandardised),
output = the positive-class probability. Weights and standardisation live in one .npz artifact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from mlops.agents.network import forward

WEIGHTS = "weights"
META = "meta"


def save_weights(
    folder: Path, params: dict[str, np.ndarray], mean: np.ndarray, std: np.ndarray, meta: dict[str, Any]
) -> dict[str, str]:
    """Write the artifacts the wrapper loads; returns the `artifacts` mapping for log_model."""
    weights = folder / "weights.npz"
    arrays: dict[str, Any] = {"mean": mean, "std": std} | {f"param_{k}": v for k, v in params.items()}
    np.savez(weights, **arrays)
    meta_path = folder / "meta.json"
    meta_path.write_text(json.dumps(meta, indent=2))
    return {WEIGHTS: str(weights), META: str(meta_path)}


class AgentModel(PythonModel):
    def load_context(self, context: Any) -> None:
        with np.load(context.artifacts[WEIGHTS]) as data:
            self.mean = data["mean"]
            self.std = data["std"]
            self.params = {k.removeprefix("param_"): data[k] for k in data.files if k.startswith("param_")}
        self.meta = json.loads(Path(context.artifacts[META]).read_text())
        self.features: list[str] = self.meta["features"]

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> np.ndarray:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        missing = [f for f in self.features if f not in frame.columns]
        if missing:
            raise ValueError(f"model input lacks feature column(s): {', '.join(missing)}")
        x = frame[self.features].to_numpy(dtype=float)
        return forward(self.params, (x - self.mean) / self.std)
