"""The exception tree of fleetmon.supplychain: one root, so callers can catch the package at once.

    SupplyChainError
    ├── ScheduleError        a tariff schedule file is unreadable or invalid (names file, line, layer)
    ├── UnknownHtsError      no loaded schedule covers the HTS code asked about
    ├── CatalogDataError     a shipped catalog CSV is malformed (names file and line)
    ├── InventoryError       an inventory CSV cannot be read at all (bad header, not CSV)
    ├── UnitsFileError       a units JSON file cannot be read or a record in it is invalid
    ├── ScenarioError        a what-if scenario is inconsistent (unknown origin, negative TH/s, ...)
    └── HtsFetchError        the USITC HTS service failed or answered something we cannot read

Row-level problems in an inventory CSV are not raised: they come back as `InventoryRowError` values
next to the good rows, so one bad line never loses the others.
"""

from __future__ import annotations


class SupplyChainError(Exception):
    """Root of every error raised by fleetmon.supplychain."""


class ScheduleError(SupplyChainError):
    """A tariff schedule file is unreadable or invalid; the message names the file and line or layer."""


class UnknownHtsError(SupplyChainError):
    """No loaded tariff schedule covers the HTS code asked about."""


class CatalogDataError(SupplyChainError):
    """A catalog data file (manufacturers, models, aliases, origin defaults) is malformed."""


class InventoryError(SupplyChainError):
    """An inventory CSV cannot be read at all (missing columns, undecodable bytes)."""


class UnitsFileError(SupplyChainError):
    """A units JSON file cannot be read, or one of its records is invalid."""


class ScenarioError(SupplyChainError):
    """A what-if scenario is inconsistent."""


class HtsFetchError(SupplyChainError):
    """The USITC HTS REST service failed or answered in a shape we cannot read."""
