"""The storage exception tree (drawn in the package docstring)."""

from __future__ import annotations


class StorageError(Exception):
    """Root of every error raised by fleetmon.storage."""


class SchemaNotReadyError(StorageError):
    """The database schema is missing or older than this code; `fleetmon db upgrade` fixes it."""


class StorageUnavailableError(StorageError):
    """The database could not be reached, or a write failed for a reason other than bad data."""
