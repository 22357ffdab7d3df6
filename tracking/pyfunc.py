"""The MLflow pyfunc wrapper of a trained agent: input = the feature columns (raw, unstandardised),
output = the positive-class probability. Weights and standardisation live in one .npz artifact,
Fernet-encrypted (`weights.npz.enc`) when SKIPPY_MODEL_KEY is set; the key is read at load time from
the model_config `model_key` or the environment, never stored with the model."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from mlops.agents.network import forward

WEIGHTS = "weights"
META = "meta"


def save_weights(
    folder: Path,
    params: dict[str, np.ndarray],
    mean: np.ndarray,
    std: np.ndarray,
    meta: dict[str, Any],
    key: str | None = None,
) -> dict[str, str]:
    """Write the artifacts the wrapper loads (weights encrypted with `key` if given); returns the
    `artifacts` mapping for log_model."""
    from tracking.crypto import encrypt

    arrays: dict[str, Any] = {"mean": mean, "std": std} | {f"param_{k}": v for k, v in params.items()}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    if key:
        weights = folder / "weights.npz.enc"
        weights.write_bytes(encrypt(buffer.getvalue(), key))
    else:
        weights = folder / "weights.npz"
        weights.write_bytes(buffer.getvalue())
    meta_path = folder / "meta.json"
    meta_path.write_text(json.dumps(meta | {"encrypted": bool(key)}, indent=2))
    return {WEIGHTS: str(weights), META: str(meta_path)}


def read_weights(path: str, key: str | None) -> bytes:
    from tracking.crypto import decrypt

    raw = Path(path).read_bytes()
    return decrypt(raw, key, "this model's weights") if path.endswith(".enc") else raw


class AgentModel(PythonModel):
    def load_context(self, context: Any) -> None:
        config = getattr(context, "model_config", None) or {}
        key = config.get("model_key") or os.environ.get("SKIPPY_MODEL_KEY")
        with np.load(io.BytesIO(read_weights(context.artifacts[WEIGHTS], key))) as data:
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
