"""One SQLite connection on one thread, migrations, and error translation.

sqlite3 calls block, so every call runs on a dedicated thread; the event loop
only awaits. One transaction is one function run on that thread, which keeps
each backend operation a single `BEGIN IMMEDIATE ... COMMIT`.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from typing import TypeVar

from ...errors import BackendError, BackendUnavailable

T = TypeVar("T")
# SQLite's default page cache is 2 MiB: a 10,000-job bulk insert touches more pages than that (jobs,
# their indexes, events) and spills to the WAL mid-transaction, a third slower. A page costs
# memory only once it is read.
CACHE_KIB = 32 * 1024


def _migrations() -> list[tuple[int, str]]:
    folder = resources.files(__package__).joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text("utf-8")))
    return sorted(found)


def _statements(script: str) -> list[str]:
    """Split a script into statements without `executescript`, which would commit early."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--") and not current.strip():
            continue
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        raise BackendError(f"incomplete SQL statement in migration: {current[:80]!r}")
    return statements


class SQLiteConnection:
    def __init__(self, path: str, *, synchronous: str, busy_timeout: float, events_max: int) -> None:
        self.path = path
        self.events_max = events_max
        self._synchronous = synchronous
        self._busy_timeout = busy_timeout
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._quick: sqlite3.Connection | None = None

    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="conveyor-sqlite")
        try:
            await self.run(self._connect)
            await self.write(self._migrate)
            self._quick = self.connect_raw(busy_timeout=0)
            self._quick.execute(f"PRAGMA synchronous = {self._synchronous}")
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self._quick is not None:
            self._quick.close()
            self._quick = None
        if self._executor is None:
            return
        if self._conn is not None:
            await self.run(self._conn.close)
        self._executor.shutdown(wait=True)
        self._executor = None
        self._conn = None

    def connect_raw(self, *, busy_timeout: float | None = None) -> sqlite3.Connection:
        wait = self._busy_timeout if busy_timeout is None else busy_timeout
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=wait, factory=EventConnection
        )
        conn.execute(f"PRAGMA busy_timeout = {int(wait * 1000)}")
        conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        conn.create_function("conveyor_event_time", 0, lambda: conn.event_time)
        conn.create_function("conveyor_events_max", 0, lambda: self.events_max, deterministic=True)
        return conn

    def _connect(self) -> None:
        if self.path != ":memory:" and not os.path.exists(self.path):
            # Payloads, results and logs are the shop's business only; SQLite gives its WAL
            # and shared-memory files the same mode as the database file.
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        conn = self.connect_raw()
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise BackendError(f"SQLite file {self.path} cannot use WAL mode (got {mode})")
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        self._conn = conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE IF NOT EXISTS conveyor_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        row = conn.execute("SELECT value FROM conveyor_meta WHERE key = 'schema_version'").fetchone()
        current = int(row[0]) if row else 0
        for version, script in _migrations():
            if version <= current:
                continue
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO conveyor_meta (key, value) VALUES ('schema_version', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(version),),
            )

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        if self._executor is None:
            raise BackendError("the SQLite backend is not open")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn, *args)
        except sqlite3.DatabaseError as exc:
            raise self._translate(exc) from exc

    def _translate(self, exc: sqlite3.DatabaseError) -> BackendError:
        text = str(exc)
        if isinstance(exc, sqlite3.OperationalError):
            if "locked" in text or "busy" in text:
                return BackendUnavailable(
                    f"SQLite database {self.path} stayed locked for {self._busy_timeout:g}s"
                )
            if "unable to open" in text:
                return BackendUnavailable(f"cannot open SQLite database {self.path}: {text}")
            return BackendError(f"SQLite error on {self.path}: {text}")
        return BackendError(f"{self.path} is not a usable Conveyor database ({exc}); is it corrupt?")

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self.run(self._read, fn)

    async def write(
        self, fn: Callable[[sqlite3.Connection], T], *, quick: bool = False, now: float | None = None
    ) -> T:
        """One transaction. `quick` ones (a few rows) first try the event loop's own connection.

        `now` is the engine's time of the change, which the event triggers
        record (None for writes that carry no time, so a stale time never
        leaks into them).

        Handing a call to the SQLite thread and back costs more than a small
        transaction itself, so a quick write runs in place when the file is
        free (busy timeout 0) and goes to the thread, which waits its turn,
        only when another connection holds the write lock.
        """
        fn = _stamped(fn, now)
        if quick and self._quick is not None:
            try:
                return self._write_on(self._quick, fn)
            except _Busy:
                pass
            except sqlite3.DatabaseError as exc:
                raise self._translate(exc) from exc
        return await self.run(self._write, fn)

    async def execute(self, sql: str, rows: Sequence[Sequence[object]], *, now: float | None = None) -> int:
        """One statement over `rows` in one write transaction; returns the rows changed.

        The cursor never leaves the SQLite thread: a cursor freed on the event
        loop resets its cached statement there, racing the thread's next use of
        the same statement (SQLite then answers "bad parameter or other API misuse").
        """

        def run(conn: sqlite3.Connection) -> int:
            return conn.executemany(sql, rows).rowcount

        return await self.write(run, now=now)

    def _write_on(self, conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise _Busy from exc
            raise
        try:
            result = fn(conn)
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            conn.execute("ROLLBACK")
            if "locked" in str(exc) or "busy" in str(exc):
                raise _Busy from exc
            raise
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return result

    def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        assert self._conn is not None
        return fn(self._conn)

    def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn
        assert conn is not None
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result


class EventConnection(sqlite3.Connection):
    """A connection that tells the event triggers the time of the change being written.

    The triggers (migration 0005) call `conveyor_event_time()` and
    `conveyor_events_max()`, functions every Conveyor connection registers: a
    trigger has no clock of its own, and the backend never reads one. So only
    Conveyor may write the jobs table; another program's write fails with
    "no such function" instead of recording events without a time.
    """

    event_time: float | None = None


def _stamped(fn: Callable[[sqlite3.Connection], T], now: float | None) -> Callable[[sqlite3.Connection], T]:
    def run(conn: sqlite3.Connection) -> T:
        assert isinstance(conn, EventConnection)
        conn.event_time = now
        return fn(conn)

    return run


class _Busy(Exception):
    """The quick path found the file locked; the thread path will wait for it."""
