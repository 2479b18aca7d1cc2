"""`fleetmon serve [--config FILE]`: the API, /metrics and (with targets) the collector, in one process.

uvicorn serves the app; SIGINT or SIGTERM shut it down gracefully: open requests finish, then the
lifespan stops the runtime (the collector stores the cycle in progress), then the process exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from fleetmon.config import ConfigError, load_settings
from fleetmon.service.app import create_app
from fleetmon.service.runtime import ServiceRuntime
from fleetmon.storage.engine import ensure_schema, make_engine
from fleetmon.storage.errors import StorageError, StorageUnavailableError

log = logging.getLogger(__name__)


class Server(uvicorn.Server):
    """uvicorn's server, whose signal handling ends in a clean exit.

    uvicorn re-raises a captured SIGINT/SIGTERM after its graceful shutdown so that the default
    action (death by signal, or KeyboardInterrupt) follows; a service that shut down cleanly should
    instead return and exit 0, so the handlers here only request the shutdown.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Route SIGINT/SIGTERM to a graceful shutdown (a second SIGINT forces it)."""
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM)
        for sig in signals:
            loop.add_signal_handler(sig, self.handle_exit, sig, None)
        try:
            yield
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)


def uvicorn_config(app: FastAPI, host: str, port: int) -> uvicorn.Config:
    """uvicorn settings shared by `serve` and `demo` (access log on: it never holds headers)."""
    return uvicorn.Config(
        app, host=host, port=port, lifespan="on", log_level="info", timeout_graceful_shutdown=10
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `serve` command."""
    p = subparsers.add_parser(
        "serve",
        help="serve the API and /metrics (and poll the configured targets)",
        description="Serve the HTTP API. With collector.targets configured (and no MQTT) the collector "
        "loop runs in this process; otherwise the service only reads the database.",
    )
    p.add_argument("--config", type=Path, help="TOML config file (default: $FLEETMON_CONFIG, else none)")
    p.set_defaults(handler=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    """Load the configuration, check the schema, serve until SIGINT/SIGTERM."""
    try:
        settings = load_settings(args.config)
        engine = make_engine(settings.storage.url_value())
        schema_ready = True
        try:
            ensure_schema(engine)
        except StorageUnavailableError as exc:
            # Start anyway, not ready (/readyz 503): the runtime prepares the schema once it answers.
            log.warning("database unreachable, serving not ready until it answers: %s", exc)
            schema_ready = False
        runtime = ServiceRuntime.from_settings(settings, engine)
        runtime.schema_ready = schema_ready
    except (ConfigError, StorageError) as exc:
        print(f"fleetmon serve: {exc}", file=sys.stderr)
        return 2
    if runtime.mode == "reader" and settings.session_secrets()[0] is None:
        log.warning(
            "no session secret configured (service.session_secret_env or service.session_secret_file): "
            "dashboard sessions hold on this replica only and end when it restarts"
        )
    log.warning(
        "serving on http://%s:%d in %s mode (%d targets)",
        settings.service.host,
        settings.service.port,
        runtime.mode,
        len(runtime.targets),
    )
    server = Server(uvicorn_config(create_app(runtime), settings.service.host, settings.service.port))
    asyncio.run(server.serve())
    engine.dispose()
    return 0 if server.started else 1
