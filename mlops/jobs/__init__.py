"""Background jobs (retrain, sweep, drift, validation, watch): submitted by the API, the CLI and the
scheduler, state in the `jobs` table, each run by its own worker process (`python -m mlops.jobs <id>`)
that the dispatcher starts, times out and cancels. See service.py (submit/list/cancel/reap), kinds.py
(what each kind runs), reactions.py (the closed loop: alerts and automatic retrains), worker.py and
dispatcher.py."""

from mlops.jobs.service import (
    JobRecord,
    cancel_job,
    get_job,
    list_jobs,
    reap_dead_jobs,
    submit_drift,
    submit_register_best,
    submit_retrain,
    submit_sweep,
    submit_validation,
    submit_watch,
)

__all__ = [
    "JobRecord",
    "cancel_job",
    "get_job",
    "list_jobs",
    "reap_dead_jobs",
    "submit_drift",
    "submit_register_best",
    "submit_retrain",
    "submit_sweep",
    "submit_validation",
    "submit_watch",
]
