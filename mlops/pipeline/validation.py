"""Validation before deployment: a candidate is compared with the current champion on the
candidate's held-out window; the first model must pass absolute minimums."""

from __future__ import annotations

from dataclasses import dataclass, field

from mlops.settings import Settings


@dataclass(frozen=True)
class ValidationDecision:
    passed: bool
    reason: str
    champion_version: int | None = None
    champion_metrics: dict[str, float] = field(default_factory=dict)
    checks: dict[str, dict[str, float | bool]] = field(default_factory=dict)


def _check(value: float, bound: float) -> dict[str, float | bool]:
    return {"value": value, "bound": bound, "passed": value >= bound}


def decide(
    candidate: dict[str, float],
    settings: Settings,
    champion: dict[str, float] | None = None,
    champion_version: int | None = None,
) -> ValidationDecision:
    """Candidate and champion metrics are both measured on the candidate's held-out test window.

    With a champion: Sharpe ≥ champion's − sharpe_tolerance and accuracy ≥ champion's −
    accuracy_tolerance. Without one: accuracy ≥ min_accuracy and Sharpe ≥ buy-and-hold's Sharpe
    on the same window − sharpe_tolerance (a model must not do worse than simply holding)."""
    if champion is None:
        checks = {
            "accuracy": _check(candidate["accuracy"], settings.min_accuracy),
            "sharpe_ratio": _check(
                candidate["sharpe_ratio"], candidate["buy_hold_sharpe_ratio"] - settings.sharpe_tolerance
            ),
        }
        against = "absolute minimums (no champion yet)"
    else:
        checks = {
            "accuracy": _check(candidate["accuracy"], champion["accuracy"] - settings.accuracy_tolerance),
            "sharpe_ratio": _check(candidate["sharpe_ratio"], champion["sharpe_ratio"] - settings.sharpe_tolerance),
        }
        against = f"champion v{champion_version} on the same held-out window"
    failed = [f"{name} {c['value']:.4f} < required {c['bound']:.4f}" for name, c in checks.items() if not c["passed"]]
    if failed:
        return ValidationDecision(
            False, f"worse than {against}: " + "; ".join(failed), champion_version, champion or {}, checks
        )
    summary = ", ".join(f"{name} {c['value']:.4f} ≥ {c['bound']:.4f}" for name, c in checks.items())
    return ValidationDecision(True, f"passed against {against}: {summary}", champion_version, champion or {}, checks)
