"""Which external stores an app database belongs to: the MLflow store and the Optuna storage.

The app DB mirrors both (runs, versions and aliases; sweeps and their trials): pointed at another store, a
command would write orphans there and leave app rows naming runs or studies that do not exist (seen:
`mlflow run` without the README's exports made a stray ./mlflow.db). So the first use of a store writes a
random id into the store itself and records the store's URL (password masked) and that id in the app DB
(`store_bindings`, one row per kind); every process checks the pair once before it first uses the store,
and a mismatch stops it with both URLs and the fix.

The store side is given as two callables (read the id, write an id), so that this module knows neither
MLflow nor Optuna: tracking/identity.py and sweeps/storage.py bind their stores through it.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from mlops.db.models import StoreBinding
from mlops.db.session import session_scope
from mlops.errors import ConfigurationError


@dataclass(frozen=True)
class BoundStore:
    """One external store as the binding check sees it.

    `read_id` returns the id written into the store, or None when it has none; `write_id` writes one,
    replacing any (both stores keep it as a plain value, so the app DB serialises the first writes)."""

    kind: str  # the `store_bindings` key: "mlflow" | "optuna"
    label: str  # for messages: "MLflow store", "Optuna storage"
    setting: str  # the environment variable that points at it
    url: str  # as configured (may carry a password: never shown, never stored)
    read_id: Callable[[], str | None]
    write_id: Callable[[str], None]


def masked(url: str) -> str:
    """`url` without its password, for messages and the app DB."""
    if "://" not in url:  # a file path (an Optuna journal)
        return url
    if url.startswith(("http://", "https://")):
        parts = urlsplit(url)
        if parts.password is None:
            return url
        userinfo, _, host = parts.netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


_checked: set[tuple[str, str, str]] = set()
_lock = threading.Lock()


def check_binding(app_db_url: str, store: BoundStore) -> None:
    """Bind the app DB to `store` on first use, or raise ConfigurationError when `store` is not the one
    the app DB belongs to. Checked once per process, app DB and store URL."""
    key = (app_db_url, store.kind, store.url)
    if key in _checked:
        return
    with _lock:
        if key in _checked:
            return
        # The app DB first: a binding committed by then was written into the store before its commit.
        bound = _bound(app_db_url, store.kind)
        store_id = store.read_id()
        if bound is None:
            _bind(app_db_url, store, store_id)
        elif store_id != bound[1]:
            raise _mismatch(app_db_url, store, bound, store_id)
        _checked.add(key)


def _bound(app_db_url: str, kind: str) -> tuple[str, str] | None:
    """The (masked URL, id) the app DB is bound to for `kind`, or None."""
    with session_scope(app_db_url) as session:
        row = session.get(StoreBinding, kind)
        return (row.url, row.store_id) if row else None


def _bind(app_db_url: str, store: BoundStore, store_id: str | None) -> None:
    """First use of this app DB with a store of this kind. A store that already has an id keeps it (a
    store shared by several app DBs); a new one gets a fresh id.

    The app DB's row is the arbiter when several processes bind at once, and a new store's id is written
    while the row's insert is still uncommitted: a concurrent first use waits on the row's key, then
    fails on it, by which time the store holds the winner's id; losers never write into the store. A
    crash before the commit leaves at worst an id in the store, which the next first use adopts."""
    candidate = store_id or uuid.uuid4().hex
    try:
        with session_scope(app_db_url) as session:
            session.add(StoreBinding(kind=store.kind, url=masked(store.url), store_id=candidate))
            session.flush()
            if store_id is None:
                store.write_id(candidate)
        return
    except IntegrityError:
        bound = _bound(app_db_url, store.kind)
        if bound is None:
            raise
    found = store.read_id()
    if found != bound[1]:
        raise _mismatch(app_db_url, store, bound, found)


def _mismatch(app_db_url: str, store: BoundStore, bound: tuple[str, str], store_id: str | None) -> ConfigurationError:
    bound_url, bound_id = bound
    found = "a store with no Skippy id" if store_id is None else f"id {store_id}"
    return ConfigurationError(
        f"the app database {masked(app_db_url)} belongs to the {store.label} {bound_url} (id {bound_id}), but "
        f"{store.setting} is {masked(store.url)} ({found}): point {store.setting} at {bound_url}, or give the "
        "other store its own app database (SKIPPY_HOME or DATABASE_URL)"
    )
