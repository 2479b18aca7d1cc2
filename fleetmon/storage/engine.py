"""Database URLs, engines and migrations.

The default database is a SQLite file in the data directory (`FLEETMON_DATA_DIR`, else
`~/.local/share/fleetmon`), opened in WAL mode with synchronous=NORMAL, foreign keys on and a 64 MiB
page cache: WAL lets the API read while the writer commits, and NORMAL only risks the last
transactions on power loss, never corruption. PostgreSQL is reached by URL (`postgresql+psycopg://user@host/db`).
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from fleetmon.storage.errors import SchemaNotReadyError, StorageUnavailableError, translated

# Engine is re-exported: the handle the rest of fleetmon passes around without importing SQLAlchemy.
__all__ = [
    "Engine",
    "current_revision",
    "data_dir",
    "default_url",
    "ensure_schema",
    "head_revision",
    "make_engine",
    "ping",
    "resolve_url",
    "upgrade",
]

SQLITE_FILE = "fleetmon.db"


def data_dir() -> Path:
    """Where fleetmon keeps its files: FLEETMON_DATA_DIR, else ~/.local/share/fleetmon."""
    configured = os.environ.get("FLEETMON_DATA_DIR")
    return Path(configured) if configured else Path.home() / ".local" / "share" / "fleetmon"


def default_url() -> str:
    """The SQLite URL of the default database file in the data directory."""
    return f"sqlite:///{data_dir() / SQLITE_FILE}"


def resolve_url(url: str | None) -> str:
    """The given URL, or the default SQLite file; `postgresql://` gets the psycopg 3 driver."""
    if not url:
        return default_url()
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    # 64 MiB of page cache instead of 2 MiB: the samples key and ts indexes stay in memory while a
    # batch inserts, which was the difference between ~23k and ~30k samples/s (bench_ingest).
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()


def make_engine(url: str | None = None) -> Engine:
    """An engine for the URL (default: the SQLite file, whose directory is created)."""
    resolved = make_url(resolve_url(url))
    if resolved.get_backend_name() == "sqlite":
        if resolved.database and resolved.database != ":memory:":
            Path(resolved.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(resolved)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(resolved, pool_pre_ping=True)


def _alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("fleetmon.storage") / "migrations"))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` (default: the newest); safe to run again."""
    try:
        command.upgrade(_alembic_config(engine), revision)
    except SQLAlchemyError as exc:
        raise StorageUnavailableError(f"migration failed on {engine.url!r}: {exc}") from exc


def head_revision() -> str | None:
    """The newest migration shipped with this code."""
    script = ScriptDirectory.from_config(_alembic_config(create_engine("sqlite://")))
    return script.get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at, or None for a blank database."""
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as exc:
        raise StorageUnavailableError(f"cannot read the schema version of {engine.url!r}: {exc}") from exc


def ensure_schema(engine: Engine) -> None:
    """Make sure the schema is current: SQLite is upgraded in place, PostgreSQL must be upgraded by hand.

    PostgreSQL is shared by several ingesters, and concurrent migrations would race; there the operator
    runs `fleetmon db upgrade` once. Raises SchemaNotReadyError when the schema is behind.
    """
    if current_revision(engine) == head_revision():
        return
    if engine.dialect.name == "sqlite":
        upgrade(engine)
        return
    raise SchemaNotReadyError(
        f"database {engine.url.render_as_string(hide_password=True)} is not at the current schema; "
        "run `fleetmon db upgrade --db URL` first"
    )


def ping(engine: Engine) -> None:
    """Ask the database for `SELECT 1`; raises StorageUnavailableError when it does not answer."""
    with translated("the database does not answer"), engine.connect() as conn:
        conn.execute(text("SELECT 1"))
