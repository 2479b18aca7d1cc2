"""The storage exception tree (drawn in the package docstring)."""

from __future__ import annotations


class StorageError(Exception):
    """Root of every error raised by fleetmon.storage."""


class SchemaNotReadyError(StorageError):
    """The database schema is missing or older than this code; `fleetmon db upgrade` fixes it."""


class StorageUnavailableError(StorageError):
    """The database could not be reached, or a write failed for a reason other than bad data."""


class StorageDataError(StorageError):
    """The database refused the values of a batch (bad data, not an outage): retrying cannot help.

    The sample writer splits such a batch to find the samples at fault and keeps them in
    rejected_samples; this error never leaves SampleStore.write.
    """
