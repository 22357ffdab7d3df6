"""Everything Optuna: grid configs, study storage, parallel trial execution with nested MLflow runs.
The rest of the project reaches Optuna only through this package."""
