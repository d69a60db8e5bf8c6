"""Bring an audit database to the newest schema with Alembic, from code: no alembic.ini anywhere.

``upgrade`` runs every pending revision inside one transaction, holding a lock so that replicas
starting together migrate one at a time (a PostgreSQL advisory lock; a file lock beside a
SQLite database). A database already at head costs one small query.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from tether.controller.audit.schema import VERSION_TABLE

MIGRATIONS = Path(__file__).parent / "migrations"
# pg_advisory_xact_lock key: the bytes of "tetherau" as a signed 64-bit integer, shared by every replica.
_PG_LOCK_KEY = int.from_bytes(b"tetherau", "big", signed=True)


def alembic_config(script_location: Path = MIGRATIONS) -> Config:
    """An in-memory Alembic configuration pointing at the migrations directory."""
    config = Config()
    config.set_main_option("script_location", str(script_location).replace("%", "%%"))
    return config


def head_revision(script_location: Path = MIGRATIONS) -> str | None:
    """The newest revision the migrations directory knows."""
    return ScriptDirectory.from_config(alembic_config(script_location)).get_current_head()


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at (``None`` before the first migration)."""
    return MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}).get_current_revision()


def upgrade(engine: Engine, script_location: Path = MIGRATIONS, *, lock_timeout: float = 30.0) -> None:
    """Apply every revision the database lacks, in one transaction, under the migration lock."""
    with _file_lock(engine, lock_timeout), engine.connect() as connection, connection.begin():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        if current_revision(connection) == head_revision(script_location):
            return
        config = alembic_config(script_location)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@contextmanager
def _file_lock(engine: Engine, timeout: float) -> Iterator[None]:
    """For a SQLite file, an exclusive lock on ``<database>.migrate.lock`` while migrating, waited
    for at most ``timeout`` seconds (``TimeoutError`` after that)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    lock_path = Path(database).with_name(Path(database).name + ".migrate.lock")
    with lock_path.open("a") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"another process holds {lock_path} (migrating the audit log)") from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
