"""The MLflow pyfunc wrapper of a model made of numpy arrays: input = the feature columns (raw,
unstandardised), output = whatever the model's prediction function returns for the standardised inputs
(an agent's positive-class probability).

The wrapper knows no model family: the service that logs a model names its prediction function
`f(params, x_standardised) -> ndarray` (importable, module-level), the name is recorded with the model
(pickled wrapper and MLmodel metadata) and resolved with importlib when the model loads. Weights and
standardisation live in one .npz artifact, Fernet-encrypted (`weights.npz.enc`) when SKIPPY_MODEL_KEY
is set; the key is read at load time from the model_config `model_key` or the environment, never stored
with the model."""

from __future__ import annotations

import importlib
import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

PredictFunction = Callable[[dict[str, np.ndarray], np.ndarray], np.ndarray]

# Models logged before the function was recorded (Nov 2026) were all Skippy agents and used this one.
# A name, not an import: tracking/ imports nothing of the agents.
LEGACY_PREDICT = "mlops.agents.network:forward"
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


def function_name(function: PredictFunction) -> str:
    """`module:qualname` of `function`, checked to resolve back to it (a lambda or a nested function
    could not be found again when the model loads)."""
    name = f"{function.__module__}:{function.__qualname__}"
    try:
        resolved = resolve_function(name)
    except (ImportError, AttributeError):
        resolved = None
    if resolved is not function:
        raise ValueError(f"the prediction function {name} cannot be imported by name: use a module-level function")
    return name


def resolve_function(name: str) -> PredictFunction:
    """The function named `module:qualname`."""
    module_name, _, qualname = name.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise TypeError(f"{name} is not a function")
    return target


class ArrayModel(PythonModel):
    """Standardises the feature columns and applies the prediction function named at logging time."""

    predict_function: str = LEGACY_PREDICT  # instances pickled by older code lack the attribute

    def __init__(self, predict_function: str = LEGACY_PREDICT) -> None:
        self.predict_function = predict_function

    def load_context(self, context: Any) -> None:
        config = getattr(context, "model_config", None) or {}
        key = config.get("model_key") or os.environ.get("SKIPPY_MODEL_KEY")
        with np.load(io.BytesIO(read_weights(context.artifacts[WEIGHTS], key))) as data:
            self.mean = data["mean"]
            self.std = data["std"]
            self.params = {k.removeprefix("param_"): data[k] for k in data.files if k.startswith("param_")}
        self.meta = json.loads(Path(context.artifacts[META]).read_text())
        self.features: list[str] = self.meta["features"]
        self.function = resolve_function(self.predict_function)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> np.ndarray:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        missing = [f for f in self.features if f not in frame.columns]
        if missing:
            raise ValueError(f"model input lacks feature column(s): {', '.join(missing)}")
        x = frame[self.features].to_numpy(dtype=float)
        return self.function(self.params, (x - self.mean) / self.std)


# The name under which models logged before Nov 2026 pickled the wrapper: they load through this alias.
AgentModel = ArrayModel
