"""The storage exception tree, and the one place database errors become it.

Every error raised by fleetmon.storage derives from one root::

    StorageError
    ├── SchemaNotReadyError       the database is not at the migration head (run `fleetmon db upgrade`)
    ├── StorageUnavailableError   the database could not be reached or failed a read or write (retry, spool)
    └── StorageDataError          the database refused a batch's values (the writer dead-letters the culprits)

Code outside fleetmon.storage never sees a SQLAlchemy or driver exception: the named query functions
run their database work inside `translated(...)`, which re-raises any SQLAlchemyError as
StorageUnavailableError `from` the original.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc as sa_exc


class StorageError(Exception):
    """Root of every error raised by fleetmon.storage."""


class SchemaNotReadyError(StorageError):
    """The database schema is missing or older than this code; `fleetmon db upgrade` fixes it."""


class StorageUnavailableError(StorageError):
    """The database could not be reached, or a read or write failed for a reason other than bad data."""


class StorageDataError(StorageError):
    """The database refused the values of a batch (bad data, not an outage): retrying cannot help.

    The sample writer splits such a batch to find the samples at fault and keeps them in
    rejected_samples; this error never leaves SampleStore.write.
    """


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Run a block of database work; a SQLAlchemyError leaves it as StorageUnavailableError("{what}: ...")."""
    try:
        yield
    except sa_exc.SQLAlchemyError as exc:
        raise StorageUnavailableError(f"{what}: {exc}") from exc
