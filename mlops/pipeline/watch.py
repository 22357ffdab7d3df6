"""The champion watch: auto-rollback of a new champion that turns out significantly worse than the one it
replaced, on bars neither of them learned from.

Who is on probation: the champion whose newest `model_deployments` row is a promotion from another version
(the gate's, paper trading's or a person's). A champion restored by a rollback (this watch's or a person's)
or by the undo of a failed run is not: its newest row is not a promotion, so a rollback never puts the old
champion on probation as if it were new. A version this watch rolled back once and a person promoted again
is not watched again (its looks are spent: one row per look and version, the person's call stands).

Probation bars: the champion's symbol's bars after the newest bar either version's data held
(`model_runs.data_end`, the held-out test window's end for runs that predate it) and after any paper
trading that promoted it, up to `auto_rollback_max_bars` of them. Both versions are scored on those bars
as the gate scores them: each registered version's probabilities, its own recipe's positions, net of the
symbol's cost, in excess of the risk-free rate.

The rule (mlops/pipeline/watch_rule.py states it with its arithmetic): up to 3 looks planned at fixed bar
counts (1/3, 2/3 and all of the probation, at least 60 bars each: a probation under 180 bars gets fewer),
each the gate's paired bootstrap test with the roles swapped, H0 "the new champion is not worse", one-sided,
at auto_rollback_alpha / K × ¼ (Bonferroni, with a quarter of each share for the bootstrap's small-sample
optimism: at most auto_rollback_alpha false rollbacks over the whole probation, as measured). Each look is
made once (UNIQUE per agent, version and look); a watch that runs late makes every due look in order, on the
same bars it would have used on time. A look with p below its α rolls back to the previous champion (a
`model_deployments` row `rollback`, its reason naming the test, p-value, bars and Sharpe difference) and
raises a critical `auto_rollback` alert. When the previous version is gone or was rejected by validation
there is nothing safe to restore: the look is recorded as `keep`, with why, and the alert still goes out.

Error rates (bench/rollback.py, daily bars, previous champion's Sharpe 1.0, return correlations 0.9, 0.5, 0).
Defaults (250-bar probation, auto_rollback_alpha 5 %: looks at 84, 167 and 250 bars, each at p < 0.0042; 300
simulated probations per cell): a new champion as good as the previous one is rolled back in 0.3–1.3 %; one
truly 1.0 Sharpe worse in 48 % at ρ = 0.9 (10–12 % at lower correlation); a Sharpe-3 champion's signal
inverted in 70 %, a Sharpe-1 one's in 14 %. At α = 1 % (1,000 per cell): 0.4–0.8 % false rollbacks on 60-bar
probations, 0.4–0.5 % on 250-bar ones, and an inverted Sharpe-3 champion caught in 12 % of 60-bar and 52 % of
250-bar probations. So the default probation is a year of daily bars and α is 5 %: a false rollback restores the
previous champion, which had passed the gate, while a broken champion left in place trades on. The watch is a
safety net for a broken promotion, not a judge of a slightly worse one: the gate and the weekly validation are
there for those, and a longer probation (or shorter bars) buys power.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mlops.agents.metrics import risk_free_per_bar
from mlops.agents.specs import get_spec
from mlops.agents.training import build_dataset
from mlops.audit import audited
from mlops.data.store import as_utc, load_bars
from mlops.db import session_scope
from mlops.db.models import ChampionLook, MarketBar, ModelDeployment, ModelPerformanceHistory
from mlops.logs import get_logger
from mlops.pipeline.champion import scored
from mlops.pipeline.deployments import CHAMPION, rollback
from mlops.pipeline.freshness import version_run
from mlops.pipeline.scoring import version_probabilities, version_recipe
from mlops.pipeline.watch_rule import SMALL_SAMPLE_SHARE, Look, LookTest, look_test, planned_looks
from mlops.settings import AGENTS, Settings

log = get_logger(__name__)
ACTION = "champion watch"
DECISIONS = ("rollback", "keep", "waiting", "not_on_probation", "no_champion")


@dataclass(frozen=True)
class WatchVerdict:
    agent_type: str
    champion: int | None
    previous: int | None
    decision: str  # one of DECISIONS
    reason: str
    look: int | None = None  # the newest look made (by this watch or an earlier one)
    p_value: float | None = None
    n_bars: int = 0  # probation bars available now
    required_bars: int | None = None  # bars the next look needs (waiting)
    difference: float | None = None  # annualised Sharpe, new − previous, at the newest look
    looks: list[dict[str, Any]] = field(default_factory=list)  # the looks this watch made


@dataclass(frozen=True)
class Probation:
    agent: str
    champion: int
    previous: int
    promoted_at: datetime
    looks: tuple[Look, ...]
    made: dict[int, ChampionLookRecord]  # look number → the look already made

    @property
    def pending(self) -> list[Look]:
        return [look for look in self.looks if look.number not in self.made]


@dataclass(frozen=True)
class ChampionLookRecord:
    look: int
    n_bars: int
    alpha: float
    p_value: float | None
    difference: float | None
    decision: str


def p_text(p: float | None) -> str:
    """A p-value as the reasons show it."""
    if p is None:
        return "n/a"
    return "< 0.0001" if p < 0.0001 else f"{p:.4f}"


def _newest_champion_row(session: Session, agent: str) -> ModelDeployment | None:
    return session.scalars(
        select(ModelDeployment)
        .where(ModelDeployment.agent_type == agent, ModelDeployment.alias == CHAMPION)
        .order_by(ModelDeployment.id.desc())
        .limit(1)
    ).first()


def _probation(session: Session, settings: Settings, agent: str) -> Probation | WatchVerdict:
    """The champion's probation, or the verdict saying why there is none (from the app DB alone)."""
    row = _newest_champion_row(session, agent)
    if row is None or row.action in ("retire", "clear", "undo-clear"):
        return WatchVerdict(agent, None, None, "no_champion", f"{agent} has no champion")
    champion = row.to_version
    if row.action != "promote":
        why = f"{agent} v{champion} became champion by {row.action} ({row.actor}), not by a promotion"
        return WatchVerdict(agent, champion, row.from_version, "not_on_probation", f"{why}: nothing new to watch")
    if row.from_version is None or row.from_version == champion:
        why = f"{agent} v{champion} replaced no other version: there is nothing to roll back to"
        return WatchVerdict(agent, champion, None, "not_on_probation", why)
    looks = planned_looks(settings.auto_rollback_max_bars, settings.auto_rollback_alpha)
    rows = session.scalars(
        select(ChampionLook).where(ChampionLook.agent_type == agent, ChampionLook.champion_version == champion)
    ).all()
    promoted = as_utc(row.created_at)
    for stale in [r for r in rows if r.decision == "rollback" and as_utc(r.created_at) > promoted]:
        # A rollback look newer than the promotion that still stands: the rollback never landed (its
        # watch was killed in between). Made again, or the champion would never be watched again.
        session.delete(stale)
    made = {
        r.look: ChampionLookRecord(r.look, r.n_bars, r.alpha, r.p_value, r.difference, r.decision)
        for r in rows
        if not (r.decision == "rollback" and as_utc(r.created_at) > promoted)
    }
    probation = Probation(agent, champion, row.from_version, row.created_at, looks, made)
    rolled = [m for m in made.values() if m.decision == "rollback"]
    if rolled:
        why = (
            f"{agent} v{champion} was rolled back at look {rolled[0].look} of its probation and promoted again "
            f"since ({row.actor}): its looks are spent, the promotion stands"
        )
        return WatchVerdict(agent, champion, row.from_version, "not_on_probation", why, look=rolled[0].look)
    if not probation.pending:
        last = made[looks[-1].number]
        why = f"{agent} v{champion} passed its probation: {len(looks)} looks made, none significant"
        return WatchVerdict(
            agent, champion, row.from_version, "not_on_probation", why, last.look, last.p_value, last.n_bars
        )
    return probation


