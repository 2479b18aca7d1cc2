"""The FastAPI service: API, authentication, Prometheus metrics and the web dashboard."""
