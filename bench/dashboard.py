"""Benchmark: how long each dashboard page takes to load in Chromium on a store with 1,000 model runs, 100 drift
checks and 20 sweeps (bench/dashboard_store.py), against the same page on a store holding only that build's real
rounds (4 runs, 4 checks, 1 sweep), measured in the same process with the two interleaved. Target: every page
under 2 s on the big store.

Both stores are served by a real `skippy serve --no-jobs` each; one Chromium (Debian's, via Playwright) logs in
through the login page as admin, loads each page of `dashboard.pages.pages()` — and two views of one item: the
largest sweep's trials (`/sweeps?sweep=`) and the oldest drift check (`/drift?check=`) — once to warm up
(imports and caches a first request pays; reported as "first"), then N times per store, alternating. A load is a
full navigation (`page.goto`, the browser's cache warm, as when a person opens a bookmark or reloads) and ends
when the page is complete: Dash's renderer has no request in flight (a counter around `fetch` of `/_dash-*`),
shows no loading marker (`._dash-loading`, `._dash-loading-callback`, `.dash-graph--pending`,
`[data-dash-is-loading]`), the page container has content and every `dcc.Graph` has drawn its SVG — all of it
holding for 300 ms, so a callback chained on another's output is waited for. The time is when that state
began, from the navigation's start (`performance.now()` of the new document), so the quiet window is not
counted.

Each page's server callbacks are timed from the browser's side: the time to the first byte of every
`_dash-update-component` response (Playwright's request timing), grouped by the callback's outputs; the table
names each page's slowest callback on the big store, so a slow page points at the callback to look at, and how
long the browser still worked after the last response (rendering, loading plotly.js, drawing). Note: this
Chromium has no GPU, so WebGL traces (Plotly's `parcoords`, the sweeps' parallel coordinates) are drawn in
software (SwiftShader), some 0.8 s per figure on this 2-core machine; a desktop browser draws them on its GPU.

    uv run python bench/dashboard.py [--quick] [--reps N] [--home DIR] [--baseline-home DIR] [--rebuild]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# Run as a script, this folder is sys.path[0] and bench/drift.py would shadow the `drift` package.
sys.path[:] = [p for p in sys.path if p not in ("", str(HERE))]
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

from bench.dashboard_store import DEFAULT_HOME, StoreSize, login, open_store, serve  # noqa: E402

TARGET_SECONDS = 2.0
QUIET_MS = 300
POLL_MS = 20  # not "raf": a tab in the background gets no animation frames
SMALL = StoreSize(runs=4, checks=4, sweeps=1)  # the build's real rounds only: nothing written
CHROMIUM = "/usr/bin/chromium"
# As tests/dashboard/conftest.py starts it: no sandbox as root, nothing that calls out to the network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1440, "height": 900}

# Counts the renderer's requests to /_dash-* (layout, dependencies, callbacks) and when the last one ended.
TRACK_DASH_REQUESTS = """
(() => {
  const state = {pending: 0, requests: 0, lastEnd: 0, readyAt: null};
  window.__skippyBench = state;
  const original = window.fetch;
  window.fetch = function (input, init) {
    const url = typeof input === "string" ? input : (input && input.url) || "";
    if (!url.includes("/_dash-")) return original.apply(this, arguments);
    state.pending += 1;
    state.requests += 1;
    return original.apply(this, arguments).finally(() => {
      state.pending -= 1;
      state.lastEnd = performance.now();
    });
  };
})();
"""

# True once the page has been complete for `quiet` ms; `readyAt` keeps when that began.
PAGE_COMPLETE = """
(quiet) => {
  const s = window.__skippyBench;
  const now = performance.now();
  const loading = "._dash-loading, ._dash-loading-callback, .dash-graph--pending, [data-dash-is-loading='true']";
  const busy = !s || s.pending > 0 || s.requests === 0 || document.readyState !== "complete"
    || document.querySelector(loading) !== null
    || document.querySelector("#page > *") === null
    || Array.from(document.querySelectorAll(".dash-graph")).some((g) => g.querySelector(".main-svg") === null);
  if (busy) {
    if (s) s.readyAt = null;
    return false;
  }
  if (s.readyAt === null) s.readyAt = now;
  return now - s.readyAt >= quiet && now - s.lastEnd >= quiet;
}
"""


def install_tracking(context: Any) -> None:
    context.add_init_script(TRACK_DASH_REQUESTS)


# What still keeps a page from being complete, for the error when it never is.
PAGE_STATE = """
() => ({
  requests: window.__skippyBench || null,
  readyState: document.readyState,
  loading: Array.from(document.querySelectorAll(
    "._dash-loading, ._dash-loading-callback, .dash-graph--pending, [data-dash-is-loading='true']"
  )).map((e) => e.id || e.className),
  content: document.querySelector("#page > *") !== null,
  undrawn: Array.from(document.querySelectorAll(".dash-graph"))
    .filter((g) => g.querySelector(".main-svg") === null).map((g) => g.id),
})
"""


def wait_complete(page: Any, timeout_ms: float = 60_000) -> float:
    """Wait until the page is complete (see the module docstring); seconds from the navigation's start.
    `window.__skippyBench.lastEnd` then says when its last Dash response arrived (ms from the same start)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(PAGE_COMPLETE, arg=QUIET_MS, polling=POLL_MS, timeout=timeout_ms)
    except PlaywrightTimeout:
        state = page.evaluate(PAGE_STATE)
        raise SystemExit(f"{page.url} was not complete after {timeout_ms / 1000:.0f} s: {state}") from None
    return float(page.evaluate("window.__skippyBench.readyAt")) / 1000


