"""The Drift page's figures (dashboard/pages/drift.py): each kind's statistic over the checks against its
warning and critical floors, and the feature × check heatmap. Pure functions of service records."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import plotly.graph_objects as go

from dashboard.components import COLORS, empty_figure, fmt, styled
from mlops.pipeline.drift_checks import DriftCheckSummary, FeatureCell

TITLES = {
    "feature": "Feature drift: KL of the deciding feature",
    "prediction": "Prediction drift: W1 / sd of the predicted probabilities",
    "performance": "Performance drift: Sharpe degradation (relative)",
}
AXES = {"kl_divergence": "KL", "wasserstein": "W1 / sd", "sharpe_degradation": "degradation"}
HEATMAP_SCALE = [[0.0, "#f1f8e9"], [0.2, "#c5e1a5"], [1 / 3, "#ffe082"], [0.5, "#ffb74d"], [1.0, "#b71c1c"]]
HEATMAP_MAX = 3.0  # value ÷ critical floor: 1 sits a third of the way up, anything ≥ 3 is the darkest red
MARKS = {"critical": "C", "warning": "W"}


def kind_figure(kind: str, checks: list[DriftCheckSummary], height: int = 300) -> go.Figure:
    """One kind's summary statistic per check (oldest left), its floors as steps (each check stores its
    own), and a marker coloured by the check's status for that kind."""
    rows = sorted((c.kinds[kind] for c in checks if kind in c.kinds), key=lambda r: r.computed_at)
    if not rows:
        return empty_figure(f"No {kind} drift rows for this agent yet")
    x = [r.computed_at for r in rows]
    # One check: its floors drawn a day wide (a step needs two points), and an axis of days, not of microseconds
    floor_x = [x[0] - timedelta(hours=12), x[0] + timedelta(hours=12)] if len(rows) == 1 else x
    figure = go.Figure()
    for name, values, colour in (
        ("critical floor", [r.critical for r in rows], COLORS["critical"]),
        ("warning floor", [r.warning for r in rows], COLORS["warning"]),
    ):
        figure.add_trace(
            go.Scatter(
                x=floor_x,
                y=values * len(floor_x) if len(rows) == 1 else values,
                name=name,
                mode="lines",
                line={"shape": "hv", "dash": "dash", "color": colour, "width": 1.5},
                hovertemplate=f"{name} %{{y:.3f}}<extra></extra>",
            )
        )
    figure.add_trace(
        go.Scatter(
            x=x,
            y=[r.value for r in rows],
            name=AXES.get(rows[0].statistic, rows[0].statistic),
            mode="lines+markers",
            line={"color": COLORS["info"]},
            marker={"size": 8, "color": [COLORS.get(r.status, COLORS["muted"]) for r in rows]},
            customdata=[_hover(r) for r in rows],
            hovertemplate="%{customdata}<extra></extra>",
        )
    )
    figure.update_yaxes(title=AXES.get(rows[0].statistic, rows[0].statistic))
    return styled(figure, height=height, title=TITLES.get(kind, kind))


def _hover(row: Any) -> str:
    lines = [
        f"check {row.check_id} (model v{row.model_version})",
        f"{row.statistic} {fmt(row.value)}: {row.status}",
        f"p {fmt(row.p_value)} · adjusted p {fmt(row.adjusted_p)} · null percentile {fmt(row.null_percentile, 1)}",
    ]
    if row.deciding_feature:
        lines.insert(1, f"deciding feature {row.deciding_feature}")
    return "<br>".join(lines)


def heatmap_figure(checks: list[DriftCheckSummary], cells: list[FeatureCell]) -> go.Figure:
    """Features × checks (oldest left), coloured by KL ÷ the critical floor; W/C mark the cells whose test
    made them warning/critical (a cell can pass its floor and still be ok: the test decides)."""
    if not checks:
        return empty_figure("No drift checks of this agent yet")
    if not cells:
        return empty_figure("No per-feature drift rows in these checks")
    ordered = sorted(checks, key=lambda c: c.computed_at)
    labels = [f"{c.computed_at:%m-%d %H:%M} · {c.check_id[:6]}" for c in ordered]
    column = {c.check_id: i for i, c in enumerate(ordered)}
    newest = {cell.feature: cell.value or 0.0 for cell in cells if cell.check_id == ordered[-1].check_id}
    features = sorted({cell.feature for cell in cells}, key=lambda f: (newest.get(f, -1.0), f))
    row = {f: i for i, f in enumerate(features)}  # the most drifted now at the top
    z: list[list[float | None]] = [[None] * len(ordered) for _ in features]
    text = [[""] * len(ordered) for _ in features]
    hover = [[""] * len(ordered) for _ in features]
    for cell in cells:
        i, j = row[cell.feature], column[cell.check_id]
        ratio = None if cell.value is None or not cell.critical else cell.value / cell.critical
        z[i][j] = ratio
        text[i][j] = MARKS.get(cell.status, "")
        hover[i][j] = (
            f"{cell.feature} · {labels[j]}<br>{cell.statistic} {fmt(cell.value)} (critical floor {fmt(cell.critical)})"
            f"<br>adjusted p {fmt(cell.adjusted_p)}: {cell.status}"
        )
    figure = go.Figure(
        go.Heatmap(
            z=z,
            x=labels,
            y=features,
            text=text,
            texttemplate="%{text}",
            customdata=hover,
            hovertemplate="%{customdata}<extra></extra>",
            colorscale=HEATMAP_SCALE,
            zmin=0,
            zmax=HEATMAP_MAX,
            colorbar={"title": {"text": "KL ÷ critical floor"}},
            xgap=1,
            ygap=1,
        )
    )
    figure.update_xaxes(type="category", tickangle=-45)
    title = f"Feature × check (last {len(ordered)} checks): W / C = the test's warning / critical"
    return styled(figure, height=max(320, 26 * len(features) + 160), title=title)
