"""Benchmark: a retrain's wall time is the same whatever the insights' API does.

Four stores, each with the same small synthetic market (same seed) and drift nulls off, retrain market_insight
in turn, round after round (the order rotates each round), in this one process, with a `Narrator` per store running
next to them exactly as in `skippy serve` (all four throughout: every retrain has the same background, and the
only difference between the modes is what the API its insight goes to does):

    no key    OPENAI_API_KEY unset: the template is the insight, nothing is asked (the baseline)
    up        the loopback OpenAI-compatible server answers (tests/insights/loopback.py)
    down      nothing listens on OPENAI_BASE_URL's port (connection refused)
    hanging   the server accepts and never answers (the narrator waits out the timeout)

Printed per mode: the retrain's median wall time and its ratio to the no-key median, the median of the
per-round paired ratios (robust to a machine whose load drifts), the retrain thread's median CPU time and its
ratio, and what became of the insights (generated / pending / template). The retrain records its insight in the
app DB and never waits for the API: the ratios stay within the run-to-run noise of a retrain.

    uv run python bench/insights.py [--bars 2000] [--rounds 8] [--timeout 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

# Run as a script, this folder is sys.path[0], and bench/drift.py would shadow the `drift` package.
ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if p not in ("", str(ROOT / "bench"))]
sys.path.insert(0, str(ROOT))  # tests.insights.loopback: the same loopback server as the tests

MODES = ("no key", "up", "down", "hanging")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=20.0, help="SKIPPY_INSIGHT_TIMEOUT_SECONDS")
    args = parser.parse_args()

    from sqlalchemy import select

    from mlops.data.generate import generate_market
    from mlops.db import session_scope
    from mlops.db.models import Insight
    from mlops.insights import Narrator
    from mlops.logs import configure_logging
    from mlops.pipeline.retrain import retrain
    from mlops.settings import Settings
    from mlops.stores import init_stores
    from tests.alerts.loopback import free_port
    from tests.insights.loopback import API_KEY, chat_server

    configure_logging("ERROR", True)  # the narrators' failures (down, hanging) are the point: counted below
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="skippy-bench-insights-") as tmp:
        up = stack.enter_context(chat_server())
        hanging = stack.enter_context(chat_server(hang=True))
        down = f"http://127.0.0.1:{free_port()}/v1"  # bound, then released: nothing listens there
        urls = {"no key": None, "up": up.base_url, "down": down, "hanging": hanging.base_url}
        stores: dict[str, Settings] = {}
        narrators = []
        for mode in MODES:
            home = Path(tmp) / mode.replace(" ", "_")
            keyed = {"openai_api_key": API_KEY, "openai_base_url": urls[mode]} if urls[mode] else {}
            settings = Settings(
                _env_file=None,  # type: ignore[call-arg]
                home=home,
                database_url=None,
                mlflow_tracking_uri=None,
                drift_null_draws=0,
                drift_null_prediction_draws=0,
                insight_timeout_seconds=args.timeout,
                **keyed,
            )
            init_stores(settings)
            generate_market(settings, symbol="SYNTH", n_bars=args.bars, seed=3)
            stores[mode] = settings
            narrator = Narrator(settings, poll_seconds=1.0)
            narrator.start()
            narrators.append(narrator)

        for mode in MODES:  # warm-up: imports, caches, and each store's first model (later ones face a champion)
            retrain(stores[mode], actor="bench", agent="market_insight")
        times: dict[str, list[float]] = {m: [] for m in MODES}
        cpu: dict[str, list[float]] = {m: [] for m in MODES}
        for n in range(args.rounds):
            for mode in MODES[n % len(MODES) :] + MODES[: n % len(MODES)]:
                started, started_cpu = time.perf_counter(), time.thread_time()
                result = retrain(stores[mode], actor="bench", agent="market_insight")
                times[mode].append(time.perf_counter() - started)
                cpu[mode].append(time.thread_time() - started_cpu)
                assert result.status in ("succeeded", "rejected"), result.reason
        time.sleep(2.0)  # let the narrators answer the last round before the census
        for narrator in narrators:
            narrator.stop(timeout=1.0)
        census = {}
        for mode, settings in stores.items():
            with session_scope(settings.app_db_url) as session:
                counts = Counter(session.scalars(select(Insight.status)))
            census[mode] = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))

    print(f"retrain of market_insight on {args.bars} bars, {args.rounds} rounds, insight timeout {args.timeout:g} s")
    print(
        f"{'mode':<10} {'wall med s':>10} {'min s':>7} {'ratio':>6} {'paired':>7} {'cpu med s':>10} {'ratio':>6}  "
        "insights (after the warm-up round too)"
    )
    base, base_cpu = statistics.median(times["no key"]), statistics.median(cpu["no key"])
    for mode in MODES:
        t, c = times[mode], cpu[mode]
        paired = statistics.median(a / b for a, b in zip(t, times["no key"], strict=True))
        print(
            f"{mode:<10} {statistics.median(t):10.3f} {min(t):7.3f} {statistics.median(t) / base:6.3f} {paired:7.3f} "
            f"{statistics.median(c):10.3f} {statistics.median(c) / base_cpu:6.3f}  {census[mode]}"
        )
    print(
        "wall: the retrain's elapsed time; paired: median over rounds of (mode / no key) in the same round; "
        "cpu: the retrain thread's CPU time (what a busy machine does not inflate)"
    )


if __name__ == "__main__":
    main()
