"""fleetmon: storage, ingestion, supply-chain analytics and the service built on `collectors`."""

__version__ = "0.1.0"