def launch(playwright: Any) -> Any:
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install chromium (Debian's package)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def callback_name(output: str) -> str:
    """Dash's output spec (`page.children`, or `..a.children...b.data..` for several) in a readable form."""
    if output.startswith(".."):
        return " + ".join(part for part in output.strip(".").split("...") if part)
    return output


# -------------------------------------------------------------------------------------------- measuring


@dataclass
class Call:
    """One `_dash-update-component` request: its callback, server time (s, to the first byte) and body size."""

    name: str
    seconds: float
    size: int


@dataclass
class Loads:
    """One page on one store: load times (s) and, per recorded load, its callbacks."""

    first: float = 0.0
    times: list[float] = field(default_factory=list)
    calls: list[list[Call]] = field(default_factory=list)  # per recorded load
    drawing: list[float] = field(default_factory=list)  # per recorded load: s from the last response to complete
    errors: list[str] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times) if self.times else float("nan")

    @property
    def worst(self) -> float:
        return max(self.times) if self.times else float("nan")

    def per_load(self) -> tuple[float, float, float, float]:
        """Medians over the loads of: callbacks made, their summed server seconds, their kilobytes, and the
        seconds the browser still drew after the last response."""
        if not self.calls:
            return float("nan"), float("nan"), float("nan"), float("nan")
        return (
            statistics.median(len(c) for c in self.calls),
            statistics.median(sum(x.seconds for x in c) for c in self.calls),
            statistics.median(sum(x.size for x in c) for c in self.calls) / 1024,
            statistics.median(self.drawing),
        )

    def by_callback(self) -> dict[str, tuple[float, float]]:
        """Per callback: median server seconds and median kilobytes."""
        grouped: dict[str, list[Call]] = defaultdict(list)
        for load in self.calls:
            for call in load:
                grouped[call.name].append(call)
        return {
            name: (statistics.median(c.seconds for c in calls), statistics.median(c.size for c in calls) / 1024)
            for name, calls in grouped.items()
        }


