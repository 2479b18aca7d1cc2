"""Everything that speaks to mining devices: framing, clients, drivers, polling, scanning, simulation.

This package never imports `fleetmon`, FastAPI, SQLModel, MQTT or prometheus_client: it is the device
library, and the service is one of its users.
"""
