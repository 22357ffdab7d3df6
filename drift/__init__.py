"""Drift statistics (pure numpy/scipy, no I/O), the registry of those a check runs (drift.registry),
baselines, and the Evidently report adapter."""
