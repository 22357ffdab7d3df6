"""Run logging with explicit run ids (MlflowClient), batched: a retrain's params, metrics and
per-epoch curves go out in as few `log_batch` calls as MLflow's limits allow."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.settings import Settings
from tracking.client import get_client

if TYPE_CHECKING:
    from tracking.pyfunc import PredictFunction

# MLflow's per-call limits for log_batch.
MAX_PARAMS, MAX_METRICS, MAX_TAGS = 100, 1000, 100


def start_run(
    settings: Settings, experiment_id: str, run_name: str, tags: Mapping[str, str], parent_run_id: str | None = None
) -> str:
    all_tags = dict(tags)
    if parent_run_id:
        all_tags["mlflow.parentRunId"] = parent_run_id
    run = get_client(settings).create_run(experiment_id, run_name=run_name, tags=all_tags)
    return str(run.info.run_id)


def adopt_launcher_run(settings: Settings, experiment_id: str, tags: Mapping[str, str]) -> str | None:
    """The run `mlflow run` started for this process (env MLFLOW_RUN_ID), if it is still running and
    belongs to `experiment_id`; it is tagged with `tags`. None otherwise."""
    launcher = os.environ.get("MLFLOW_RUN_ID")
    if not launcher:
        return None
    from mlflow.exceptions import MlflowException

    try:
        run = get_client(settings).get_run(launcher)
    except MlflowException:
        return None
    if run.info.experiment_id != experiment_id or run.info.status != "RUNNING":
        return None
    set_tags(settings, launcher, tags)
    return launcher


def log_batch(
    settings: Settings,
    run_id: str,
    *,
    params: Mapping[str, Any] | None = None,
    metrics: Mapping[str, float] | None = None,
    curves: Mapping[str, Sequence[float]] | None = None,
    tags: Mapping[str, str] | None = None,
) -> None:
    """Log params, final metrics, per-step curves (step = epoch) and tags in batched calls."""
    from mlflow.entities import Metric, Param, RunTag

    now = int(time.time() * 1000)
    param_list = [Param(k, str(v)) for k, v in (params or {}).items()]
    metric_list = [Metric(k, float(v), now, 0) for k, v in (metrics or {}).items()]
    for name, values in (curves or {}).items():
        metric_list.extend(Metric(name, float(v), now, step) for step, v in enumerate(values))
    tag_list = [RunTag(k, str(v)) for k, v in (tags or {}).items()]
    client = get_client(settings)
    while param_list or metric_list or tag_list:
        client.log_batch(
            run_id,
            metrics=metric_list[:MAX_METRICS],
            params=param_list[:MAX_PARAMS],
            tags=tag_list[:MAX_TAGS],
        )
        param_list, metric_list, tag_list = (
            param_list[MAX_PARAMS:],
            metric_list[MAX_METRICS:],
            tag_list[MAX_TAGS:],
        )


def log_artifacts(settings: Settings, run_id: str, folder: Path, artifact_path: str | None = None) -> None:
    get_client(settings).log_artifacts(run_id, str(folder), artifact_path)


def set_tags(settings: Settings, run_id: str, tags: Mapping[str, str]) -> None:
    log_batch(settings, run_id, tags=tags)


def end_run(settings: Settings, run_id: str, status: str = "FINISHED") -> None:
    """status: FINISHED | FAILED | KILLED."""
    get_client(settings).set_terminated(run_id, status)


def run_status(settings: Settings, run_id: str) -> str:
    return str(get_client(settings).get_run(run_id).info.status)


def running_runs_tagged(settings: Settings, experiment_id: str, tags: Mapping[str, str]) -> list[str]:
    """Ids of the RUNNING runs of `experiment_id` that carry every tag of `tags` (a process killed before
    it recorded its run's id leaves one behind: the reaper finds it by its `skippy.model_run_id`)."""
    clauses = [f"tags.`{key}` = '{value}'" for key, value in tags.items()] + ["attributes.status = 'RUNNING'"]
    runs = get_client(settings).search_runs([experiment_id], " and ".join(clauses), max_results=100)
    return [str(run.info.run_id) for run in runs]


def run_params(settings: Settings, run_id: str) -> dict[str, str]:
    return dict(get_client(settings).get_run(run_id).data.params)


def log_pyfunc_model(
    settings: Settings,
    run_id: str,
    *,
    predict: PredictFunction,
    artifacts: dict[str, str],
    input_example: Any,
    output_example: Any,
    model_name: str,
) -> str:
    """Log a pyfunc model into run `run_id`: the arrays of `artifacts` (save_weights) applied by `predict`
    (a module-level function, recorded by name and imported when the model loads). Returns its model
    URI (`models:/m-...`)."""
    import mlflow
    from mlflow.models import Model, infer_signature

    from tracking.pyfunc import ArrayModel, function_name

    predict_name = function_name(predict)

    client = get_client(settings)  # also points MLflow's default client at our store
    signature = infer_signature(input_example, output_example)
    run = client.get_run(run_id)
    # Created in the run's experiment: left to Model.log, the logged model lands in the Default
    # experiment, whose artifacts live in ./mlruns of whatever folder the process started in.
    logged = mlflow.initialize_logged_model(
        name=model_name,
        source_run_id=run_id,
        experiment_id=run.info.experiment_id,
        params={k: str(v) for k, v in run.data.params.items()},
    )
    with _model_key_in_env(settings):
        info = Model.log(
            artifact_path=None,
            name=model_name,
            flavor=mlflow.pyfunc,
            run_id=run_id,
            model_id=logged.model_id,
            python_model=ArrayModel(predict_name),
            artifacts=artifacts,
            metadata={"skippy.predict_function": predict_name},
            signature=signature,
            input_example=input_example,
            pip_requirements=_pip_requirements(),
            # A placeholder, so that load_model(model_config={"model_key": ...}) may pass the key in
            # (MLflow only accepts overrides of keys the logged model declares). The key is never stored.
            model_config={"model_key": ""},
        )
    return str(info.model_uri)


@contextmanager
def _model_key_in_env(settings: Settings) -> Iterator[None]:
    """MLflow validates the input example by loading the model it just saved, in this process: an
    encrypted model needs the key for that, and the loader reads it from the environment."""
    key = settings.model_key_value
    if key is None or "SKIPPY_MODEL_KEY" in os.environ:
        yield
        return
    os.environ["SKIPPY_MODEL_KEY"] = key
    try:
        yield
    finally:
        os.environ.pop("SKIPPY_MODEL_KEY", None)


def _pip_requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{pkg}=={version(pkg)}" for pkg in ("mlflow", "numpy", "pandas")]
