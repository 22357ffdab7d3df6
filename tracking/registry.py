"""The MLflow model registry: one registered model per agent, versions, and the aliases
`champion` (deployed) and `challenger` (validated, waiting for promotion)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mlops.settings import Settings
from tracking.client import get_client

CHAMPION, CHALLENGER = "champion", "challenger"


@dataclass(frozen=True)
class VersionInfo:
    name: str
    version: int
    run_id: str | None
    source: str
    aliases: tuple[str, ...]
    created_at: datetime
    tags: dict[str, str] = field(default_factory=dict)


def _info(mv: Any) -> VersionInfo:
    return VersionInfo(
        name=mv.name,
        version=int(mv.version),
        run_id=mv.run_id,
        source=mv.source,
        aliases=tuple(mv.aliases or ()),
        created_at=datetime.fromtimestamp(mv.creation_timestamp / 1000, tz=UTC),
        tags=dict(mv.tags or {}),
    )


def register_version(
    settings: Settings, name: str, model_uri: str, run_id: str, tags: dict[str, str], description: str = ""
) -> int:
    from mlflow.exceptions import MlflowException

    client = get_client(settings)
    try:
        client.create_registered_model(name, description=f"Skippy agent {name}")
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    mv = client.create_model_version(
        name, source=model_uri, run_id=run_id, tags=tags, description=description, model_id=logged_model_id(model_uri)
    )
    return int(mv.version)


def logged_model_id(model_uri: str) -> str | None:
    """The logged model's id in `models:/<model_id>` (what log_pyfunc_model returns), else None.

    A tracking server accepts a `models:/` source only with the model_id that contains it ("The model_id
    request parameter must identify the resource that contains the source"); a local store does not check.
    """
    if not model_uri.startswith("models:/"):
        return None
    rest = model_uri.removeprefix("models:/")
    # models:/<name>/<version> and models:/<name>@<alias> name registry versions, not logged models.
    return rest if rest and "/" not in rest and "@" not in rest else None


def alias_version(settings: Settings, name: str, alias: str) -> int | None:
    """The version that `alias` points to, or None when the alias (or the model) does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return int(get_client(settings).get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def get_version(settings: Settings, name: str, version: int) -> VersionInfo | None:
    from mlflow.exceptions import MlflowException

    try:
        return _info(get_client(settings).get_model_version(name, str(version)))
    except MlflowException:
        return None


def set_alias(settings: Settings, name: str, alias: str, version: int) -> None:
    get_client(settings).set_registered_model_alias(name, alias, str(version))


def delete_alias(settings: Settings, name: str, alias: str) -> None:
    from mlflow.exceptions import MlflowException

    with contextlib.suppress(MlflowException):
        get_client(settings).delete_registered_model_alias(name, alias)


def set_version_tags(settings: Settings, name: str, version: int, tags: dict[str, str]) -> None:
    client = get_client(settings)
    for key, value in tags.items():
        client.set_model_version_tag(name, str(version), key, value)


def list_versions(settings: Settings, name: str, limit: int = 20) -> list[VersionInfo]:
    """Newest first."""
    client = get_client(settings)
    versions = client.search_model_versions(f"name = '{name}'", max_results=limit, order_by=["version_number DESC"])
    return [_info(mv) for mv in versions]


_loaded: dict[tuple[str, str, int], Any] = {}


def load_version(settings: Settings, name: str, version: int) -> Any:
    """The pyfunc model of a version (cached per process: versions are immutable)."""
    import mlflow.pyfunc

    key = (settings.tracking_uri, name, version)
    if key not in _loaded:
        get_client(settings)  # points MLflow's default client at our store
        config = {"model_key": settings.model_key_value} if settings.model_key else None
        _loaded[key] = mlflow.pyfunc.load_model(f"models:/{name}/{version}", model_config=config)
    return _loaded[key]
