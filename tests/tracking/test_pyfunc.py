"""The pyfunc wrapper knows no model family: it applies the prediction function the logging service names,
and models logged before the name was recorded still load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops.agents.network import forward
from mlops.settings import Settings
from mlops.stores import init_stores
from tests.conftest import make_settings
from tracking.pyfunc import LEGACY_PREDICT, ArrayModel, function_name, resolve_function, save_weights

# python_model.pkl of a model logged by the code of Nov 2026 (an instance of `tracking.pyfunc.AgentModel`
# with no prediction function recorded), byte for byte.
LEGACY_PICKLE = (
    b"\x80\x05\x95\xb7\x00\x00\x00\x00\x00\x00\x00\x8c\x0ftracking.pyfunc\x94\x8c\nAgentModel\x94\x93\x94)"
    b"\x81\x94}\x94\x8c\x13_predict_type_hints\x94\x8c\x17mlflow.models.signature\x94\x8c\n_TypeHints\x94\x93"
    b"\x94)\x81\x94}\x94(\x8c\x05input\x94\x8c\x11pandas.core.frame\x94\x8c\tDataFrame\x94\x93\x94\x8c\x06output"
    b"\x94\x8c\x05numpy\x94\x8c\x07ndarray\x94\x93\x94ubsb."
)
FEATURES = ["a", "b"]


def scaled_sum(params: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """A prediction function of another model family than the agents'."""
    return np.asarray(x.sum(axis=1) * params["scale"][0])


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = make_settings(tmp_path)
    init_stores(s)
    return s


def _log(settings: Settings, folder: Path, params: dict[str, np.ndarray], predict: object) -> str:
    from tracking.client import ensure_experiment
    from tracking.runs import end_run, log_pyfunc_model, start_run

    folder.mkdir()
    artifacts = save_weights(folder, params, np.array([1.0, 2.0]), np.array([2.0, 4.0]), {"features": FEATURES})
    run_id = start_run(settings, ensure_experiment(settings, "pyfunc-test"), "pyfunc", {})
    example = pd.DataFrame({"a": [3.0, 5.0], "b": [6.0, 10.0]})
    uri = log_pyfunc_model(
        settings,
        run_id,
        predict=predict,  # type: ignore[arg-type]
        artifacts=artifacts,
        input_example=example,
        output_example=np.zeros(2),
        model_name="model",
    )
    end_run(settings, run_id)
    return uri


def test_a_model_applies_the_prediction_function_it_was_logged_with(settings: Settings, tmp_path: Path) -> None:
    import mlflow

    uri = _log(settings, tmp_path / "weights", {"scale": np.array([3.0])}, scaled_sum)
    model = mlflow.pyfunc.load_model(uri)
    frame = pd.DataFrame({"b": [6.0, 2.0], "a": [3.0, 1.0]})  # columns by name, in any order
    # standardised: a → (a - 1) / 2, b → (b - 2) / 4; then 3 × their sum
    np.testing.assert_allclose(model.predict(frame), [3 * (1.0 + 1.0), 3 * (0.0 + 0.0)])
    assert model.metadata.metadata == {"skippy.predict_function": "tests.tracking.test_pyfunc:scaled_sum"}


def test_a_model_logged_before_the_function_was_recorded_still_loads(settings: Settings, tmp_path: Path) -> None:
    import mlflow

    params = {"w": np.array([[0.5], [-1.0]]), "b": np.array([0.25])}
    uri = _log(settings, tmp_path / "weights", params, forward)
    [pickled] = list(Path(settings.artifact_root).rglob("python_model.pkl"))
    pickled.write_bytes(LEGACY_PICKLE)  # what older code wrote
    model = mlflow.pyfunc.load_model(uri)
    frame = pd.DataFrame({"a": [3.0, -1.0], "b": [6.0, 2.0]})
    expected = forward(params, (frame.to_numpy() - [1.0, 2.0]) / [2.0, 4.0])
    np.testing.assert_allclose(model.predict(frame), expected)


def test_legacy_wrappers_unpickle_with_the_agents_function() -> None:
    import pickle

    legacy = pickle.loads(LEGACY_PICKLE)
    assert type(legacy) is ArrayModel and legacy.predict_function == LEGACY_PREDICT
    assert resolve_function(LEGACY_PREDICT) is forward


def test_only_importable_functions_can_be_recorded() -> None:
    def nested(params: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
        return x

    assert function_name(scaled_sum) == "tests.tracking.test_pyfunc:scaled_sum"
    with pytest.raises(ValueError, match="cannot be imported by name"):
        function_name(nested)
    with pytest.raises(ValueError, match="cannot be imported by name"):
        function_name(lambda params, x: x)
