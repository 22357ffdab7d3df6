"""Evidently report adapter: a human-readable data drift report for a check, on a row sample.

Our numbers come from drift/ (exact definitions, all rows); Evidently's (its own tests, normalised
Wasserstein, and so on) are for people. Evidently's `run` takes the *current* data first."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def write_report(
    reference: pd.DataFrame, current: pd.DataFrame, folder: Path, max_rows: int, seed: int
) -> dict[str, str]:
    """Write report.html and report.json into `folder`; returns their paths."""
    from evidently import Report
    from evidently.presets import DataDriftPreset

    if len(current) > max_rows:
        current = current.sample(n=max_rows, random_state=seed).sort_index()
    if len(reference) > max_rows:
        reference = reference.sample(n=max_rows, random_state=seed)
    snapshot = Report([DataDriftPreset(method="kl_div")]).run(current.reset_index(drop=True), reference)
    folder.mkdir(parents=True, exist_ok=True)
    html, json_path = folder / "report.html", folder / "report.json"
    snapshot.save_html(str(html))
    snapshot.save_json(str(json_path))
    return {"html": str(html), "json": str(json_path)}
