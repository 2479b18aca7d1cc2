"""Alembic environment: migrations run on the engine handed over by fleetmon.storage.engine.upgrade.

The target metadata is SQLModel's, so `alembic revision --autogenerate` compares against the models.
render_as_batch lets ALTERs work on SQLite, which can only rebuild tables.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine, create_engine
from sqlmodel import SQLModel

import fleetmon.storage.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from fleetmon.storage.engine import resolve_url

target_metadata = SQLModel.metadata


def _engine() -> Engine:
    given = context.config.attributes.get("engine")
    if isinstance(given, Engine):
        return given
    return create_engine(resolve_url(context.config.get_main_option("sqlalchemy.url")))


def run_migrations_online() -> None:
    """Apply the migrations inside one transaction per run."""
    engine = _engine()
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    raise SystemExit("fleetmon migrations run online only: use `fleetmon db upgrade --db URL`")
run_migrations_online()