def agents_on_probation(settings: Settings) -> list[str]:
    """Agents whose champion is on probation with looks still to make (app DB only: no MLflow, no bars)."""
    with session_scope(settings.app_db_url) as session:
        return [a for a in AGENTS if isinstance(_probation(session, settings, a), Probation)]


def _aware(ts: datetime | None) -> pd.Timestamp | None:
    return None if ts is None else pd.Timestamp(as_utc(ts))


def trained_through(session: Session, agent: str, version: int) -> tuple[str | None, pd.Timestamp | None]:
    """The symbol `version` was trained on and the newest bar its data held (its held-out window's end for
    runs that predate `data_end`; a later paper-trading window counts too: those bars chose it)."""
    run = version_run(session, agent, version)
    windows = dict(
        session.execute(
            select(ModelPerformanceHistory.window, func.max(ModelPerformanceHistory.window_end))
            .where(
                ModelPerformanceHistory.agent_type == agent,
                ModelPerformanceHistory.model_version == version,
                ModelPerformanceHistory.window.in_(("test", "paper")),
            )
            .group_by(ModelPerformanceHistory.window)
        ).all()
    )
    ends = [_aware(run.data_end if run else None) or _aware(windows.get("test")), _aware(windows.get("paper"))]
    known = [e for e in ends if e is not None]
    return (run.symbol if run else None), (max(known) if known else None)


