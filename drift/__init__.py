"""Drift statistics (pure numpy/scipy, no I/O), baselines, and the Evidently report adapter."""
