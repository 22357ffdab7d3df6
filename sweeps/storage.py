"""Optuna study storage from a settings value: a database URL (Postgres for workers on several
machines) or a journal file path (the embedded default: safe with several local worker processes,
unlike SQLite, which fails with "database is locked").

The app DB records which storage it belongs to (mlops/db/bindings.py): the id lives in the storage as a
user attribute of a study of its own, `skippy.storage` (no trials), the one place every Optuna backend
(RDB, journal) keeps a value that Optuna's tools show."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy.exc import IntegrityError, ProgrammingError

from mlops.db.bindings import BoundStore, check_binding, masked
from mlops.db.session import ensure_database
from mlops.settings import Settings

ID_STUDY = "skippy.storage"
ID_ATTR = "skippy.store_id"


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


def bound_storage(settings: Settings) -> Any:
    """The process's storage object for SKIPPY_OPTUNA_STORAGE, once the app DB is known to belong to it
    (bound on first use; ConfigurationError naming both storages when it belongs to another)."""
    storage = open_storage(settings.optuna_storage)
    check_storage_binding(settings, storage)
    return storage


def check_storage_binding(settings: Settings, storage: Any) -> None:
    """Bind the app DB to the Optuna storage `storage` (opened on settings.optuna_storage) on first use, or
    raise ConfigurationError when it is not the one the app DB belongs to."""

    def read_id() -> str | None:
        try:
            study_id = storage.get_study_id_from_name(ID_STUDY)
        except KeyError:
            return None
        value = storage.get_study_user_attrs(study_id).get(ID_ATTR)
        return str(value) if value else None

    def write_id(store_id: str) -> None:
        from optuna.exceptions import DuplicatedStudyError
        from optuna.study import StudyDirection

        try:
            study_id = storage.create_new_study([StudyDirection.MINIMIZE], ID_STUDY)
            storage.set_study_user_attr(study_id, "purpose", "the id Skippy's app database knows this storage by")
        except DuplicatedStudyError:
            study_id = storage.get_study_id_from_name(ID_STUDY)
        storage.set_study_user_attr(study_id, ID_ATTR, store_id)

    store = BoundStore(
        kind="optuna",
        label="Optuna storage",
        setting="SKIPPY_OPTUNA_STORAGE",
        url=settings.optuna_storage,
        read_id=read_id,
        write_id=write_id,
    )
    check_binding(settings.app_db_url, store)


def open_storage(storage: str) -> Any:
    """The process's storage object for `storage` (one per URL: each holds a connection pool). Unchecked:
    commands that write sweeps use bound_storage."""
    if storage not in _OPEN:
        _OPEN[storage] = _open(storage)
    return _OPEN[storage]


def _open(storage: str) -> Any:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if is_journal(storage):
        return JournalStorage(JournalFileBackend(storage))
    # Processes opening a new Postgres storage at once race to create its database, then its tables and
    # enum types: the losers fail on a duplicate, and find it all there when they try again.
    for delay in (0.1, 0.2):
        try:
            return _open_rdb(storage)
        except (IntegrityError, ProgrammingError):
            time.sleep(delay)
    return _open_rdb(storage)


def _open_rdb(storage: str) -> Any:
    from optuna.storages import RDBStorage, get_storage

    ensure_database(storage)
    # get_storage wraps it in Optuna's cache exactly as load_study would, so that trials claimed through
    # this object and the Study built on it are one view of the storage.
    return get_storage(RDBStorage(storage, engine_kwargs={"pool_pre_ping": True}))


def dashboard_command(storage: str) -> str:
    """How to open the studies with Optuna's own tools (a password in the URL is shown as ***: put it
    back to run the command)."""
    return f"optuna-dashboard {masked(storage)}"


def cli_storage_args(storage: str) -> str:
    """The `--storage` arguments of Optuna's CLI for `storage` (password shown as ***)."""
    if is_journal(storage):
        return f"--storage {storage} --storage-class JournalFileBackend"
    return f"--storage {masked(storage)}"
