"""Supply-chain analytics: catalog, assembly origin, dated US tariff schedule and fleet exposure.

Pure functions over plain typed values (no database, no web service): storage and the API call in.
Errors: see `fleetmon.supplychain.errors` for the exception tree.
"""
