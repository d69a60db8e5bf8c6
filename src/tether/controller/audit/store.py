"""The audit log itself: operations written to SQL and read back, off the event loop, with bounded waits.

SQLAlchemy runs synchronously in a small thread pool of the log's own (as many threads as pool
connections, so a call never waits for a connection held by a blocked call), and every call is
bounded twice: by the database's own timeouts and by ``asyncio.wait_for``. Every string is
passed through the redactor and cut to its column before it is written.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from alembic.util import CommandError
from sqlalchemy import Engine, Executable, Row, bindparam, delete, func, insert, select
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from tether.controller.audit import schema
from tether.controller.audit.database import (
    POOL_SIZE,
    AuditError,
    describe,
    display_url,
    is_memory,
    make_engine,
    parse_url,
)
from tether.controller.audit.entry import AuditEntry, AuditResource
from tether.controller.audit.migrate import current_revision, upgrade
from tether.errors import Reason
from tether.secrets import REDACTOR, Redactor

DEFAULT_TIMEOUT = 30.0
DEFAULT_FILE = "audit.db"
MAX_LIMIT = 10_000

T = TypeVar("T")


def default_url(state_dir: Path) -> str:
    """The embedded default: a SQLite file ``audit.db`` under Tether's state directory."""
    return f"sqlite:///{state_dir.expanduser().absolute() / DEFAULT_FILE}"


