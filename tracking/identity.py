"""Which MLflow store an app database belongs to.

The app DB mirrors MLflow (runs, versions, aliases): pointed at another store, a command would register
orphan versions there and leave app rows naming runs that do not exist (seen: `mlflow run` without the
README's exports made a stray ./mlflow.db). So the first use of a store writes a random id into the store
itself (a tag of its Default experiment, which every MLflow store and server has) and records the store's
URL (password masked) and that id in the app DB; every process checks the pair once before its first
MLflow call, and a mismatch stops it with both URLs and the fix.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from mlops.db import session_scope
from mlops.db.models import StoreBinding
from mlops.errors import ConfigurationError
from mlops.settings import Settings

STORE_ID_TAG = "skippy.store_id"
DEFAULT_EXPERIMENT = "0"
_checked: set[tuple[str, str]] = set()
_lock = threading.Lock()


def masked(url: str) -> str:
    """`url` without its password, for messages and the app DB."""
    if url.startswith(("http://", "https://")):
        parts = urlsplit(url)
        host = parts.hostname or ""
        netloc = f"{parts.username}:***@{host}" if parts.password else parts.netloc
        if parts.port and parts.password:
            netloc += f":{parts.port}"
        return urlunsplit(parts._replace(netloc=netloc))
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def check_store_binding(settings: Settings, client: Any) -> None:
    """Bind the app DB to the MLflow store on first use, or raise ConfigurationError when the configured
    store is not the one the app DB belongs to. Checked once per process and pair of stores."""
    key = (settings.app_db_url, settings.tracking_uri)
    if key in _checked:
        return
    with _lock:
        if key in _checked:
            return
        store_id = client.get_experiment(DEFAULT_EXPERIMENT).tags.get(STORE_ID_TAG)
        with session_scope(settings.app_db_url) as session:
            bound = session.get(StoreBinding, "mlflow")
            bound_url, bound_id = (bound.url, bound.store_id) if bound else (None, None)
        if bound_id is None:
            if store_id is None:  # a new store: give it an id (a store shared by several app DBs keeps its own)
                store_id = uuid.uuid4().hex
                client.set_experiment_tag(DEFAULT_EXPERIMENT, STORE_ID_TAG, store_id)
            _record(settings, store_id)
        elif store_id != bound_id:
            raise ConfigurationError(
                f"the app database {masked(settings.app_db_url)} belongs to the MLflow store {bound_url} "
                f"(id {bound_id}), but the tracking URI is {masked(settings.tracking_uri)} "
                f"({'a store with no Skippy id' if store_id is None else f'id {store_id}'}): point "
                f"MLFLOW_TRACKING_URI at {bound_url}, or give the other store its own app database "
                "(SKIPPY_HOME or DATABASE_URL)"
            )
        _checked.add(key)


def _record(settings: Settings, store_id: str) -> None:
    try:
        with session_scope(settings.app_db_url) as session:
            session.add(StoreBinding(kind="mlflow", url=masked(settings.tracking_uri), store_id=store_id))
    except IntegrityError:  # another process bound it first: it must have bound the same store
        with session_scope(settings.app_db_url) as session:
            bound = session.get_one(StoreBinding, "mlflow")
            if bound.store_id != store_id:
                raise ConfigurationError(
                    f"the app database {masked(settings.app_db_url)} was just bound to another MLflow store "
                    f"({bound.url}); retry"
                ) from None
