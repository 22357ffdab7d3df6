"""What the Sweeps page draws and says about one sweep: the parallel-coordinates figure of its grid against
the objective, and its winner's deflated significance in words (not a page: helpers of dashboard/pages/sweeps.py)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from dashboard.components import empty_figure, styled
from mlops.pipeline.sweeps import SweepRecord, TrialRecord

LOG_SPAN = 10.0  # positive grid values spanning this factor or more get a log axis (learning rates, l2)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _label(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _key(value: Any) -> str:
    """Grid values compared as JSON: 1 and 1.0 are one point, lists and null are values too."""
    return json.dumps(float(value) if _is_number(value) else value, sort_keys=True)


def dimension(name: str, choices: Sequence[Any], values: Sequence[Any]) -> dict[str, Any]:
    """One axis of the figure for hyperparameter `name` (grid `choices`, the trials' `values`):
    numbers on a linear axis, or a log one when positive and spanning a factor of 10 or more; numbers with
    0 beside such a span (e.g. l2 0, 0.001, 0.01) and anything else (text, booleans, lists) on an axis with
    one evenly spaced, labelled tick per grid value, in grid order."""
    grid = list(choices) or sorted({_key(v): v for v in values}.values(), key=_key)
    axis: dict[str, Any] = {"label": name}
    if all(_is_number(c) for c in grid) and all(_is_number(v) for v in values):
        ordered = sorted(grid)
        low = ordered[0]
        positive = [c for c in ordered if c > 0]
        wide = bool(positive) and positive[-1] / positive[0] >= LOG_SPAN
        if wide and low > 0:
            ticks = [math.log10(c) for c in ordered]
            axis |= {"label": f"{name} (log)", "values": [math.log10(v) for v in values]}
            return axis | _ticks(ticks, [_label(c) for c in ordered])
        if not wide:
            return axis | {"values": list(values)} | _ticks(list(ordered), [_label(c) for c in ordered], linear=True)
        grid = ordered  # 0 beside a wide positive span: ordinal, smallest first
    index = {_key(c): i for i, c in enumerate(grid)}
    for v in values:
        index.setdefault(_key(v), len(index))  # a value outside the grid (an older grid) still gets a tick
    labels = [_label(json.loads(k)) if k != "null" else "none" for k in index]
    return axis | {"values": [index[_key(v)] for v in values]} | _ticks(list(range(len(labels))), labels)


def _ticks(ticks: list[float], labels: list[str], *, linear: bool = False) -> dict[str, Any]:
    """Tick per grid value (at most 12 labelled on a linear axis); a one-value axis gets some room."""
    low, high = min(ticks), max(ticks)
    pad = 1.0 if high == low else 0.0
    spec: dict[str, Any] = {"range": [low - pad, high + pad]}
    if not linear or len(ticks) <= 12:
        spec |= {"tickvals": ticks, "ticktext": labels}
    return spec


def parallel_coordinates(sweep: SweepRecord, trials: Sequence[TrialRecord], *, height: int = 380) -> go.Figure:
    """One line per completed trial across one axis per hyperparameter of the grid and the objective,
    coloured by the objective (brightest = best, whichever the direction)."""
    done = [t for t in trials if t.status == "complete" and t.objective_value is not None]
    if not done:
        return empty_figure("No trial has completed yet: each line appears as its trial ends.")
    names = list(sweep.parameter_grid) or sorted({k for t in done for k in t.params})
    dimensions = [dimension(n, list(sweep.parameter_grid.get(n) or []), [t.params.get(n) for t in done]) for n in names]
    objective = [float(t.objective_value or 0.0) for t in done]
    dimensions.append({"label": sweep.objective_metric, "values": objective})
    trace = go.Parcoords(
        line={
            "color": objective,
            "colorscale": "Viridis",
            "reversescale": sweep.direction == "minimize",
            "showscale": True,
            "colorbar": {"title": {"text": sweep.objective_metric}},
        },
        dimensions=dimensions,
        labelangle=0,
    )
    figure = styled(go.Figure(trace), height=height)
    figure.update_layout(margin={"l": 60, "r": 60, "t": 50, "b": 30})
    return figure


def _p(value: float) -> str:
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def significance(sweep: SweepRecord) -> tuple[str, str]:
    """(headline, details) on the winner's selection bias, in words: its Sharpe deflated for the number of
    trials it was picked from (what `sweeps.selection` stored when the sweep closed)."""
    report = sweep.selection
    if report is None:
        if sweep.status in ("queued", "running"):
            return "Deflated significance: judged when the sweep finishes.", ""
        return "No selection statistics were recorded for this sweep.", ""
    notes = "; ".join(report.notes)
    if report.dsr is None or report.p_value is None or report.best_sharpe is None:
        return f"No deflated significance: {report.verdict.removeprefix('no DSR: ')}.", notes
    verdict = (
        f"significant at α {report.alpha:g}"
        if report.significant
        else f"not significant at α {report.alpha:g}: picking the best of {report.n_trials} could explain it"
    )
    headline = (
        f"Best Sharpe {report.best_sharpe:.2f}, deflated p {_p(report.p_value)} over {report.n_trials} trials "
        f"(DSR {report.dsr:.3f}): {verdict}."
    )
    return headline, "; ".join(x for x in (report.verdict, notes) if x)
