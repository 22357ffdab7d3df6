"""Training = serving: features served for a bar equal the features the model was trained on."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlops.agents.specs import SPECS
from mlops.agents.training import build_dataset
from mlops.data.features import WARMUP_BARS, compute_features
from mlops.data.store import load_bars, upsert_bars
from mlops.db import upgrade_database
from mlops.pipeline.serving import _latest_features
from tests.conftest import bars_frame, make_settings


def test_served_features_equal_training_features_on_the_last_bar(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, database_url=f"sqlite:///{tmp_path / 'app.db'}")
    upgrade_database(settings.app_db_url)
    upsert_bars(settings.app_db_url, "SYNTH", bars_frame(1500, seed=11), "test")
    bars = load_bars(settings.app_db_url, "SYNTH")  # what retrain reads

    training = compute_features(bars)
    served = _latest_features(settings, "SYNTH", 40)
    assert served.index[-1] == bars.index[-1]
    np.testing.assert_allclose(served.to_numpy(), training.tail(40).to_numpy(), rtol=0, atol=1e-9)

    spec = SPECS["market_insight"]
    data = build_dataset(bars, spec, spec.defaults)
    labelled = data.features.index.intersection(served.index)
    assert len(labelled) > 30  # the served rows the training set also has
    np.testing.assert_allclose(served.loc[labelled].to_numpy(), data.features.loc[labelled].to_numpy(), atol=1e-9)

    # Why: exponential averages remember every bar, so the seed's 61 bars of history serve other values.
    short = compute_features(bars.tail(WARMUP_BARS + 1)).iloc[-1]
    assert abs(short["rsi_14"] - training.iloc[-1]["rsi_14"]) > 1e-3
