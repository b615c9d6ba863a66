"""The catalog database: engines, sessions and migrations for SQLite and PostgreSQL.

The catalog lives in its own database, apart from the engine's job store, so a
store's products can sit in the PostgreSQL the shop already runs while the
queue stays on SQLite or Redis. Both dialects are held to the same guarantees:

* SQLite connections open every transaction with ``BEGIN IMMEDIATE``, so two
  writers (threads or processes on one file) queue behind each other instead
  of failing with "database is locked" when a reader tries to upgrade to a
  writer. Foreign keys are switched on and the file runs in WAL mode.
  ``INSERT ... ON CONFLICT ... RETURNING`` needs SQLite 3.35 or newer.
* PostgreSQL runs at READ COMMITTED; the ledger's unique constraints and
  ``ON CONFLICT DO NOTHING`` inserts, not Python checks, decide who wins a race.
"""

from __future__ import annotations

import enum
import sqlite3
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    JSON,
    CursorResult,
    DateTime,
    Delete,
    Engine,
    Enum,
    MetaData,
    Update,
    create_engine,
    event,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator

from conveyor import ConfigurationError

DEFAULT_URL = "sqlite:///conveyor-catalog.db"
"""Where the catalog lives when no URL is given: a file in the working directory."""

SQLITE_BUSY_TIMEOUT_S = 30.0
"""How long a SQLite writer waits for another writer's transaction to end."""

_MIGRATIONS = Path(__file__).with_name("migrations")
_MIGRATION_LOCK = 0x636F6E76  # "conv": one PostgreSQL advisory lock id for schema upgrades

# Stable constraint names: Alembic needs them to alter tables later (SQLite
# batch mode rebuilds tables by name) and they read well in error messages.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python.

    SQLite has no timezone-aware type and hands back naive datetimes; storing
    naive UTC everywhere and re-attaching UTC on the way out makes comparisons
    (leases, ordering) behave the same on both dialects.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def string_enum(cls: type[enum.StrEnum], name: str) -> Enum:
    """A VARCHAR with a CHECK constraint on both dialects, rather than a PostgreSQL ENUM type.

    Adding a member later is then an ordinary constraint change in a
    migration instead of an ALTER TYPE that cannot run inside a transaction.
    """
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


JSONDocument = JSON().with_variant(postgresql.JSONB(), "postgresql")
"""JSON that PostgreSQL stores as JSONB, which (unlike json) supports equality."""


class Base(DeclarativeBase):
    """Declarative base of every catalog and ledger table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONDocument}


def normalize_url(url: str) -> str:
    """Pick the psycopg 3 driver for bare PostgreSQL URLs (SQLAlchemy would default to psycopg2)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def create_engine_for(url: str = DEFAULT_URL, **kwargs: Any) -> Engine:
    """An engine for a catalog URL, with the per-dialect settings the ledger relies on."""
    url = normalize_url(url)
    if make_url(url).get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, **kwargs)
    connect_args = {"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}
    connect_args.update(kwargs.pop("connect_args", {}))
    engine = create_engine(url, connect_args=connect_args, **kwargs)
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry) -> None:
    # Turn off the sqlite3 module's own implicit BEGIN so `_sqlite_begin` decides.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    # Switching a fresh file to WAL needs an exclusive lock and SQLite answers
    # "locked" at once, without its busy handler, when connections race to do
    # it; the mode is stored in the file, so only the first switch can collide.
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")  # in-memory databases stay "memory"
            break
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit (the ledger returns them to callers)."""
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(connection: Connection) -> Config:
    """An Alembic configuration bound to `connection`, for `migrate` and for writing new revisions."""
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def migrate(url_or_engine: str | Engine = DEFAULT_URL) -> None:
    """Bring the catalog schema to the newest revisions (``alembic upgrade heads``), idempotently.

    Each commerce system (catalog and ledger, suppliers, seller data, store
    jobs) keeps its tables on its own Alembic branch off ``0001``, so
    upgrading every head installs them all and none orders the others.

    The whole upgrade runs in one transaction: on SQLite that transaction is
    ``BEGIN IMMEDIATE`` and on PostgreSQL it first takes an advisory lock, so
    several processes starting at once upgrade the schema exactly once.
    """
    engine = create_engine_for(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
            command.upgrade(alembic_config(connection), "heads")
    finally:
        if engine is not url_or_engine:
            engine.dispose()  # ours, not the caller's


_BATCH = 500  # rows per multi-row INSERT: well under every driver's parameter limit


def _insert(session: Session, table: type[Base]) -> sqlite.Insert | postgresql.Insert:
    """An INSERT that can say ON CONFLICT DO NOTHING in the session's dialect."""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        return sqlite.insert(table)
    if dialect == "postgresql":
        return postgresql.insert(table)
    raise ConfigurationError(f"the catalog supports SQLite and PostgreSQL, not {dialect}")


def insert_ignoring_conflicts(
    session: Session, table: type[Base], rows: Sequence[dict[str, Any]], key: Sequence[str]
) -> list[int]:
    """Insert `rows` in order, skip those whose `key` exists; return the inserted rows' ids.

    Inserting in one agreed order (callers sort) means two PostgreSQL
    transactions claiming overlapping sets wait for each other instead of
    deadlocking.
    """
    inserted: list[int] = []
    for start in range(0, len(rows), _BATCH):
        statement = (
            _insert(session, table)
            .values(list(rows[start : start + _BATCH]))
            .on_conflict_do_nothing(index_elements=list(key))
            .returning(table.__table__.c.id)
        )
        inserted.extend(session.scalars(statement))
    return inserted


def rows_changed(session: Session, statement: Update | Delete) -> int:
    """Run a conditional UPDATE/DELETE; the row count says whether its condition held."""
    result = session.execute(statement.execution_options(synchronize_session=False))
    return int(cast(CursorResult[Any], result).rowcount)