@dataclass(frozen=True)
class ProbationBars:
    symbol: str
    after: pd.Timestamp
    periods_per_year: float
    new_returns: np.ndarray  # excess net returns per probation bar, in time order
    previous_returns: np.ndarray
    brier: tuple[np.ndarray, np.ndarray, np.ndarray] | None  # labels, new p, previous p (matching tails)
    index: pd.DatetimeIndex


def _probation_bars(settings: Settings, probation: Probation, symbol: str, after: pd.Timestamp) -> ProbationBars:
    """Both versions scored on the (at most max_bars) bars of `symbol` after `after` whose outcome is known."""
    spec = get_spec(probation.agent)
    new_recipe = version_recipe(settings, spec, probation.champion)
    old_recipe = version_recipe(settings, spec, probation.previous)
    data = build_dataset(
        load_bars(settings.app_db_url, symbol), spec, new_recipe.hyperparameters, fill=settings.execution_fill
    )
    rows = np.flatnonzero(data.features.index > after)[: probation.looks[-1].n_bars]
    cost = settings.cost_bps_for(symbol)
    rf = risk_free_per_bar(settings.risk_free_rate, data.periods_per_year)
    outputs = []
    for version, recipe in ((probation.champion, new_recipe), (probation.previous, old_recipe)):
        p = version_probabilities(settings, spec, version, data.features.iloc[rows]) if len(rows) else np.empty(0)
        outputs.append(scored(spec, recipe.hyperparameters, p, data, rows, cost, recipe.base_rate))
    new, old = outputs
    same_tails = spec.name == "risk_assessor" and new.tail_share == old.tail_share
    return ProbationBars(
        symbol,
        after,
        data.periods_per_year,
        new.returns - rf,
        old.returns - rf,
        (data.y[rows], new.p, old.p) if same_tails else None,
        pd.DatetimeIndex(data.features.index[rows]),
    )


