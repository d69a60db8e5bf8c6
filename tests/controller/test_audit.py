"""The audit log against real databases: a SQLite file and a real PostgreSQL server, the same tests on both.

Each test gets an empty database of its own (a file under ``tmp_path``, or a fresh database on the
session's PostgreSQL server), so "migrations create the schema" starts from nothing.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from tether.controller.audit import AuditEntry, AuditError, AuditLog, AuditResource, default_url, schema
from tether.controller.audit.database import make_engine, parse_url
from tether.controller.audit.migrate import MIGRATIONS, current_revision, head_revision, upgrade
from tether.errors import Reason, TetherError
from tether.secrets import MASK, Redactor

BACKENDS = ["sqlite", "postgresql"]
T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a SQLite file under a not-yet-existing state dir, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return default_url(tmp_path / "state")
    return str(request.getfixturevalue("postgres_database_url"))


def _entry(
    operation_id: str,
    *,
    app: str = "tether-system/guestbook",
    started_at: datetime = T0,
    phase: str = "Succeeded",
    resources: tuple[AuditResource, ...] = (),
    **overrides: object,
) -> AuditEntry:
    fields: dict[str, object] = {
        "app": app,
        "operation_id": operation_id,
        "kind": "sync",
        "initiated_by": "automated",
        "automated": True,
        "revisions": ("0f1e2d3c4b5a69788796a5b4c3d2e1f001234567",),
        "phase": phase,
        "message": "successfully synced (all tasks run)",
        "started_at": started_at,
        "finished_at": started_at + timedelta(seconds=7),
        "resources": resources,
    }
    fields.update(overrides)
    return AuditEntry(**fields)  # type: ignore[arg-type]


DEPLOYMENT = AuditResource(
    "apps", "Deployment", "guestbook", "web", "configured", "Synced", "deployment.apps/web configured"
)
NAMESPACE = AuditResource("", "Namespace", None, "guestbook", "unchanged", "Synced")
HOOK = AuditResource("batch", "Job", "guestbook", "migrate", "hook", "Succeeded", "job completed", hook_phase="PreSync")


def _engine(url: str) -> sa.Engine:
    return make_engine(parse_url(url), timeout=10)


def _dump(url: str) -> str:
    """Every row of every audit table, as text, read with plain SQL."""
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            lines = []
            for table in (schema.OPERATIONS, schema.RESOURCES, schema.VERSION_TABLE):
                for row in conn.execute(sa.text(f"SELECT * FROM {table}")):
                    lines.append(repr(tuple(row)))
            return "\n".join(lines)
    finally:
        engine.dispose()


async def test_migrations_create_the_schema(db_url: str) -> None:
    async with await AuditLog.open(db_url) as log:
        assert await log.revision() == head_revision() == "0001"
    engine = _engine(db_url)
    try:
        inspector = sa.inspect(engine)
        tables = set(inspector.get_table_names())
        assert {schema.OPERATIONS, schema.RESOURCES, schema.VERSION_TABLE} <= tables
        columns = {c["name"] for c in inspector.get_columns(schema.OPERATIONS)}
        assert columns == {c.name for c in schema.operations.columns}
        assert {c["name"] for c in inspector.get_columns(schema.RESOURCES)} == {
            c.name for c in schema.resources.columns
        }
        with engine.connect() as conn:
            assert current_revision(conn) == "0001"
            if engine.dialect.name == "sqlite":
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        engine.dispose()


async def test_default_url_is_a_sqlite_file_under_the_state_dir(tmp_path: Path) -> None:
    state = tmp_path / "state" / "nested"
    url = default_url(state)
    assert url == f"sqlite:///{state / 'audit.db'}"
    async with await AuditLog.open(url):
        pass
    assert (state / "audit.db").is_file()


async def test_record_and_read_back_with_resources(db_url: str) -> None:
    cest = timezone(timedelta(hours=2))
    entry = _entry(
        "op-1",
        kind="rollback",
        initiated_by="alice",
        automated=False,
        revisions=("abc123", "v1.2.3"),
        started_at=T0.astimezone(cest),
        finished_at=None,
        phase="Running",
        message="rolling back to history id 3",
        resources=(NAMESPACE, DEPLOYMENT, HOOK),
    )
    async with await AuditLog.open(db_url) as log:
        pk = await log.record(entry)
        (got,) = await log.entries()
    assert got.id == pk
    assert got.started_at == T0 and got.started_at.tzinfo == UTC
    assert got == AuditEntry(
        app="tether-system/guestbook",
        operation_id="op-1",
        kind="rollback",
        initiated_by="alice",
        automated=False,
        revisions=("abc123", "v1.2.3"),
        phase="Running",
        message="rolling back to history id 3",
        started_at=T0,
        finished_at=None,
        resources=(NAMESPACE, DEPLOYMENT, HOOK),
        id=pk,
    )


async def test_newest_first_and_filtered_by_app(db_url: str) -> None:
    async with await AuditLog.open(db_url) as log:
        # Recorded out of order: the log orders by when the operation started, not when it was written.
        await log.record(_entry("b", app="ns/one", started_at=T0 + timedelta(minutes=2), resources=(DEPLOYMENT,)))
        await log.record(_entry("a", app="ns/one", started_at=T0))
        await log.record(_entry("c", app="ns/two", started_at=T0 + timedelta(minutes=5), kind="delete"))
        await log.record(_entry("d", app="ns/one", started_at=T0 + timedelta(minutes=1), resources=(HOOK, NAMESPACE)))
        assert [e.operation_id for e in await log.entries()] == ["c", "b", "d", "a"]
        one = await log.entries("ns/one")
        assert [e.operation_id for e in one] == ["b", "d", "a"]
        assert [e.resources for e in one] == [(DEPLOYMENT,), (HOOK, NAMESPACE), ()]
        assert [e.operation_id for e in await log.entries("ns/two")] == ["c"]
        assert await log.entries("ns/three") == []
        assert [e.operation_id for e in await log.entries(limit=2)] == ["c", "b"]
        with pytest.raises(AuditError, match="limit"):
            await log.entries(limit=0)


async def test_recording_an_operation_again_updates_it(db_url: str) -> None:
    async with await AuditLog.open(db_url) as log:
        running = _entry(
            "run-7", phase="Running", finished_at=None, message="waiting for wave 1", resources=(HOOK, DEPLOYMENT)
        )
        first = await log.record(running)
        await log.record(_entry("other", started_at=T0 - timedelta(hours=1), resources=(NAMESPACE,)))
        done = _entry(
            "run-7",
            phase="Failed",
            message="one or more objects failed to apply",
            finished_at=T0 + timedelta(minutes=3),
            resources=(AuditResource("apps", "Deployment", "guestbook", "web", "failed", "SyncFailed", "invalid"),),
        )
        assert await log.record(done) == first
        assert await log.record(done) == first  # and again: still one record
        entries = await log.entries()
        assert [e.operation_id for e in entries] == ["run-7", "other"]
        assert entries[0] == AuditEntry(**{**done.__dict__, "id": first})
        assert entries[1].resources == (NAMESPACE,)  # another operation's resources are untouched
    engine = _engine(db_url)
    try:
        with engine.connect() as conn:
            count = conn.execute(sa.select(sa.func.count()).select_from(schema.resources)).scalar_one()
    finally:
        engine.dispose()
    assert count == 2  # the replaced resources are gone, not orphaned


async def test_concurrent_records_and_replicas(db_url: str) -> None:
    # Two replicas open the same empty database at once: one migrates, the other waits and finds it done.
    first, second = await asyncio.gather(AuditLog.open(db_url), AuditLog.open(db_url))
    try:
        await asyncio.gather(
            *(
                (first if i % 2 else second).record(
                    _entry(f"op-{i}", started_at=T0 + timedelta(seconds=i), resources=(DEPLOYMENT,))
                )
                for i in range(20)
            ),
            *(first.record(_entry("same", started_at=T0 - timedelta(days=1))) for _ in range(5)),
            *(second.record(_entry("same", started_at=T0 - timedelta(days=1))) for _ in range(5)),
        )
        entries = await second.entries(limit=1000)
        assert [e.operation_id for e in entries] == [f"op-{i}" for i in reversed(range(20))] + ["same"]
        assert all(e.resources == (DEPLOYMENT,) for e in entries[:20])
    finally:
        await first.close()
        await second.close()


async def test_reopening_a_database_at_head(db_url: str) -> None:
    async with await AuditLog.open(db_url) as log:
        pk = await log.record(_entry("kept", resources=(DEPLOYMENT,)))
    async with await AuditLog.open(db_url) as log:
        assert await log.revision() == head_revision()
        (entry,) = await log.entries()
        assert (entry.id, entry.operation_id, entry.resources) == (pk, "kept", (DEPLOYMENT,))
        assert await log.record(_entry("next")) != pk
    engine = _engine(db_url)
    try:
        with engine.connect() as conn:
            versions = conn.execute(sa.text(f"SELECT version_num FROM {schema.VERSION_TABLE}")).scalars().all()
    finally:
        engine.dispose()
    assert versions == ["0001"]


LATER_REVISION = '''"""A later revision, as a future Tether would ship it."""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tether_audit_operations", sa.Column("note", sa.String(64), nullable=True))


def downgrade() -> None:
    op.drop_column("tether_audit_operations", "note")
'''


async def test_a_later_revision_applies_and_an_unknown_one_is_refused(db_url: str, tmp_path: Path) -> None:
    async with await AuditLog.open(db_url) as log:
        await log.record(_entry("before-0002", resources=(HOOK,)))
    later = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, later, ignore=shutil.ignore_patterns("__pycache__"))
    (later / "versions" / "0002_note.py").write_text(LATER_REVISION)
    assert head_revision(later) == "0002"

    engine = _engine(db_url)
    try:
        await asyncio.to_thread(upgrade, engine, later)
        with engine.connect() as conn:
            assert current_revision(conn) == head_revision(later) == "0002"
        assert "note" in {c["name"] for c in sa.inspect(engine).get_columns(schema.OPERATIONS)}
    finally:
        engine.dispose()

    # This Tether does not know 0002: it says so instead of writing into a schema it does not understand.
    with pytest.raises(AuditError, match="newer Tether") as caught:
        await AuditLog.open(db_url)
    assert "0002" in str(caught.value)
    assert not caught.value.retryable


async def test_secrets_never_reach_the_database(db_url: str, tmp_path: Path) -> None:
    canary = "canary-" + base64.b32encode(b"audit-secret").decode().rstrip("=").lower()
    redactor = Redactor()
    redactor.add(canary)
    encoded = base64.b64encode(canary.encode()).decode()
    entry = _entry(
        f"op-{canary}",
        initiated_by=f"user-{canary}",
        revisions=(f"rev-{canary}",),
        phase="Failed",
        message=f"apply failed: Secret db-creds: value {canary!r} is invalid (base64 {encoded})",
        resources=(
            AuditResource("", "Secret", "guestbook", "db-creds", "failed", "SyncFailed", f"bad value {canary}"),
            AuditResource("batch", "Job", "guestbook", f"hook-{canary}", "hook", "Failed", "x", hook_phase=canary),
        ),
    )
    async with await AuditLog.open(db_url, redactor=redactor) as log:
        await log.record(entry)
        (stored,) = await log.entries()
    assert MASK in stored.message and MASK in stored.resources[0].message  # masked, not dropped
    assert stored.resources[1].hook_phase == MASK

    dumped = _dump(db_url)
    assert "Secret db-creds" in dumped  # the dump does hold the record
    assert canary not in dumped and encoded not in dumped
    if db_url.startswith("sqlite"):
        database = Path(parse_url(db_url).database or "")
        raw = b"".join(p.read_bytes() for p in database.parent.iterdir() if p.is_file())
        assert b"Secret db-creds" in raw
        assert canary.encode() not in raw and encoded.encode() not in raw


async def test_long_and_odd_values_are_bounded(db_url: str) -> None:
    long_id = "op-" + "x" * 300
    sibling = long_id + "-other"
    async with await AuditLog.open(db_url) as log:
        first = await log.record(
            _entry(
                long_id,
                message="m" * 100_000 + "\x00tail",
                initiated_by="u" * 1000,
                revisions=tuple(f"{i:040x}" for i in range(500)),
                resources=(
                    AuditResource("g" * 400, "K" * 400, "n" * 400, "x" * 400, "a" * 100, "s" * 100, "\x00" * 5000),
                ),
            )
        )
        assert await log.record(_entry(long_id, phase="Failed")) == first  # the bounded key still finds it
        other = await log.record(_entry(sibling))
        assert other != first  # two long ids sharing a prefix stay distinct
        entries = {e.id: e for e in await log.entries()}
    assert entries[first].phase == "Failed"
    assert len(entries[first].operation_id) <= schema.OPERATION_ID_LEN
    assert entries[first].operation_id != entries[other].operation_id
    # The first recording's long values are replaced by the second's; write them once more and read them.
    async with await AuditLog.open(db_url) as log:
        await log.record(
            _entry(
                "big",
                message="m" * 100_000,
                revisions=tuple(f"{i:040x}" for i in range(500)),
                resources=(AuditResource("g" * 400, "K" * 400, None, "x" * 400, "a" * 100, "s" * 100, "\x00" * 5000),),
            )
        )
        (big,) = await log.entries("tether-system/guestbook", limit=1)
    assert len(big.message) == schema.MESSAGE_LEN and big.message.endswith("…")
    assert 0 < len(big.revisions) < 500 and big.revisions[0] == f"{0:040x}"
    assert len("\n".join(big.revisions)) <= schema.REVISIONS_LEN
    (resource,) = big.resources
    assert len(resource.group) == schema.GROUP_LEN and len(resource.message) == schema.RESOURCE_MESSAGE_LEN
    assert "\x00" not in resource.message


async def test_bad_input_is_refused_with_the_app_and_field(tmp_path: Path) -> None:
    async with await AuditLog.open(default_url(tmp_path)) as log:
        with pytest.raises(AuditError, match=r"app 'ns/app', operation 'op': started_at must be timezone-aware"):
            await log.record(_entry("op", app="ns/app", started_at=datetime(2025, 1, 1), finished_at=None))
        with pytest.raises(AuditError, match="operation_id is empty"):
            await log.record(_entry(""))
        assert await log.entries() == []
    with pytest.raises(AuditError, match="closed"):
        await log.entries()


async def test_an_unusable_sqlite_path_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(AuditError, match=f"cannot create the directory {blocker}"):
        await AuditLog.open(f"sqlite:///{blocker}/state/audit.db")
    readonly = tmp_path / "readonly"
    readonly.mkdir()
    (readonly / "audit.db").mkdir()  # a directory where the database file should be
    with pytest.raises(
        AuditError, match=r"audit log sqlite:///.*readonly/audit.db: cannot migrate the schema: .*database"
    ):
        await AuditLog.open(f"sqlite:///{readonly / 'audit.db'}")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://root:hunter2-pw@db.example/audit", "backend 'mysql' is not supported"),
        ("postgresql+psycopg2://root:hunter2-pw@db.example/audit", "driver 'psycopg2'"),
        ("not a url with hunter2-pw", "is not a URL"),
        ("postgres://root:hunter2-pw@db.example:notaport/audit", "is not a URL"),
    ],
)
async def test_unsupported_urls_are_refused_without_their_password(url: str, expected: str) -> None:
    with pytest.raises(AuditError, match=expected) as caught:
        await AuditLog.open(url)
    assert caught.value.reason == Reason.INVALID_SPEC
    assert "hunter2-pw" not in str(caught.value)


def test_postgres_urls_get_psycopg() -> None:
    assert parse_url("postgres://u:p@h/db").drivername == "postgresql+psycopg"
    assert parse_url("postgresql://u:p@h/db").drivername == "postgresql+psycopg"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A loopback port that accepts TCP connections and never says a word: a hung database server."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()
        for conn in accepted:
            conn.close()


async def test_unreachable_postgres_fails_fast_without_the_password() -> None:
    password = "s3cret-pw-unreachable"
    port = _closed_port()
    url = f"postgresql://tether:{password}@127.0.0.1:{port}/audit"
    started = time.monotonic()
    with pytest.raises(TetherError) as caught:
        await AuditLog.open(url, timeout=10)
    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert password not in message
    assert f"postgresql+psycopg://tether:***@127.0.0.1:{port}/audit" in message
    assert "refused" in message.lower()
    assert caught.value.retryable


async def test_a_silent_postgres_times_out_instead_of_hanging(silent_server: int) -> None:
    password = "s3cret-pw-silent"
    started = time.monotonic()
    with pytest.raises(AuditError) as caught:
        await AuditLog.open(f"postgresql+psycopg://tether:{password}@127.0.0.1:{silent_server}/audit", timeout=3)
    elapsed = time.monotonic() - started
    assert elapsed < 8, f"took {elapsed:.1f} s"
    assert password not in str(caught.value)
    assert "tether:***@127.0.0.1" in str(caught.value)
    assert caught.value.retryable


async def test_postgres_going_down_and_coming_back(own_postgres_server) -> None:  # type: ignore[no-untyped-def]
    server = own_postgres_server
    log = await AuditLog.open(server.url(), timeout=5)
    try:
        await log.record(_entry("before"))
        server.stop()
        started = time.monotonic()
        with pytest.raises(AuditError) as caught:
            await log.record(_entry("during"))
        assert time.monotonic() - started < 8
        assert server.password not in str(caught.value)
        assert caught.value.retryable
        server.start()
        await log.record(_entry("after", started_at=T0 + timedelta(seconds=1)))  # the pool reconnects by itself
        assert [e.operation_id for e in await log.entries()] == ["after", "before"]
    finally:
        await log.close()


async def test_prune_removes_old_operations_and_their_resources(db_url: str) -> None:
    now = datetime.now(UTC)
    async with await AuditLog.open(db_url) as log:
        await log.record(_entry("old", started_at=now - timedelta(days=40), resources=(DEPLOYMENT, HOOK)))
        await log.record(_entry("stuck", started_at=now - timedelta(days=40), finished_at=None, phase="Running"))
        await log.record(_entry("recent", started_at=now - timedelta(days=2), resources=(NAMESPACE,)))
        assert await log.prune(timedelta(days=30)) == 2
        assert await log.prune(timedelta(days=30)) == 0
        (kept,) = await log.entries()
        assert (kept.operation_id, kept.resources) == ("recent", (NAMESPACE,))
    engine = _engine(db_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(schema.resources)).scalar_one() == 1
    finally:
        engine.dispose()


async def test_the_event_loop_keeps_running_during_database_work(db_url: str) -> None:
    # Enough rows that one call lasts well over 0.3 s (records got about twice as cheap when their statements
    # began to be compiled once), so a stall on the loop would show.
    many = tuple(
        AuditResource("apps", "Deployment", "ns", f"d{i}", "configured", "Synced", "m" * 200) for i in range(40_000)
    )
    gaps: list[float] = []
    done = asyncio.Event()

    ticking = asyncio.Event()

    async def ticker() -> None:
        last = time.monotonic()
        ticking.set()
        while not done.is_set():
            await asyncio.sleep(0.005)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    calls: list[float] = []
    gc.freeze()  # the session's old heap out of the collections the database threads trigger
    try:
        async with await AuditLog.open(db_url) as log:
            task = asyncio.create_task(ticker())
            await ticking.wait()
            started = time.monotonic()
            await log.record(_entry("big", resources=many))
            calls.append(time.monotonic() - started)
            started = time.monotonic()
            entries = await log.entries()
            calls.append(time.monotonic() - started)
            done.set()
            await task
    finally:
        gc.unfreeze()
    assert sum(len(e.resources) for e in entries) == 40_000
    # Run on the loop, each call would stall it for its whole length; in threads the loop ticks throughout.
    longest = max(calls)
    assert longest > 0.3 and max(gaps) < longest / 3, (calls, max(gaps))
