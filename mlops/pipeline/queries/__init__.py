"""Read-side services over the app DB, one module per resource: model runs, deployed models, feature
importance, performance history. None imports MLflow: reads answer from the rows the write side mirrors."""

from mlops.pipeline.queries.importance import ImportanceRecord, feature_importance
from mlops.pipeline.queries.models import AgentModels, ModelVersionSummary, list_models
from mlops.pipeline.queries.performance import PerformanceRecord, performance_history
from mlops.pipeline.queries.runs import RunDetail, RunRecord, get_run, get_run_detail, list_runs, runs_watermark

__all__ = [
    "AgentModels",
    "ImportanceRecord",
    "ModelVersionSummary",
    "PerformanceRecord",
    "RunDetail",
    "RunRecord",
    "feature_importance",
    "get_run",
    "get_run_detail",
    "list_models",
    "list_runs",
    "performance_history",
    "runs_watermark",
]
