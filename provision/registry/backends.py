"""The two databases the registry runs on, and what differs between them.

Both speak the same SQL (written with `?` placeholders) and the same schema; a backend only
knows how to connect, how to take the write lock, and how to turn its driver's errors into
RegistryError. Connections run in autocommit mode and the registry issues BEGIN/COMMIT
itself, so a transaction looks the same on both.
"""

from __future__ import annotations

import contextlib
import random
import re
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from provision.errors import RegistryError

# 2: records.proof (the post-write mTLS proof); 3: records.device_uuid; 4: records.supersedes
SCHEMA_VERSION = 4
WRITE_LOCK_TIMEOUT = 30.0  # seconds a SQLite writer waits for another process's transaction

# Same text on both backends: SQLite maps BIGINT to INTEGER and DOUBLE PRECISION to REAL.
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS meta (
        id BIGINT PRIMARY KEY CHECK (id = 1),
        schema_version BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS records (
        seq BIGINT PRIMARY KEY,
        device_id TEXT NOT NULL,
        result TEXT NOT NULL,
        station TEXT NOT NULL,
        operator TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT NOT NULL,
        cert_serial TEXT UNIQUE,
        cert_sha256 TEXT,
        root_sha256 TEXT,
        sec_tags TEXT NOT NULL,
        error_code TEXT,
        cert_pem TEXT,
        prev_hash TEXT NOT NULL,
        row_hash TEXT NOT NULL,
        proof TEXT,
        device_uuid TEXT,
        supersedes TEXT)""",
    "CREATE INDEX IF NOT EXISTS records_device ON records (device_id, seq)",
    # The last row of the chain: deleting rows at the end of `records` is caught here.
    """CREATE TABLE IF NOT EXISTS chain_head (
        id BIGINT PRIMARY KEY CHECK (id = 1),
        seq BIGINT NOT NULL,
        row_hash TEXT NOT NULL)""",
    # Serials come from one counter row that every station increments in a transaction.
    """CREATE TABLE IF NOT EXISTS serial_counter (
        id BIGINT PRIMARY KEY CHECK (id = 1),
        next_value BIGINT NOT NULL)""",
    # A device being provisioned right now, and by whom: the primary key is the lock.
    """CREATE TABLE IF NOT EXISTS claims (
        device_id TEXT PRIMARY KEY,
        station TEXT NOT NULL,
        token TEXT NOT NULL,
        claimed_at DOUBLE PRECISION NOT NULL)""",
)
# Schema version → what brings a registry of the version before it up to it (run under the
# write lock, once; a row written before keeps its hash: see records.OPTIONAL_HASHED_FIELDS).
MIGRATIONS = {
    2: ("ALTER TABLE records ADD COLUMN proof TEXT",),
    3: ("ALTER TABLE records ADD COLUMN device_uuid TEXT",),
    4: ("ALTER TABLE records ADD COLUMN supersedes TEXT",),
}
SEED = (
    "INSERT INTO meta (id, schema_version) VALUES (1, ?) ON CONFLICT (id) DO NOTHING",
    "INSERT INTO chain_head (id, seq, row_hash) VALUES (1, 0, ?) ON CONFLICT (id) DO NOTHING",
    "INSERT INTO serial_counter (id, next_value) VALUES (1, 1) ON CONFLICT (id) DO NOTHING",
)


def redact_url(url: str) -> str:
    """Hide a password in a connection URL before it reaches a message."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


class Backend:
    read_only: bool = False
    name: str
    target: str  # what to call the database in messages (password redacted)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    def pipeline(self) -> contextlib.AbstractContextManager[Any]:
        """Statements executed inside go to the server together and their results come back
        together when the block ends (read each cursor's rows after it): one round trip
        instead of one per statement. Nothing to save on SQLite, which is in-process."""
        return contextlib.nullcontext()

    def begin_write(self) -> None: ...

    def begin_read(self) -> None:
        self.execute("BEGIN")

    def commit(self) -> None:
        self.execute("COMMIT")

    def rollback(self) -> None: ...

    def lock_head_sql(self) -> str:
        return "SELECT seq, row_hash FROM chain_head WHERE id = 1"

    def close(self) -> None: ...

    @contextmanager
    def errors(self) -> Iterator[None]:
        yield


class _Rows:
    """A statement's rows, read to the end."""

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows, self.rowcount = rows, rowcount

    def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    def fetchall(self) -> list[Any]:
        rows, self._rows = self._rows, []
        return rows


class SQLiteBackend(Backend):
    name = "sqlite"

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.target = str(path)
        self.read_only = read_only
        try:
            if read_only and not path.exists():
                raise RegistryError(f"{path}: no registry here")
            if path.exists() and not path.is_file():
                # A FIFO or device would be opened and read as a database.
                raise RegistryError(f"{path}: not a registry file (not a regular file)")
            if not path.parent.is_dir():
                raise RegistryError(f"{path.parent}: registry directory does not exist")
        except OSError as err:  # e.g. a name too long for the file system
            raise RegistryError(f"{path}: cannot open registry: {err.strerror}") from None
        try:
            if read_only:
                # mode=ro: SQLite never creates, converts or writes the file (a 0-byte file
                # stays 0 bytes and is reported as not a registry).
                self.conn = sqlite3.connect(
                    f"{path.resolve().as_uri()}?mode=ro",
                    uri=True,
                    isolation_level=None,
                    check_same_thread=False,
                    timeout=30.0,
                )
            else:
                self.conn = sqlite3.connect(
                    path, isolation_level=None, check_same_thread=False, timeout=30.0
                )
                self.conn.execute("PRAGMA journal_mode=WAL")
                # FULL: a record is on disk before the line reports the device done.
                self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.execute(f"PRAGMA busy_timeout={int(WRITE_LOCK_TIMEOUT * 1000)}")
        except sqlite3.Error as err:
            raise RegistryError(f"{path}: cannot open registry: {err}") from None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        cur = self.conn.execute(sql, tuple(params))
        if "RETURNING" in sql:
            # Step the statement to its end now: one left open would stop the COMMIT
            # ("SQL statements in progress"), and a pipeline's caller reads it after that.
            return _Rows(cur.fetchall(), cur.rowcount)
        return cur

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.conn.executemany(sql, rows)

    def begin_write(self) -> None:
        # IMMEDIATE takes the write lock now: two processes never both read the same chain
        # head or counter value and then both write. SQLite's own busy handler backs off to
        # 100 ms sleeps, so a station that keeps writing can starve another process for
        # seconds; polling every few milliseconds here keeps stations taking turns.
        deadline = time.monotonic() + WRITE_LOCK_TIMEOUT
        delay = 0.0005
        self.conn.execute("PRAGMA busy_timeout=0")
        try:
            while True:
                try:
                    self.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as err:
                    if "locked" not in str(err) or time.monotonic() > deadline:
                        raise
                time.sleep(delay * random.uniform(0.5, 1.5))
                delay = min(delay * 2, 0.004)
        finally:
            self.conn.execute(f"PRAGMA busy_timeout={int(WRITE_LOCK_TIMEOUT * 1000)}")

    def rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.IntegrityError as err:
            raise RegistryError(f"{self.target}: registry constraint violated: {err}") from None
        except sqlite3.Error as err:
            raise RegistryError(f"{self.target}: registry error: {err}") from None


class PostgresBackend(Backend):
    name = "postgresql"

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        self.read_only = read_only
        try:
            import psycopg
        except ImportError:
            raise RegistryError(
                "PostgreSQL registry needs psycopg: pip install 'provision-x509[postgres]'"
            ) from None
        self._psycopg = psycopg
        self.target = redact_url(url)
        try:
            self.conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
            if read_only:
                self.conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        except psycopg.Error as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise RegistryError(f"{self.target}: cannot connect: {redact_url(first)}") from None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(sql.replace("?", "%s"), tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        # psycopg sends the rows pipelined: one round trip, not one per row.
        self.conn.cursor().executemany(sql.replace("?", "%s"), rows)

    def pipeline(self) -> contextlib.AbstractContextManager[Any]:
        return self.conn.pipeline()

    def begin_write(self) -> None:
        self.execute("BEGIN")

    def begin_read(self) -> None:
        # One snapshot for a whole chain walk, even while stations keep appending.
        self.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    def rollback(self) -> None:
        if self.conn.info.transaction_status != self._psycopg.pq.TransactionStatus.IDLE:
            self.conn.execute("ROLLBACK")

    def lock_head_sql(self) -> str:
        # The row lock serializes appends from every station sharing the database.
        return "SELECT seq, row_hash FROM chain_head WHERE id = 1 FOR UPDATE"

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def errors(self) -> Iterator[None]:
        psycopg = self._psycopg
        try:
            yield
        except psycopg.errors.IntegrityError as err:
            raise RegistryError(f"{self.target}: registry constraint violated: {err}") from None
        except psycopg.Error as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise RegistryError(f"{self.target}: registry error: {first}") from None


def open_backend(url: str, *, read_only: bool = False) -> Backend:
    """`postgresql://…` (or `postgres://…`) → PostgreSQL; `sqlite:///path` or a path → SQLite.
    `read_only`: never create, migrate or write (the registry must already exist)."""
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresBackend(url, read_only=read_only)
    if url.startswith("sqlite://"):
        url = url.removeprefix("sqlite://")
        if url.startswith("/") and url[1:2] == "/":
            url = url[1:]
    if "://" in url:
        raise RegistryError(f"{redact_url(url)}: unknown registry URL (postgresql:// or a path)")
    return SQLiteBackend(Path(url), read_only=read_only)
