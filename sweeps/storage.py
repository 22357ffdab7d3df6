"""Optuna study storage from a settings value: a database URL (Postgres for workers on several
machines) or a journal file path (the embedded default: safe with several local worker processes,
unlike SQLite, which fails with "database is locked")."""

from __future__ import annotations

from typing import Any

from mlops.db.session import ensure_database


def is_journal(storage: str) -> bool:
    return "://" not in storage


_OPEN: dict[str, Any] = {}


def reset_after_fork() -> None:
    """In a forked child: open storages afresh, dropping (not closing) the parent's pooled connections."""
    for storage in _OPEN.values():
        backend = getattr(storage, "_backend", storage)  # Optuna's cache wraps the RDBStorage
        engine = getattr(backend, "engine", None)
        if engine is not None:
            engine.dispose(close=False)
    _OPEN.clear()


def open_storage(storage: str) -> Any:
    """The process's storage object for `storage` (one per URL: each holds a connection pool)."""
    if storage not in _OPEN:
        _OPEN[storage] = _open(storage)
    return _OPEN[storage]


def _open(storage: str) -> Any:
    import optuna
    from optuna.storages import JournalStorage, RDBStorage, get_storage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if is_journal(storage):
        return JournalStorage(JournalFileBackend(storage))
    ensure_database(storage)
    # get_storage wraps it in Optuna's cache exactly as load_study would, so that trials claimed through
    # this object and the Study built on it are one view of the storage.
    return get_storage(RDBStorage(storage, engine_kwargs={"pool_pre_ping": True}))


def dashboard_command(storage: str) -> str:
    """How to open the studies with Optuna's own tools."""
    return f"optuna-dashboard {storage}"


def cli_storage_args(storage: str) -> str:
    if is_journal(storage):
        return f"--storage {storage} --storage-class JournalFileBackend"
    return f"--storage {storage}"
