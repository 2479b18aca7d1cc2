"""/metrics gzip and runtime families: compressed once per snapshot version, one valid gzip member per
scrape, this process's `process_*`/`python_*` families appended at every scrape, through the real app
over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import shutil
import socket
import subprocess
import tempfile
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from conftest import services_required
from prometheus_client.parser import text_string_to_metric_families
from test_metrics_exposition import _snapshot

from fleetmon.service.exposition import GzipHead, accepts_gzip
from fleetmon.service.live import LiveFleet, render_snapshot

RUNTIME = ("process_", "python_")


def _gunzip_one_member(data: bytes) -> bytes:
    """The body of a gzip stream that must be exactly one complete member (what every client decodes:
    httpx, for one, stops at the end of the first member and drops the rest)."""
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    body = decoder.decompress(data)
    assert decoder.eof and decoder.unused_data == b"", "not exactly one complete gzip member"
    return body


def _fleet_part(body: bytes) -> bytes:
    """The body without this process's runtime families."""
    lines = body.decode().splitlines(keepends=True)
    kept = [
        line for line in lines if not line.removeprefix("# HELP ").removeprefix("# TYPE ").startswith(RUNTIME)
    ]
    return "".join(kept).encode()


def _family_names(body: bytes) -> set[str]:
    return {family.name for family in text_string_to_metric_families(body.decode())}


async def test_gzip_body_is_compressed_once_per_version_and_decodes_to_the_plain_body() -> None:
    live = LiveFleet(_snapshot())
    first = await live.metrics(gzip=True)
    second = await live.metrics(gzip=True)
    plain = await live.metrics()
    assert (live.renders, live.compressions) == (1, 1)
    fleet = render_snapshot(live.snapshot)
    for body in (_gunzip_one_member(first), _gunzip_one_member(second), plain):
        assert body.startswith(fleet)
        assert _fleet_part(body) == fleet
    live.swap(_snapshot())
    assert _gunzip_one_member(await live.metrics(gzip=True)).startswith(render_snapshot(live.snapshot))
    assert (live.renders, live.compressions) == (2, 2)


async def test_concurrent_first_scrapes_of_a_version_render_and_compress_it_once() -> None:
    live = LiveFleet(_snapshot())
    bodies = await asyncio.gather(*(live.metrics(gzip=i % 2 == 0) for i in range(6)))
    assert (live.renders, live.compressions) == (1, 1)
    fleet = render_snapshot(live.snapshot)
    assert all(_fleet_part(_gunzip_one_member(b) if i % 2 == 0 else b) == fleet for i, b in enumerate(bodies))


async def test_every_scrape_appends_fresh_runtime_families_to_the_cached_fleet_body() -> None:
    live = LiveFleet(_snapshot())
    names = _family_names(await live.metrics())
    assert {
        "process_cpu_seconds",
        "process_resident_memory_bytes",
        "process_open_fds",
        "python_info",
    } <= names
    assert {"python_gc_collections", "fleetmon_miner_up"} <= names

    def collections(body: bytes) -> float:
        families = {f.name: f for f in text_string_to_metric_families(body.decode())}
        return sum(s.value for s in families["python_gc_collections"].samples)

    before = collections(await live.metrics())
    gc.collect()  # one more (full) collection than the first scrape saw
    assert collections(await live.metrics()) >= before + 1
    assert collections(_gunzip_one_member(await live.metrics(gzip=True))) >= before + 1
    assert live.renders == 1


def test_gzip_head_finishes_into_one_member_per_tail() -> None:
    head = GzipHead(b"a" * 100_000)
    assert _gunzip_one_member(head.finish(b"tail one\n")) == b"a" * 100_000 + b"tail one\n"
    assert _gunzip_one_member(head.finish(b"")) == b"a" * 100_000  # the head is reused, never consumed


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("deflate, GZIP;q=0.5", True),
        ("identity", False),
        ("", False),
        (None, False),
        ("gzip;q=0", False),
        ("gzip;q=0.0, *", False),  # gzip refused by name: the wildcard does not bring it back
        ("*", True),
        ("*;q=0", False),
        ("gzip;q=nonsense", False),
        ("br", False),
    ],
)
def test_accept_encoding_is_read_by_name_and_quality(header: str | None, expected: bool) -> None:
    assert accepts_gzip(header) is expected


def test_promtool_accepts_the_gzipped_body_with_runtime_families() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if services_required():
            pytest.fail("promtool is not installed (Debian package prometheus)")
        pytest.skip("promtool is not installed")
    body = _gunzip_one_member(asyncio.run(LiveFleet(_snapshot()).metrics(gzip=True)))
    result = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, check=False)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert result.stdout.strip() == b"" and result.stderr.strip() == b""


@contextlib.contextmanager
def _served_app() -> Iterator[tuple[str, str, LiveFleet]]:
    """The real app over a LiveFleet, uvicorn on a free loopback port; yields (URL, viewer key, live)."""
    from fleetmon.config import ServiceSettings, Settings, StorageSettings
    from fleetmon.service.app import create_app
    from fleetmon.service.auth import Role, create_key
    from fleetmon.service.runtime import ServiceRuntime
    from fleetmon.storage.engine import make_engine, upgrade

    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'gzip.db'}")
        upgrade(engine)
        _, key = create_key(engine, Role.VIEWER, "gzip-test")
        live = LiveFleet(_snapshot())
        runtime = ServiceRuntime(
            settings=Settings(storage=StorageSettings(), service=ServiceSettings()), engine=engine, live=live
        )
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        server = uvicorn.Server(
            uvicorn.Config(create_app(runtime, manage_runtime=False), log_level="warning")
        )
        thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{sock.getsockname()[1]}", key, live
        finally:
            server.should_exit = True
            thread.join(30)
            engine.dispose()


def test_metrics_route_gzips_for_a_scraper_that_accepts_it() -> None:
    with _served_app() as (url, key, live):
        auth = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=url, headers=auth, timeout=30) as client:
            for _ in range(100):  # uvicorn starts in its thread
                with contextlib.suppress(httpx.TransportError):
                    client.get("/healthz")
                    break
            plain = client.get("/metrics", headers={"Accept-Encoding": "identity"})
            with client.stream("GET", "/metrics", headers={"Accept-Encoding": "gzip"}) as response:
                raw = b"".join(response.iter_raw())
                gzipped = response
    assert plain.status_code == 200 and "content-encoding" not in plain.headers
    assert plain.headers["vary"] == "Accept-Encoding"
    assert gzipped.headers["content-encoding"] == "gzip" and gzipped.headers["vary"] == "Accept-Encoding"
    assert gzipped.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert int(gzipped.headers["content-length"]) == len(raw)
    assert _fleet_part(_gunzip_one_member(raw)) == _fleet_part(plain.content)
    assert "process_cpu_seconds" in _family_names(plain.content)
    assert (live.renders, live.compressions) == (1, 1)
