"""Which MLflow store an app database belongs to (the generic check is mlops/db/bindings.py).

The id lives in the store itself as a tag of its Default experiment, which every MLflow store and server
has, local or remote: the binding follows the store, not its URL (`http://localhost:5001` and
`http://127.0.0.1:5001` are one server; two SQLite files at one path over time are two stores)."""

from __future__ import annotations

from typing import Any

from mlops.db.bindings import BoundStore, check_binding, masked
from mlops.settings import Settings

STORE_ID_TAG = "skippy.store_id"
DEFAULT_EXPERIMENT = "0"

__all__ = ["STORE_ID_TAG", "check_store_binding", "masked"]


def check_store_binding(settings: Settings, client: Any) -> None:
    """Bind the app DB to the MLflow store on first use, or raise ConfigurationError when the configured
    store is not the one the app DB belongs to. Checked once per process and pair of stores."""

    def read_id() -> str | None:
        tag = client.get_experiment(DEFAULT_EXPERIMENT).tags.get(STORE_ID_TAG)
        return str(tag) if tag else None

    def write_id(store_id: str) -> None:
        client.set_experiment_tag(DEFAULT_EXPERIMENT, STORE_ID_TAG, store_id)

    store = BoundStore(
        kind="mlflow",
        label="MLflow store",
        setting="MLFLOW_TRACKING_URI",
        url=settings.tracking_uri,
        read_id=read_id,
        write_id=write_id,
    )
    check_binding(settings.app_db_url, store)
