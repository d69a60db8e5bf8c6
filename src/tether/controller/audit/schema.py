"""The audit log's tables as SQLAlchemy Core sees them, and how values are bounded on their way in.

The migrations in ``migrations/versions`` create these tables; this module only describes them
for queries, so it must match the newest migration. Every string column has a length, and every
value written is cut to it (``bounded``), so one long tool message can never fail a write or
swell the database. Timestamps are stored in UTC and come back timezone-aware.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect

VERSION_TABLE = "tether_audit_version"
OPERATIONS = "tether_audit_operations"
RESOURCES = "tether_audit_resources"

# Column lengths, in characters. Kubernetes names are at most 253; messages are cut, keys hashed.
APP_LEN = 512
OPERATION_ID_LEN = 128
KIND_LEN = 32
INITIATED_BY_LEN = 256
REVISIONS_LEN = 4096
REVISION_LEN = 255
PHASE_LEN = 32
MESSAGE_LEN = 4096
GROUP_LEN = 253
RESOURCE_KIND_LEN = 128
NAMESPACE_LEN = 253
NAME_LEN = 253
ACTION_LEN = 64
STATUS_LEN = 64
RESOURCE_MESSAGE_LEN = 2048
HOOK_PHASE_LEN = 64

ELLIPSIS = "…"
REVISION_SEPARATOR = "\n"


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp written in UTC and read back timezone-aware, on SQLite (naive text) and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

operations = Table(
    OPERATIONS,
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("operation_id", String(OPERATION_ID_LEN), nullable=False, unique=True),
    Column("app", String(APP_LEN), nullable=False),
    Column("kind", String(KIND_LEN), nullable=False),
    Column("initiated_by", String(INITIATED_BY_LEN), nullable=False),
    Column("automated", Boolean, nullable=False),
    Column("revisions", String(REVISIONS_LEN), nullable=False),
    Column("phase", String(PHASE_LEN), nullable=False),
    Column("message", String(MESSAGE_LEN), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("recorded_at", UTCDateTime, nullable=False),
)

resources = Table(
    RESOURCES,
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("operation_pk", Integer, ForeignKey(f"{OPERATIONS}.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("group", String(GROUP_LEN), nullable=False),
    Column("kind", String(RESOURCE_KIND_LEN), nullable=False),
    Column("namespace", String(NAMESPACE_LEN), nullable=True),
    Column("name", String(NAME_LEN), nullable=False),
    Column("action", String(ACTION_LEN), nullable=False),
    Column("status", String(STATUS_LEN), nullable=False),
    Column("message", String(RESOURCE_MESSAGE_LEN), nullable=False),
    Column("hook_phase", String(HOOK_PHASE_LEN), nullable=True),
)


def clean(text: str) -> str:
    """``text`` without NUL characters, which PostgreSQL refuses in text columns."""
    return text.replace("\x00", "\\0")


def bounded(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, ending in ``…`` when something was cut."""
    text = clean(text)
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def bounded_key(text: str, limit: int) -> str:
    """A lookup key cut to ``limit`` characters without losing its identity: a long key keeps a
    prefix and a hash of the whole, so two long keys sharing a prefix stay distinct."""
    text = clean(text)
    if len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return f"{text[: limit - 17]}~{digest}"


def join_revisions(revisions: tuple[str, ...]) -> str:
    """The revisions as one bounded column: each cut to ``REVISION_LEN``, as many as fit, in order."""
    kept: list[str] = []
    size = 0
    for revision in revisions:
        part = bounded(revision.replace(REVISION_SEPARATOR, " "), REVISION_LEN)
        size += len(part) + (1 if kept else 0)
        if size > REVISIONS_LEN:
            break
        kept.append(part)
    return REVISION_SEPARATOR.join(kept)


def split_revisions(text: str) -> tuple[str, ...]:
    return tuple(text.split(REVISION_SEPARATOR)) if text else ()
