"""The drift check: for an agent's champion, compare the current window of bars with the stored
baseline of its training window — feature drift (KL per feature, tested against its bootstrap null,
Benjamini–Hochberg across features), prediction drift (Wasserstein-1 / sd of predicted probabilities,
with a bootstrap p-value), performance drift (relative Sharpe degradation, two-sample Sharpe test) —
each status a test with the DESIGN §8 thresholds as effect-size floors; record everything in
`drift_metrics`. The statistics and their rules live in drift/ (drift.registry lists them); here:

    service     prepare_drift_check (validation, once); execute_drift_check (audited); check_drift /
                check_all (both, inline)
    window      load the baseline and the current window; score it (probabilities, position returns)
    statistics  run each registered statistic with Settings' thresholds; the check's status
    records     the rows written to drift_metrics and model_performance_history
"""

from mlops.pipeline.drift.records import DriftCheck, DriftRow
from mlops.pipeline.drift.service import (
    DriftCheckParams,
    check_all,
    check_drift,
    execute_drift_check,
    prepare_drift_check,
)

__all__ = [
    "DriftCheck",
    "DriftCheckParams",
    "DriftRow",
    "check_all",
    "check_drift",
    "execute_drift_check",
    "prepare_drift_check",
]
