"""Market-data use cases: import bars (file or API rows) and generate the synthetic market, each
audited ("bars import", "bars generate") the same whichever caller ran it."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from mlops.audit import audited
from mlops.data import store
from mlops.data.store import ImportResult
from mlops.settings import Settings


def _counts(result: ImportResult) -> dict[str, Any]:
    return {k: v for k, v in asdict(result).items() if isinstance(v, int | str)}


def import_bars_file(settings: Settings, *, actor: str, path: Path, symbol: str) -> ImportResult:
    """Validate a CSV/Parquet export and store its bars under `symbol` (all or nothing)."""
    parameters = {"symbol": symbol, "source": "file", "path": str(path)}
    with audited(settings, actor=actor, action="bars import", parameters=parameters) as audit:
        result = store.import_bars_file(settings.app_db_url, path, symbol)
        audit.update(_counts(result))
    return result


def import_bars_rows(
    settings: Settings, *, actor: str, symbol: str, rows: list[dict[str, Any]], source: str
) -> ImportResult:
    """Validate bars given as records and store them (all or nothing); the rows are audited by count."""
    parameters = {"symbol": symbol, "source": source, "rows": len(rows)}
    with audited(settings, actor=actor, action="bars import", parameters=parameters) as audit:
        result = store.import_bars_rows(settings.app_db_url, symbol, rows, source=source)
        audit.update(_counts(result))
    return result


def generate_bars(settings: Settings, *, actor: str, **options: Any) -> ImportResult:
    """The seeded synthetic market (or bars appended in one regime, to make drift happen on purpose)."""
    from mlops.data.generate import generate_market

    with audited(settings, actor=actor, action="bars generate", parameters=dict(options)) as audit:
        result = generate_market(settings, **options)
        audit.update(_counts(result))
    return result
