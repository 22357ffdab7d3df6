"""The app database: models, engine/session management and migrations."""

from mlops.db.session import create_db_engine, session_scope, upgrade_database

__all__ = ["create_db_engine", "session_scope", "upgrade_database"]
