"""Durable storage of samples: schema, engine, batch writer, rollups, retention and export.

Errors raised by this package all derive from one root::

    StorageError
    ├── SchemaNotReadyError   the database is not at the migration head (run `fleetmon db upgrade`)
    ├── StorageUnavailableError   the database could not be reached or failed a write (retry, spool)
    └── StorageDataError   the database refused a batch's values (the writer dead-letters the culprits)
"""

from __future__ import annotations
