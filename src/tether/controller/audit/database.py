"""Engines for the audit log: which URLs are accepted, their timeouts, and errors fit to show.

Two backends: SQLite (a file, WAL mode, a busy timeout; the embedded default) and PostgreSQL
through psycopg 3 (connect, statement and lock timeouts, TCP keepalives, a small pool checked
before use, so a restarted server is reconnected). A URL is only ever shown with its password
masked, and driver errors are cut to their first lines, without SQL or parameters.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from tether.errors import Reason, TetherError
from tether.secrets import Redactor

POOL_SIZE = 4
_ERROR_LEN = 500
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")


class AuditError(TetherError):
    """The audit database is unreachable, too slow, or refused a write; a retry may help."""

    retryable = True


def parse_url(url: str) -> URL:
    """``url`` as a SQLAlchemy URL with its driver chosen: ``postgresql://`` and ``postgres://`` use psycopg 3.

    Anything but SQLite and PostgreSQL is refused with an error naming the setting (never the password).
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as err:
        scheme = url.partition("://")[0] if "://" in url else ""
        shown = f" ({scheme}://…)" if scheme.replace("+", "").isalnum() else ""
        raise AuditError(
            f"the database URL{shown} is not a URL: use sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DB",
            reason=Reason.INVALID_SPEC,
            retryable=False,
        ) from err
    backend, _, driver = parsed.drivername.partition("+")
    if backend in {"postgresql", "postgres"}:
        if driver not in {"", "psycopg"}:
            raise AuditError(
                f"database URL {display_url(parsed)}: driver {driver!r} is not installed; use postgresql+psycopg://",
                reason=Reason.INVALID_SPEC,
                retryable=False,
            )
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        if driver not in {"", "pysqlite"}:
            raise AuditError(
                f"database URL {display_url(parsed)}: driver {driver!r} is not supported; use sqlite:///PATH",
                reason=Reason.INVALID_SPEC,
                retryable=False,
            )
        return parsed
    raise AuditError(
        f"database URL {display_url(parsed)}: backend {backend!r} is not supported; use sqlite:///PATH or postgresql://…",
        reason=Reason.INVALID_SPEC,
        retryable=False,
    )


def display_url(url: URL | str) -> str:
    """The URL as it may appear in logs and errors: the password shown as ``***``."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return mask_password(url)


def mask_password(text: str) -> str:
    """``text`` with the password of any ``scheme://user:password@`` in it shown as ``***``."""
    return _URL_PASSWORD.sub(r"\1***@", text)


def is_memory(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in {None, "", ":memory:"}


def make_engine(url: URL, *, timeout: float) -> Engine:
    """An engine for ``url`` whose every wait (connect, lock, statement, pool checkout) ends within ``timeout``."""
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, timeout)
    return _postgres_engine(url, timeout)


def _sqlite_engine(url: URL, timeout: float) -> Engine:
    busy_ms = int(timeout * 1000)
    if is_memory(url):
        engine = create_engine(url, connect_args={"check_same_thread": False}, poolclass=StaticPool)
    else:
        assert url.database is not None
        if not url.database.startswith("file:"):
            directory = Path(url.database).expanduser().parent
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise AuditError(
                    f"audit log {display_url(url)}: cannot create the directory {directory}: {err.strerror or err}",
                    retryable=False,
                ) from None
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": timeout},
            pool_size=POOL_SIZE,
            max_overflow=0,
            pool_timeout=timeout,
        )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            if not is_memory(url):
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    return engine


def _postgres_engine(url: URL, timeout: float) -> Engine:
    millis = int(timeout * 1000)
    options = (
        f"-c statement_timeout={millis} -c lock_timeout={millis} -c idle_in_transaction_session_timeout={millis * 2}"
    )
    given = url.query.get("options")
    if isinstance(given, str) and given:
        options = f"{given} {options}"
    connect_args: dict[str, Any] = {
        # libpq waits at least 2 s per address; a whole-number string is what it parses.
        "connect_timeout": str(max(2, min(10, int(timeout)))),
        "options": options,
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
        "tcp_user_timeout": millis,
        "application_name": "tether-audit",
    }
    return create_engine(
        url.difference_update_query(["options"]),
        connect_args=connect_args,
        pool_size=POOL_SIZE,
        max_overflow=0,
        pool_timeout=timeout,
        pool_pre_ping=True,
        pool_recycle=1800,
    )


def describe(err: BaseException, url: URL, redactor: Redactor) -> str:
    """A short, safe description of a database failure: the driver's first lines, no SQL, no parameters,
    no password, every secret the redactor knows masked."""
    cause: BaseException = err.orig if isinstance(err, DBAPIError) and err.orig is not None else err
    if isinstance(err, SQLAlchemyError) and not isinstance(err, DBAPIError):
        text = str(err).split("\n(Background on this error", 1)[0]
    else:
        text = str(cause)
    text = " ".join(text.split()) or type(cause).__name__
    if url.password:
        text = text.replace(str(url.password), "***")
    text = redactor.redact(mask_password(text))
    return text if len(text) <= _ERROR_LEN else text[: _ERROR_LEN - 1] + "…"
