"""How the browser tests and bench/bench_web.py start Debian's chromium, and where screenshots go."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Headless in a container: no sandbox (we are root), no GPU, /tmp instead of a small /dev/shm, and
# none of chromium's own network traffic (updates, sync) to disturb what is measured.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def screenshot_dir() -> Path:
    """$FLEETMON_ARTIFACTS/screenshots (default artifacts/screenshots in the repository), created."""
    base = Path(os.environ.get("FLEETMON_ARTIFACTS") or ROOT / "artifacts")
    path = base / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path
