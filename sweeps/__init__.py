"""Everything Optuna: grid sweeps as Optuna studies with nested MLflow runs, in parallel worker
processes. The rest of the project reaches Optuna only through this package, and this package knows
no agent: it runs the training callback it is given (`trial.TrainFn`, built by the sweep service in
mlops/pipeline/sweeps/) on every point of a grid.

    grid        grid configs: read, enumerated
    create      a sweep: app-DB row, study with every point queued, parent MLflow run
    claims      claim a queued point (exactly one worker wins it); recover a dead worker's point
    trial       one point: the callback, logged as a child MLflow run
    worker      the loop: claim → trial → record, until no point is left
    finalize    close a sweep: best trial and its Deflated Sharpe Ratio (`selection`) to the app DB and MLflow
    supervisor  run a sweep with forked workers that inherit the callback; respawn, recover, stop on budget
    study       a sweep's study and its progress; storage  Optuna storages from settings

The app-DB records of sweeps (rows → typed records) live in mlops/db/sweeps.py.
"""
