"""Alembic's entry point for the audit log: migrate the connection ``AuditLog.open`` hands over.

``tether.controller.audit.migrate`` passes an open connection in ``config.attributes``; the
migration then runs inside the caller's transaction (and its lock). Run by hand with a
``sqlalchemy.url`` option set, it opens its own connection instead.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from tether.controller.audit.schema import VERSION_TABLE, metadata


def _migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def _run() -> None:
    given = context.config.attributes.get("connection")
    if given is not None:
        _migrate(given)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set the sqlalchemy.url option (or pass a connection) to migrate the audit log")
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            _migrate(connection)
    finally:
        engine.dispose()


_run()