class AuditLog:
    """Every operation (automated or manual syncs, rollbacks, app deletions) with its per-resource results.

    Open with ``await AuditLog.open(url)``, which migrates the schema to the newest revision first.
    """

    def __init__(self, engine: Engine, url: URL, redactor: Redactor, timeout: float) -> None:
        self._engine = engine
        self._url = url
        self._redactor = redactor
        self._timeout = timeout
        workers = 1 if is_memory(url) else POOL_SIZE
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tether-audit")
        self._closed = False
        self._prepared: tuple[Executable, Executable, Executable] | None = None

    @classmethod
    async def open(cls, url: str, *, redactor: Redactor = REDACTOR, timeout: float = DEFAULT_TIMEOUT) -> AuditLog:
        """Connect to ``url`` (``sqlite:///PATH`` or ``postgresql://…``), migrate to head, and return the ready log.

        Every later call, and this one, gives up after ``timeout`` seconds with an ``AuditError``.
        """
        if not timeout > 0:
            raise AuditError(f"audit log timeout must be positive, got {timeout!r}", reason=Reason.INVALID_SPEC)
        parsed = parse_url(url)
        log = cls(make_engine(parsed, timeout=timeout), parsed, redactor, timeout)
        try:
            await log._call("migrate the schema", functools.partial(upgrade, log._engine, lock_timeout=timeout))
        except BaseException:
            await log.close()
            raise
        return log

    @property
    def url(self) -> str:
        """The database URL, with its password shown as ``***``."""
        return display_url(self._url)

    async def record(self, entry: AuditEntry) -> int:
        """Write ``entry`` and return its id. Recording an ``operation_id`` again updates that record in
        place (phase, finish, message, revisions) and replaces its resources, so a resumed operation
        appears once, with its final outcome."""
        self._check(entry)
        what = f"record operation {self._redactor.redact(entry.operation_id)!r} of app {self._redactor.redact(entry.app)!r}"
        return await self._call(what, functools.partial(self._record_sync, entry))

    async def entries(self, app: str | None = None, *, limit: int = 100) -> list[AuditEntry]:
        """The newest ``limit`` operations (of ``app`` when given), newest first, with their resources."""
        if not 1 <= limit <= MAX_LIMIT:
            raise AuditError(f"audit log: limit must be between 1 and {MAX_LIMIT}, got {limit}", reason=Reason.INVALID)
        key = self._key(app, schema.APP_LEN) if app is not None else None
        return await self._call("read operations", functools.partial(self._entries_sync, key, limit))

    async def prune(self, older_than: timedelta) -> int:
        """Delete the operations that ended (or, never ended, started) more than ``older_than`` ago; return how many."""
        if older_than < timedelta(0):
            raise AuditError(f"audit log: prune needs a positive age, got {older_than}", reason=Reason.INVALID)
        cutoff = datetime.now(UTC) - older_than
        return await self._call("prune operations", functools.partial(self._prune_sync, cutoff))

    async def revision(self) -> str | None:
        """The schema revision the database is at (Alembic's), for diagnostics."""

        def read() -> str | None:
            with self._engine.connect() as connection:
                return current_revision(connection)

        return await self._call("read the schema revision", read)

    async def close(self) -> None:
        """Close every pooled connection. Calls after this fail; closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
        try:
            await asyncio.wait_for(asyncio.to_thread(self._engine.dispose), self._timeout)
        except TimeoutError:
            pass

    async def __aenter__(self) -> AuditLog:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    # -- off the event loop ---------------------------------------------------------------------------

    def _record_sync(self, entry: AuditEntry) -> int:
        row = self._operation_row(entry)
        resource_rows = [self._resource_row(position, r) for position, r in enumerate(entry.resources)]
        with self._engine.begin() as connection:
            upsert, clear, add = self._statements(connection.dialect.name)
            pk: int = connection.execute(upsert, row).scalar_one()
            connection.execute(clear, {"pk": pk})
            if resource_rows:
                connection.execute(add, [{**r, "operation_pk": pk} for r in resource_rows])
        return pk

    def _statements(self, dialect: str) -> tuple[Executable, Executable, Executable]:
        """The three statements of a record, built once: values go in as parameters, so SQLAlchemy
        compiles each statement once instead of once per record (most of a record's cost)."""
        if self._prepared is None:
            operations, resources = schema.operations, schema.resources
            make_insert = postgres_insert if dialect == "postgresql" else sqlite_insert
            statement = make_insert(operations)
            columns = [c.name for c in operations.columns if c.name not in ("id", "operation_id")]
            upsert = statement.on_conflict_do_update(
                index_elements=[operations.c.operation_id],
                set_={name: statement.excluded[name] for name in columns},
            ).returning(operations.c.id)
            clear = delete(resources).where(resources.c.operation_pk == bindparam("pk"))
            self._prepared = (upsert, clear, insert(resources))
        return self._prepared

    def _entries_sync(self, app: str | None, limit: int) -> list[AuditEntry]:
        operations, resources = schema.operations, schema.resources
        query = select(operations).order_by(operations.c.started_at.desc(), operations.c.id.desc()).limit(limit)
        if app is not None:
            query = query.where(operations.c.app == app)
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
            ids = [row.id for row in rows]
            by_operation: dict[int, list[AuditResource]] = {pk: [] for pk in ids}
            for chunk in _chunks(ids, 500):
                found = connection.execute(
                    select(resources)
                    .where(resources.c.operation_pk.in_(chunk))
                    .order_by(resources.c.operation_pk, resources.c.position)
                )
                for r in found:
                    by_operation[r.operation_pk].append(_resource(r))
        return [_entry(row, by_operation[row.id]) for row in rows]

    def _prune_sync(self, cutoff: datetime) -> int:
        operations, resources = schema.operations, schema.resources
        ended = func.coalesce(operations.c.finished_at, operations.c.started_at)
        old = select(operations.c.id).where(ended < cutoff)
        with self._engine.begin() as connection:
            connection.execute(delete(resources).where(resources.c.operation_pk.in_(old)))
            removed = connection.execute(delete(operations).where(operations.c.id.in_(old)))
        return int(removed.rowcount or 0)

    async def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` in the log's threads, within the timeout, turning every database failure into an ``AuditError``."""
        if self._closed:
            raise AuditError(f"audit log {self.url}: cannot {what}: the log is closed", retryable=False)
        future = asyncio.get_running_loop().run_in_executor(self._executor, fn)
        try:
            return await asyncio.wait_for(future, self._timeout)
        except TimeoutError as err:
            waited = str(err) if future.done() and not future.cancelled() else f"no answer within {self._timeout:g} s"
            raise AuditError(
                f"audit log {self.url}: cannot {what}: {waited}",
                reason=Reason.TIMEOUT,
            ) from err
        except CommandError as err:
            raise AuditError(
                f"audit log {self.url}: cannot {what}: {describe(err, self._url, self._redactor)} "
                "(was the database written by a newer Tether?)",
                retryable=False,
            ) from None
        except (OperationalError, DBAPIError) as err:
            retryable = isinstance(err, OperationalError) or err.connection_invalidated
            raise AuditError(
                f"audit log {self.url}: cannot {what}: {describe(err, self._url, self._redactor)}",
                retryable=retryable,
            ) from None
        except OSError as err:
            raise AuditError(f"audit log {self.url}: cannot {what}: {err.strerror or err}", retryable=False) from None
        except SQLAlchemyError as err:
            raise AuditError(
                f"audit log {self.url}: cannot {what}: {describe(err, self._url, self._redactor)}",
                retryable=False,
            ) from None

    # -- bounding and masking -------------------------------------------------------------------------

    def _text(self, value: str, limit: int) -> str:
        return schema.bounded(self._redactor.redact(value), limit)

    def _key(self, value: str, limit: int) -> str:
        return schema.bounded_key(self._redactor.redact(value), limit)

    def _check(self, entry: AuditEntry) -> None:
        """Refuse an entry the log cannot store faithfully, naming the app, the operation and the field."""
        where = f"audit entry of app {self._redactor.redact(entry.app)!r}, operation {self._redactor.redact(entry.operation_id)!r}"
        if not entry.operation_id:
            raise AuditError(f"{where}: operation_id is empty", reason=Reason.INVALID, retryable=False)
        for field, stamp in (("started_at", entry.started_at), ("finished_at", entry.finished_at)):
            if stamp is not None and stamp.tzinfo is None:
                raise AuditError(f"{where}: {field} must be timezone-aware", reason=Reason.INVALID, retryable=False)

    def _operation_row(self, entry: AuditEntry) -> dict[str, Any]:
        return {
            "operation_id": self._key(entry.operation_id, schema.OPERATION_ID_LEN),
            "app": self._key(entry.app, schema.APP_LEN),
            "kind": self._text(entry.kind, schema.KIND_LEN),
            "initiated_by": self._text(entry.initiated_by, schema.INITIATED_BY_LEN),
            "automated": bool(entry.automated),
            "revisions": schema.join_revisions(tuple(self._redactor.redact(r) for r in entry.revisions)),
            "phase": self._text(entry.phase, schema.PHASE_LEN),
            "message": self._text(entry.message, schema.MESSAGE_LEN),
            "started_at": entry.started_at,
            "finished_at": entry.finished_at,
            "recorded_at": datetime.now(UTC),
        }

    def _resource_row(self, position: int, resource: AuditResource) -> dict[str, Any]:
        return {
            "position": position,
            "group": self._text(resource.group, schema.GROUP_LEN),
            "kind": self._text(resource.kind, schema.RESOURCE_KIND_LEN),
            "namespace": None if resource.namespace is None else self._text(resource.namespace, schema.NAMESPACE_LEN),
            "name": self._text(resource.name, schema.NAME_LEN),
            "action": self._text(resource.action, schema.ACTION_LEN),
            "status": self._text(resource.status, schema.STATUS_LEN),
            "message": self._text(resource.message, schema.RESOURCE_MESSAGE_LEN),
            "hook_phase": None
            if resource.hook_phase is None
            else self._text(resource.hook_phase, schema.HOOK_PHASE_LEN),
        }


def _resource(row: Row[Any]) -> AuditResource:
    return AuditResource(
        group=row.group,
        kind=row.kind,
        namespace=row.namespace,
        name=row.name,
        action=row.action,
        status=row.status,
        message=row.message,
        hook_phase=row.hook_phase,
    )


def _entry(row: Row[Any], resources: Sequence[AuditResource]) -> AuditEntry:
    return AuditEntry(
        app=row.app,
        operation_id=row.operation_id,
        kind=row.kind,
        initiated_by=row.initiated_by,
        automated=bool(row.automated),
        revisions=schema.split_revisions(row.revisions),
        phase=row.phase,
        message=row.message,
        started_at=row.started_at,
        finished_at=row.finished_at,
        resources=tuple(resources),
        id=row.id,
    )


def _chunks(items: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
