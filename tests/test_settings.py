from pathlib import Path

from mlops.settings import normalise_db_url, sibling_database
from tests.conftest import make_settings


def test_embedded_defaults_live_under_home(tmp_path: Path) -> None:
    s = make_settings(tmp_path / "h")
    assert s.app_db_url == f"sqlite:///{tmp_path / 'h' / 'skippy.db'}"
    assert s.tracking_uri == f"sqlite:///{tmp_path / 'h' / 'mlflow.db'}"
    assert s.optuna_storage == str(tmp_path / "h" / "optuna.journal")
    assert s.home.is_absolute()


def test_postgres_urls_are_pinned_to_psycopg2() -> None:
    assert normalise_db_url("postgresql://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert normalise_db_url("postgres://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert normalise_db_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert normalise_db_url("sqlite:///x.db") == "sqlite:///x.db"


def test_mlflow_and_optuna_get_their_own_postgres_databases(tmp_path: Path) -> None:
    s = make_settings(tmp_path, database_url="postgresql://app:pw@127.0.0.1:5432/skippy")
    assert s.app_db_url == "postgresql+psycopg2://app:pw@127.0.0.1:5432/skippy"
    assert s.tracking_uri == "postgresql+psycopg2://app:pw@127.0.0.1:5432/skippy_mlflow"
    assert s.optuna_storage == "postgresql+psycopg2://app:pw@127.0.0.1:5432/skippy_optuna"
    assert sibling_database("postgresql+psycopg2://h/x", "y").endswith("/x_y")


def test_environment_variables_are_read(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from mlops.settings import Settings

    monkeypatch.setenv("SKIPPY_HOME", str(tmp_path / "env-home"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "postgresql://x@h/ml")
    monkeypatch.setenv("SKIPPY_SYMBOL", "SPY")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.home == tmp_path / "env-home"
    assert s.tracking_uri == "postgresql+psycopg2://x@h/ml"
    assert s.symbol == "SPY"
