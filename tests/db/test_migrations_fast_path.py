"""Every entry point brings the app DB to the head revision (mlops.stores.init_stores). A database already
there is recognised from the migration files and its alembic_version row, without loading Alembic; one
behind is migrated by Alembic as before."""

from __future__ import annotations

import subprocess
import sys

from alembic import command
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from mlops.db import create_db_engine, upgrade_database
from mlops.db.session import alembic_config, head_revision


def test_the_head_read_from_the_migration_files_is_alembic_s(db_url: str) -> None:
    assert head_revision() == ScriptDirectory.from_config(alembic_config(db_url)).get_current_head()


def test_a_database_at_head_is_not_migrated_and_alembic_is_not_loaded(db_url: str) -> None:
    code = (
        "import sys; from mlops.db import upgrade_database; "
        f"print(upgrade_database({db_url!r}), 'alembic' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == [head_revision(), "False"]


def test_a_database_behind_head_is_migrated_by_alembic(db_url: str) -> None:
    head = head_revision()
    with create_db_engine(db_url).begin() as conn:
        config = alembic_config(db_url)
        config.attributes["connection"] = conn
        command.downgrade(config, "-1")
    with create_db_engine(db_url).connect() as conn:
        behind = MigrationContext.configure(conn).get_current_revision()
    assert behind is not None and behind != head
    assert upgrade_database(db_url) == head