def _first(
    brier: tuple[np.ndarray, np.ndarray, np.ndarray] | None, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    return None if brier is None else (brier[0][:n], brier[1][:n], brier[2][:n])


def watch_champion(settings: Settings, *, agent: str, actor: str) -> WatchVerdict:
    """Make the champion's due probation looks and roll it back if one is significant (audited as
    "champion watch"; a rollback it makes writes its own "rollback" audit row too)."""
    get_spec(agent)
    with audited(settings, actor=actor, action=ACTION, parameters={"agent": agent}) as audit:
        verdict = _watch(settings, agent=agent, actor=actor)
        audit.update(
            decision=verdict.decision,
            champion=verdict.champion,
            previous=verdict.previous,
            look=verdict.look,
            p_value=verdict.p_value,
            n_bars=verdict.n_bars,
            reason=verdict.reason,
        )
    log.info(
        "champion watch",
        agent_type=agent,
        model_version=verdict.champion,
        decision=verdict.decision,
        look=verdict.look,
        p_value=verdict.p_value,
    )
    return verdict


def _watch(settings: Settings, *, agent: str, actor: str) -> WatchVerdict:
    with session_scope(settings.app_db_url) as session:
        found = _probation(session, settings, agent)
        if isinstance(found, WatchVerdict):
            return found
        probation = found
        symbol, new_end = trained_through(session, agent, probation.champion)
        old_symbol, old_end = trained_through(session, agent, probation.previous)
    if symbol is None or new_end is None:
        why = f"{agent} v{probation.champion} has no record of its training data: its unseen bars are unknown"
        return WatchVerdict(agent, probation.champion, probation.previous, "not_on_probation", why)
    # The previous version's data counts only on the same market: another symbol's bars it never saw.
    after = max(new_end, old_end) if old_symbol == symbol and old_end is not None else new_end
    made: list[dict[str, Any]] = []
    latest = max(probation.made.values(), key=lambda m: m.look, default=None)
    newer = _bars_after(settings, symbol, after)
    if newer < probation.pending[0].n_bars:  # hourly watches wait for days: no model is loaded for that
        return _waiting(probation, probation.pending[0], newer, made, latest, after)
    bars = _probation_bars(settings, probation, symbol, after)
    for look in probation.pending:
        available = len(bars.new_returns)
        if available < look.n_bars:
            return _waiting(probation, look, available, made, latest, after)
        test = look_test(
            bars.new_returns[: look.n_bars],
            bars.previous_returns[: look.n_bars],
            bars.periods_per_year,
            settings,
            look,
            brier=_first(bars.brier, look.n_bars),
        )
        if test.p_value < look.alpha:
            return _roll_back(settings, probation, look, test, bars, made, actor)
        record = _record_look(settings, probation, look, test, "keep", {"bars_after": after.isoformat()})
        if record is None:
            continue  # another watch made this look meanwhile
        made.append(_look_summary(look, test, "keep"))
        latest = record
    if latest is None:  # every pending look was made by a watch running at the same time
        return _made_elsewhere(probation, probation.looks[-1])
    reason = (
        f"{agent} v{probation.champion} kept: look {latest.look} of {len(probation.looks)} on {latest.n_bars} bars "
        f"not significant (p {p_text(latest.p_value)} ≥ {latest.alpha:.4f}); probation over"
    )
    return WatchVerdict(
        agent,
        probation.champion,
        probation.previous,
        "keep",
        reason,
        latest.look,
        latest.p_value,
        len(bars.new_returns),
        difference=latest.difference,
        looks=made,
    )


def _bars_after(settings: Settings, symbol: str, after: pd.Timestamp) -> int:
    """Bars of `symbol` stamped after `after`: an upper bound of the probation bars (the newest lack an
    outcome yet), counted without loading a model."""
    with session_scope(settings.app_db_url) as session:
        count = session.scalar(
            select(func.count()).where(MarketBar.symbol == symbol, MarketBar.ts > after.to_pydatetime())
        )
    return int(count or 0)


def _look_summary(look: Look, test: LookTest, decision: str) -> dict[str, Any]:
    return {
        "look": look.number,
        "n_bars": look.n_bars,
        "alpha": look.alpha,
        "p_value": test.p_value,
        "difference": test.difference,
        "decision": decision,
    }


def _waiting(
    probation: Probation,
    look: Look,
    available: int,
    made: list[dict[str, Any]],
    latest: ChampionLookRecord | None,
    after: pd.Timestamp,
) -> WatchVerdict:
    agent, champion = probation.agent, probation.champion
    nxt = (
        f"look {look.number} of {len(probation.looks)} needs {look.n_bars} bars after "
        f"{after:%Y-%m-%d %H:%M}, have {available}"
    )
    if latest is None:
        return WatchVerdict(
            agent,
            champion,
            probation.previous,
            "waiting",
            f"{agent} v{champion} on probation against v{probation.previous}: {nxt}",
            n_bars=available,
            required_bars=look.n_bars,
            looks=made,
        )
    done = (
        f"look {latest.look} on {latest.n_bars} bars not significant (p {p_text(latest.p_value)} ≥ {latest.alpha:.4f})"
    )
    decision = "keep" if made else "waiting"
    return WatchVerdict(
        agent,
        champion,
        probation.previous,
        decision,
        f"{agent} v{champion} kept for now: {done}; {nxt}",
        latest.look,
        latest.p_value,
        available,
        look.n_bars,
        latest.difference,
        made,
    )


def _record_look(
    settings: Settings, probation: Probation, look: Look, test: LookTest, decision: str, details: dict[str, Any]
) -> ChampionLookRecord | None:
    """Claim look `look` of the champion with its result; None when another watch made it first."""
    try:
        with session_scope(settings.app_db_url) as session:
            session.add(
                ChampionLook(
                    agent_type=probation.agent,
                    champion_version=probation.champion,
                    previous_version=probation.previous,
                    look=look.number,
                    n_bars=look.n_bars,
                    alpha=look.alpha,
                    p_value=test.p_value,
                    difference=test.difference,
                    decision=decision,
                    details=test.details() | details,
                )
            )
    except IntegrityError:
        return None
    return ChampionLookRecord(look.number, look.n_bars, look.alpha, test.p_value, test.difference, decision)


def _unmake_look(settings: Settings, probation: Probation, look: Look) -> None:
    with session_scope(settings.app_db_url) as session:
        row = session.scalars(
            select(ChampionLook).where(
                ChampionLook.agent_type == probation.agent,
                ChampionLook.champion_version == probation.champion,
                ChampionLook.look == look.number,
            )
        ).first()
        if row is not None:
            session.delete(row)


def _rollback_target_problem(settings: Settings, agent: str, version: int) -> str | None:
    """Why `version` cannot be restored (gone from the registry, or rejected by validation), else None."""
    from tracking import registry

    info = registry.get_version(settings, agent, version)
    if info is None:
        return f"v{version} is no longer in the model registry"
    if info.tags.get("validation") == "rejected":
        return f"v{version} was rejected by validation ({info.tags.get('validation_reason') or 'see its run'})"
    return None


def _roll_back(
    settings: Settings,
    probation: Probation,
    look: Look,
    test: LookTest,
    bars: ProbationBars,
    made: list[dict[str, Any]],
    actor: str,
) -> WatchVerdict:
    from tracking import registry

    agent, new, old = probation.agent, probation.champion, probation.previous
    window = bars.index[: look.n_bars]
    what = "mean Brier score" if test.statistic == "brier" else "annualised Sharpe"
    evidence = (
        f"v{new} significantly worse than v{old} on {look.n_bars} {bars.symbol} bars after its data "
        f"({window[0]:%Y-%m-%d %H:%M} to {window[-1]:%Y-%m-%d %H:%M}): paired block bootstrap of {what}, "
        f"Sharpe v{new} {test.sharpe.b:+.2f} vs v{old} {test.sharpe.a:+.2f} (difference {test.difference:+.2f}), "
        f"one-sided p {p_text(test.p_value)} < {look.alpha:.4f} (look {look.number} of {look.count}, each at "
        f"auto_rollback_alpha {settings.auto_rollback_alpha:g} / {look.count} × {SMALL_SAMPLE_SHARE:g})"
    )
    if registry.alias_version(settings, agent, CHAMPION) != new:
        why = f"{agent} champion moved away from v{new} during the watch: nothing rolled back"
        return WatchVerdict(agent, new, old, "not_on_probation", why, n_bars=len(bars.new_returns), looks=made)
    problem = _rollback_target_problem(settings, agent, old)
    details = {"bars_after": bars.after.isoformat(), "window_start": str(window[0]), "window_end": str(window[-1])}
    if problem is not None:
        reason = f"auto-rollback not made: {evidence}; but {problem}: v{new} stays champion, a person must decide"
        if _record_look(settings, probation, look, test, "keep", details | {"rollback_refused": problem}) is None:
            return _made_elsewhere(probation, look)
        made.append(_look_summary(look, test, "keep"))
        _alert(settings, agent, reason, probation, look, test, rolled_back=False)
        return _verdict(probation, "keep", reason, look, test, bars, made)
    if _record_look(settings, probation, look, test, "rollback", details) is None:
        return _made_elsewhere(probation, look)
    reason = f"auto-rollback: {evidence}"
    try:
        rollback(settings, agent=agent, actor=actor, to_version=old, reason=reason)
    except BaseException:
        _unmake_look(settings, probation, look)  # the next watch makes it again
        raise
    made.append(_look_summary(look, test, "rollback"))
    _alert(settings, agent, reason, probation, look, test, rolled_back=True)
    return _verdict(probation, "rollback", reason, look, test, bars, made)


def _made_elsewhere(probation: Probation, look: Look) -> WatchVerdict:
    why = f"look {look.number} of {probation.agent} v{probation.champion} was made by another watch at the same time"
    return WatchVerdict(probation.agent, probation.champion, probation.previous, "keep", why, look.number)


def _verdict(
    probation: Probation,
    decision: str,
    reason: str,
    look: Look,
    test: LookTest,
    bars: ProbationBars,
    made: list[dict[str, Any]],
) -> WatchVerdict:
    return WatchVerdict(
        probation.agent,
        probation.champion,
        probation.previous,
        decision,
        reason,
        look.number,
        test.p_value,
        len(bars.new_returns),
        difference=test.difference,
        looks=made,
    )


def _alert(
    settings: Settings, agent: str, reason: str, probation: Probation, look: Look, test: LookTest, *, rolled_back: bool
) -> None:
    """The critical `auto_rollback` alert (raise_alert never raises and returns at once)."""
    try:
        from mlops.alerts import raise_alert
    except ImportError as exc:  # the alerts package missing from a partial install: the rollback stands
        log.error("auto_rollback alert not sent", agent_type=agent, error=str(exc))
        return
    what = f"rolled back to v{probation.previous}" if rolled_back else "NOT rolled back"
    raise_alert(
        settings,
        severity="critical",
        kind="auto_rollback",
        agent=agent,
        message=f"{agent} v{probation.champion} {what}: {reason}",
        details={
            "champion": probation.champion,
            "previous": probation.previous,
            "rolled_back": rolled_back,
            "look": look.number,
            "looks": look.count,
            "n_bars": look.n_bars,
            "alpha": look.alpha,
        }
        | test.details(),
        key=f"auto_rollback:{agent}:{probation.champion}",
    )
