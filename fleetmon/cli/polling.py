"""The poller's command-line options, shared by `fleetmon poll` and `fleetmon collect`.

Both commands read a fleet the same way, so they take the same flags with the same defaults and build
their `Poller` here: `--concurrency` (devices in flight, capped by the file-descriptor limit),
`--timeout` (the hard per-device deadline), `--workers` (poller processes, see collectors.workers:
`auto`, the default, picks one per core for a fleet large enough to repay starting them) and the web
credential flags.

Web credentials: stock Antminer's CGI uses profile `antminer-default` (root/root, the vendor default),
VNish's web API profile `vnish-default` (password admin). `--web-user-env`/`--web-password-env` (and
`--vnish-password-env`) name environment variables that override them; values are never logged.
"""

from __future__ import annotations

import argparse
import os
import resource

from pydantic import SecretStr

from collectors.poller import Poller, PollerSettings, tune_gc_for_polling
from collectors.web import WebCredentials
from collectors.workers import PollerPool, auto_workers, poller_for

DEFAULT_CONCURRENCY = 1000
DEFAULT_TIMEOUT_S = 5.0
DEFAULT_CONNECT_S = 1.0
FD_PER_DEVICE = 6  # a device read opens up to ~5 connections at once (Whatsminer), plus slack
FD_RESERVE = 256


class CliError(Exception):
    """A problem with the command line or its inputs; printed as one line, exit status 2."""


def positive(text: str) -> float:
    """argparse type: a number above zero."""
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def count(text: str) -> int:
    """argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def workers(text: str) -> int | None:
    """argparse type of `--workers`: `auto` (None: chosen from the cores and the fleet) or a count."""
    if text == "auto":
        return None
    try:
        return count(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError("must be auto or a number of at least 1") from exc


def worker_count(requested: int | None, targets: int) -> int:
    """The poller processes to run: the number asked for, else `auto_workers` for this many targets."""
    return requested if requested is not None else auto_workers(targets)


def add_web_flags(parser: argparse.ArgumentParser) -> None:
    """The web credential flags (`--no-web` and the environment-variable names)."""
    parser.add_argument("--no-web", action="store_true", help="never call the web CGI (no serial/MAC)")
    parser.add_argument("--web-user-env", metavar="VAR", help="env var holding the Antminer web user")
    parser.add_argument("--web-password-env", metavar="VAR", help="env var holding the Antminer password")
    parser.add_argument("--vnish-password-env", metavar="VAR", help="env var holding the VNish password")


def add_poller_flags(parser: argparse.ArgumentParser) -> None:
    """`--concurrency`, `--timeout`, `--workers` and the web flags, as `build_poller` reads them."""
    parser.add_argument("--concurrency", type=count, default=DEFAULT_CONCURRENCY, help="devices in flight")
    parser.add_argument(
        "--workers",
        type=workers,
        default=None,
        metavar="N|auto",
        help="poller processes, each reading a fixed share of the fleet (default auto: one per core when "
        "the fleet is large enough to repay starting them, else 1)",
    )
    parser.add_argument(
        "--timeout",
        type=positive,
        default=DEFAULT_TIMEOUT_S,
        help="hard deadline per device for the whole read, identification included (seconds)",
    )
    add_web_flags(parser)


def _env(name: str | None, default: str) -> str:
    if name is None:
        return default
    value = os.environ.get(name)
    if value is None:
        raise CliError(f"environment variable {name} is not set")
    return value


def web_credentials(args: argparse.Namespace) -> tuple[WebCredentials | None, WebCredentials | None]:
    """The Antminer CGI and VNish profiles the flags select (None, None with --no-web)."""
    if args.no_web:
        return None, None
    antminer = WebCredentials(
        profile="antminer-default" if not args.web_password_env else "antminer-env",
        username=_env(args.web_user_env, "root"),
        password=SecretStr(_env(args.web_password_env, "root")),
    )
    vnish = WebCredentials(
        profile="vnish-default" if not args.vnish_password_env else "vnish-env",
        username="admin",
        password=SecretStr(_env(args.vnish_password_env, "admin")),
    )
    return antminer, vnish


def _raise_fd_limit(needed: int) -> int:
    """Lift the soft descriptor limit toward the hard one; returns the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, needed)) if hard != resource.RLIM_INFINITY else max(soft, needed)
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def fit_concurrency(concurrency: int) -> int:
    """The concurrency the descriptor limit allows (lifting the soft limit first)."""
    soft = _raise_fd_limit(concurrency * FD_PER_DEVICE + FD_RESERVE)
    return max(1, min(concurrency, (soft - FD_RESERVE) // FD_PER_DEVICE))


def poller_settings(args: argparse.Namespace) -> PollerSettings:
    """The PollerSettings the flags of `add_poller_flags` describe; CliError for a missing env var."""
    antminer, vnish = web_credentials(args)
    return PollerSettings(
        concurrency=fit_concurrency(args.concurrency),
        deadline_s=args.timeout,
        connect_s=min(DEFAULT_CONNECT_S, args.timeout),
        credentials=antminer,
        vnish_credentials=vnish,
    )


def build_poller(args: argparse.Namespace, targets: int) -> Poller | PollerPool:
    """A Poller for the flags, or a PollerPool when `--workers` (or its auto choice for `targets`
    devices) is above 1; create it inside the event loop that will use it, close it after. Polling is
    this process's job from here on, so the garbage collector is tuned for it."""
    tune_gc_for_polling()
    return poller_for(poller_settings(args), worker_count(args.workers, targets))
