"""Both decisions on real data: GOOG daily bars 2004–2013 (shipped by the `backtesting` package).

For each scenario a fresh embedded store is made, GOOG bars are imported up to the end of a calm training
period, both agents are retrained (the gate judges the first models against their naive baselines), then
bars are appended and the drift check is run on (a) the next calm months and (b) a crisis. A second
retrain on the longer history shows the gate against a champion. Everything goes through the platform's
own services (retrain, check_drift), as `skippy ai retrain` / `skippy ai drift` would.

    uv run python bench/real_decisions.py
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if p not in ("", str(HERE))]  # bench/drift.py would shadow `drift`
sys.path.insert(0, str(HERE.parent))


@dataclass(frozen=True)
class Scenario:
    train_from: str
    train_until: str
    checks: tuple[tuple[str, str, str], ...]  # (label, window start, window end), in time order: bars are appended

    @property
    def name(self) -> str:
        return f"trained on GOOG {self.train_from[:7]}..{self.train_until[:7]}"


SCENARIOS = (
    Scenario(
        "2005-01-03",
        "2007-06-29",
        (("calm: 2007 H2", "2007-07-02", "2007-12-31"), ("crisis: 2008 H2", "2008-07-01", "2008-12-31")),
    ),
    Scenario(
        "2006-07-03",
        "2007-09-28",
        (("calm: 2007 Q4", "2007-10-01", "2007-12-31"), ("crisis: Sep-Dec 2008", "2008-09-02", "2008-12-31")),
    ),
    Scenario(
        "2009-07-01",
        "2011-06-30",
        (("stress: Aug-Oct 2011", "2011-08-01", "2011-10-31"), ("calm: 2012 H1", "2012-01-03", "2012-06-29")),
    ),
)
HEADER = (
    "| agent | feature drift | deciding feature (KL, adj. p) | prediction drift (W1/sd, p) "
    "| performance drift (degradation, p) |\n|---|---|---|---|---|"
)


def goog() -> pd.DataFrame:
    import backtesting

    from mlops.data.validation import normalise_bars

    raw = pd.read_csv(Path(backtesting.__file__).parent / "test" / "GOOG.csv")
    return normalise_bars(raw, "GOOG.csv")


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return "" if value is None else str(value)


def run(scenario: Scenario, bars: pd.DataFrame, home: Path) -> None:
    from mlops.data.store import upsert_bars
    from mlops.pipeline.deployments import promote
    from mlops.pipeline.drift import check_drift
    from mlops.pipeline.retrain import retrain
    from mlops.settings import Settings
    from mlops.stores import init_stores
    from tracking import registry

    # Store URLs explicit: MLflow exports MLFLOW_TRACKING_URI into the process once a URI is set.
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        home=home,
        database_url=None,
        mlflow_tracking_uri=None,
        optuna_storage_url=None,
        drift_report=False,
        symbol="GOOG",
    )
    init_stores(settings)
    start = pd.Timestamp(scenario.train_from, tz="UTC")
    training = bars[(bars.index >= start) & (bars.index <= pd.Timestamp(scenario.train_until, tz="UTC"))]
    upsert_bars(settings.app_db_url, "GOOG", training, "bench")
    print(f"\n## {scenario.name}")
    for agent in ("market_insight", "risk_assessor"):
        result = retrain(settings, actor="bench", agent=agent)
        print(f"- {agent} v{result.model_version}: {result.status}/{result.deployment_status}: {result.reason}")
        if result.status == "rejected" and result.model_version is not None:
            promote(settings, agent=agent, version=result.model_version, actor="bench", force=True, reason="bench")
            print("  (promoted with --force so that its drift can be checked)")
    for label, begin, end in scenario.checks:
        until = pd.Timestamp(end, tz="UTC")
        upsert_bars(settings.app_db_url, "GOOG", bars[(bars.index >= start) & (bars.index <= until)], "bench")
        window = int(((bars.index >= pd.Timestamp(begin, tz="UTC")) & (bars.index <= until)).sum())
        print(f"\n### {label} ({window} bars)")
        print(HEADER)
        for agent in ("market_insight", "risk_assessor"):
            if registry.alias_version(settings, agent, registry.CHAMPION) is None:
                print(f"| {agent} | (no champion: its first model was not deployed) | | | |")
                continue
            check = check_drift(settings, actor="bench", agent=agent, window_bars=window)
            rows = {r.drift_type: r for r in check.summary()}
            f, p, q = rows["feature"], rows["prediction"], rows["performance"]
            fd = f.details
            deciding = (
                f"{fd.get('deciding_feature')} ({_fmt(fd.get('deciding_kl'))}, {_fmt(fd.get('deciding_adjusted_p'))})"
            )
            prediction = f"{p.status} ({_fmt(p.value)}, {_fmt(p.details.get('p_value'))})"
            performance = f"{q.status} ({_fmt(q.value)}, {_fmt(q.details.get('p_value'))})"
            print(f"| {agent} | **{f.status}** | {deciding} | {prediction} | {performance} |")
    # The gate against a champion, on the longer history.
    for agent in ("market_insight", "risk_assessor"):
        result = retrain(settings, actor="bench", agent=agent)
        outcome = f"{result.status}/{result.deployment_status}"
        print(f"\n- retrain of {agent} on data to {scenario.checks[-1][2]}: {outcome}: {result.reason}")


def main() -> None:
    bars = goog()
    for scenario in SCENARIOS:
        with tempfile.TemporaryDirectory() as tmp:
            run(scenario, bars, Path(tmp))


if __name__ == "__main__":
    main()
