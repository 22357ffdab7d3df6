"""The dashboard benchmark's store builder (bench/dashboard_store.py), on a tiny store: its rows are what the
read services see, MLflow's aliases agree with the deployment history, and a second open reuses the build."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench.dashboard_store import StoreSize, open_store
from mlops.db.sweeps import list_sweeps, list_trials
from mlops.pipeline.drift_history import drift_history
from mlops.pipeline.queries import feature_importance, list_models, list_runs
from mlops.settings import AGENTS
from tracking.registry import alias_version, list_versions

pytestmark = pytest.mark.slow  # real retrains, drift checks and a sweep (some 10 s)


def test_tiny_store_counts_through_the_services_and_is_reused(tmp_path: Path) -> None:
    home = tmp_path / "store"
    store = open_store(home, StoreSize(runs=7, checks=6, sweeps=1), report=False)
    settings = store.settings
    assert not store.reused and set(store.keys) == {"viewer", "operator", "admin"}

    runs = list_runs(settings, limit=100)
    assert len(runs) == 7 and store.counts["model_runs"] == 7
    assert [r.id for r in runs] == sorted((r.id for r in runs), reverse=True)
    # Ids and times agree: the seed is a year old, the written history follows, the final round is newest.
    assert [r.created_at for r in runs] == sorted((r.created_at for r in runs), reverse=True)
    assert (runs[0].created_at - runs[-1].created_at).days >= 364
    checks = {row.check_id for row in drift_history(settings, limit=1000)}
    assert len(checks) == 6 == store.counts["drift checks"]
    assert len(drift_history(settings, include_features=True, limit=1000)) == store.counts["drift_metrics"]
    sweeps = list_sweeps(settings)
    assert len(sweeps) == 1 and sweeps[0].status == "completed"
    points = math.prod(len(values) for values in sweeps[0].parameter_grid.values())
    assert len(list_trials(settings, sweeps[0].id)) == sweeps[0].n_trials == points >= 4

    for models in list_models(settings):
        # The written deployment history and MLflow's registry agree on where the aliases point.
        assert models.champion is not None
        assert alias_version(settings, models.agent_type, "champion") == models.champion
        assert alias_version(settings, models.agent_type, "challenger") == models.challenger
        registered = {v.version for v in list_versions(settings, models.agent_type, limit=100)}
        with_version = {r.model_version for r in runs if r.agent_type == models.agent_type and r.model_version}
        assert registered == with_version
    for agent in AGENTS:
        versions = {r.model_version for r in feature_importance(settings, agent=agent, all_versions=True)}
        assert versions == {r.model_version for r in runs if r.agent_type == agent and r.model_version}

    again = open_store(home, StoreSize(runs=7, checks=6, sweeps=1))
    assert again.reused and again.keys == store.keys and again.counts == store.counts


def test_a_folder_that_is_not_a_bench_store_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit, match="holds no bench store"):
        open_store(tmp_path, StoreSize(runs=4, checks=4, sweeps=1))
    assert (tmp_path / "notes.txt").read_text() == "mine"