class Tab:
    """A logged-in browser tab on one server, recording its callbacks' server times and console errors."""

    def __init__(self, browser: Any, base_url: str, key: str) -> None:
        self.context = browser.new_context(viewport=VIEWPORT)
        install_tracking(self.context)
        self.page = self.context.new_page()
        self.page.set_default_timeout(60_000)
        self.base_url = base_url
        self.sink: Loads | None = None
        self.current: list[Call] | None = None
        self.page.on("requestfinished", self._finished)
        self.page.on("console", lambda m: self._error(f"console {m.type}: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self._error(f"page error: {e}"))
        login(self.page, base_url, key)
        wait_complete(self.page)

    def _error(self, text: str) -> None:
        if self.sink is not None:
            self.sink.errors.append(text)

    def _finished(self, request: Any) -> None:
        if self.sink is None or "_dash-update-component" not in request.url:
            return
        try:
            output = str((request.post_data_json or {}).get("output", "?"))
        except ValueError:
            output = "?"
        timing = request.timing
        if timing.get("responseStart", -1) < 0 or timing.get("requestStart", -1) < 0 or self.current is None:
            return
        seconds = (timing["responseStart"] - timing["requestStart"]) / 1000
        self.current.append(Call(callback_name(output), seconds, int(request.sizes()["responseBodySize"])))

    def load(self, path: str, sink: Loads, record: bool = True) -> float:
        """One full navigation to `path`; its time and (when `record`) its callbacks go to `sink`."""
        self.sink, self.current = sink, []
        try:
            self.page.goto(f"{self.base_url}/mlops{path}", wait_until="commit")
            seconds = wait_complete(self.page)
            last_response = float(self.page.evaluate("window.__skippyBench.lastEnd")) / 1000
            self.page.wait_for_timeout(50)  # lets Playwright deliver the last requestfinished events
            if record:
                sink.times.append(seconds)
                sink.calls.append(self.current)
                sink.drawing.append(max(seconds - last_response, 0.0))
            return seconds
        finally:
            self.sink, self.current = None, None

    def close(self) -> None:
        self.context.close()


def page_views(modules: list[Any], settings: dict[str, Any]) -> dict[str, dict[str, str]]:
    """What to load: every page, plus two views of one item (a sweep's trials, one drift check), as
    label → path per store (the items' ids differ between the stores)."""
    from mlops.db.sweeps import list_sweeps
    from mlops.pipeline.drift_history import drift_history

    views = {f"{m.TITLE} {m.PATH}": {store: m.PATH for store in settings} for m in modules}
    paths = {m.PATH for m in modules}
    if "/sweeps" in paths:
        largest = {
            s: max(list_sweeps(c, limit=1000), key=lambda r: r.n_trials, default=None) for s, c in settings.items()
        }
        if all(largest.values()):
            views["Sweeps: the largest sweep"] = {s: f"/sweeps?sweep={r.id}" for s, r in largest.items() if r}
    if "/drift" in paths:
        oldest = {s: drift_history(c, limit=1000)[-1:] for s, c in settings.items()}
        if all(oldest.values()):
            views["Drift: the oldest check"] = {s: f"/drift?check={rows[0].check_id}" for s, rows in oldest.items()}
    return views


def measure(
    tabs: dict[str, Tab], views: dict[str, dict[str, str]], reps: int, progress: Callable[[str], None]
) -> dict[tuple[str, str], Loads]:
    """Per (store, view): one warm-up load, then `reps` loads, the stores alternating on every view."""
    results: dict[tuple[str, str], Loads] = {(s, v): Loads() for s in tabs for v in views}
    for view, path in views.items():
        for store, tab in tabs.items():
            results[store, view].first = tab.load(path[store], results[store, view], record=False)
    for rep in range(reps):
        for view, path in views.items():
            for store, tab in tabs.items():
                tab.load(path[store], results[store, view])
        progress(f"  repetition {rep + 1}/{reps} done")
    return results


# ---------------------------------------------------------------------------------------------- printing


def print_tables(results: dict[tuple[str, str], Loads], views: list[str], reps: int, sizes: str) -> list[str]:
    """The load table and the callback table; returns the views over the target."""
    print()
    print(f"Page loads, seconds ({reps} loads per page and store after one warm-up load; target < {TARGET_SECONDS} s)")
    print(f"  {'page':30}{'big median':>11}{'big max':>9}{'big first':>10}{'seed median':>12}{'ratio':>7}  < 2 s")
    over = []
    for view in views:
        big, small = results["big", view], results["seed", view]
        ok = big.worst < TARGET_SECONDS
        if not ok:
            over.append(view)
        ratio = big.median / small.median if small.median else float("nan")
        print(
            f"  {view:30}{big.median:>11.2f}{big.worst:>9.2f}{big.first:>10.2f}{small.median:>12.2f}"
            f"{ratio:>6.2f}x  {'yes' if ok else 'NO'}"
        )
    print(f"  ({sizes}; ratio = big / seed medians; first: the")
    print("   warm-up load right after the server started; < 2 s judged on the big store's max)")
    print()
    print("Per load on the big store (medians): callbacks, their server time (to each response's first byte, summed),")
    print("their response KB, the browser's time from the last response to complete (rendering, plotly.js, WebGL),")
    print("and the slowest callback")
    print(f"  {'page':30}{'calls':>6}{'server ms':>10}{'KB':>6}{'browser ms':>11}   slowest callback: ms, KB, outputs")
    for view in views:
        big = results["big", view]
        calls, server, size, drawing = big.per_load()
        callbacks = big.by_callback()
        name, (seconds, kb) = max(callbacks.items(), key=lambda item: item[1][0]) if callbacks else ("", (0.0, 0.0))
        slowest = f"{1000 * seconds:.0f}, {kb:.0f}, {name}"
        print(f"  {view:30}{calls:>6.0f}{1000 * server:>10.0f}{size:>6.0f}{1000 * drawing:>11.0f}   {slowest}")
    errors = {(s, p): r.errors for (s, p), r in results.items() if r.errors}
    if errors:
        print()
        for (store, path), found in errors.items():
            print(f"  console errors on {path} ({store} store), {len(found)}: {found[0][:300]}")
    return over


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 loads per page and store instead of 5")
    parser.add_argument("--reps", type=int, default=None, help="Loads per page and store (default 5, quick 2)")
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME, help="The big store's folder (built if missing)")
    parser.add_argument(
        "--baseline-home", type=Path, default=None, help="The seed-only store's folder (default: <home>-seed)"
    )
    parser.add_argument("--rebuild", action="store_true", help="Build both stores again")
    parser.add_argument("--runs", type=int, default=StoreSize.runs, help="Model runs in the big store")
    parser.add_argument("--checks", type=int, default=StoreSize.checks, help="Drift checks in the big store")
    parser.add_argument("--sweeps", type=int, default=StoreSize.sweeps, help="Sweeps in the big store")
    args = parser.parse_args()
    reps = args.reps or (2 if args.quick else 5)

    from playwright.sync_api import sync_playwright

    from dashboard.pages import pages

    stores = {}
    for name, home, size in (
        ("big", args.home, StoreSize(args.runs, args.checks, args.sweeps)),
        ("seed", args.baseline_home or args.home.with_name(args.home.name + "-seed"), SMALL),
    ):
        began = time.perf_counter()
        store = open_store(home, size, rebuild=args.rebuild)
        how = "reused" if store.reused else f"built in {time.perf_counter() - began:.0f} s"
        counts = store.counts
        print(
            f"{name} store {store.home} ({how}): {counts['model_runs']} model runs, {counts['drift checks']} drift "
            f"checks ({counts['drift_metrics']} rows), {counts['hyperparameter_sweeps']} sweeps "
            f"({counts['sweep_results']} trials), {counts['alerts']} alerts, {counts['jobs']} jobs"
        )
        stores[name] = store
    modules = pages()
    views = page_views(modules, {name: store.settings for name, store in stores.items()})
    listed = ", ".join(views)
    print(f"pages: {listed}; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    with serve(stores["big"].home) as big_url, serve(stores["seed"].home) as seed_url, sync_playwright() as pw:
        browser = launch(pw)
        tabs = {
            "big": Tab(browser, big_url, stores["big"].keys["admin"]),
            "seed": Tab(browser, seed_url, stores["seed"].keys["admin"]),
        }
        began = time.perf_counter()
        results = measure(tabs, views, reps, print)
        print(f"  measured in {time.perf_counter() - began:.0f} s; load average now {os.getloadavg()[0]:.1f}")
        for tab in tabs.values():
            tab.close()
        browser.close()
    big, seed = stores["big"].counts, stores["seed"].counts
    sizes = (
        f"big: {big['model_runs']} runs / {big['drift checks']} checks / {big['hyperparameter_sweeps']} sweeps; "
        f"seed: {seed['model_runs']} / {seed['drift checks']} / {seed['hyperparameter_sweeps']}"
    )
    over = print_tables(results, list(views), reps, sizes)
    print()
    if over:
        print(f"Over {TARGET_SECONDS} s on the big store: {', '.join(over)} (see its slowest callback above)")
    else:
        print(f"Every page loads in under {TARGET_SECONDS} s on the big store (max of {reps} loads).")


if __name__ == "__main__":
    main()
