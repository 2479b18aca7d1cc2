"""Durable storage of samples: schema, engine, batch writer, rollups, retention and export.

Errors raised by this package all derive from StorageError; the tree is drawn in
fleetmon/storage/errors.py, where database errors are translated into it.
"""

from __future__ import annotations
