"""The web readers (Antminer CGI with digest auth, VNish token API) on httpx.

Unit tests of the HTTP layer mock the device with a respx router, handed to the session as its httpx
transport (the real capture as the body); the rest runs over real sockets through the real transport:
the simulator's web servers, and small local servers that speak HTTP/1.1 the way lighttpd does
(keep-alive, chunked bodies) or misbehave on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
import respx
from pydantic import SecretStr

from collectors.errors import (
    MinerAuthError,
    MinerConnectionError,
    MinerConnectionRefusedError,
    MinerConnectionResetError,
    MinerProtocolError,
    MinerTimeoutError,
)
from collectors.simulator.fleet import simulated_fleet
from collectors.web import MAX_BODY_BYTES, WebCredentials, WebSession, parse_system_info
from collectors.webnet import ExchangeTransport

GOOD = WebCredentials(profile="antminer-default", username="root", password=SecretStr("root"))
WRONG = WebCredentials(profile="site-a", username="root", password=SecretStr("hunter2-secret"))
VNISH = WebCredentials(profile="vnish-default", username="admin", password=SecretStr("admin"))
VNISH_WRONG = WebCredentials(profile="vnish-site-b", username="admin", password=SecretStr("swordfish-9"))
HOST = "10.20.30.40"
CGI_URL = f"http://{HOST}/cgi-bin/get_system_info.cgi"
REALM = "antMiner Configuration"
CHALLENGE = f'Digest realm="{REALM}", nonce="6a3f09c2", qop="auth", algorithm="MD5"'
_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|([^\s,]+))')


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def digest_valid(header: str, method: str, user: str, password: str) -> bool:
    """An independent RFC 7616 (MD5, qop=auth) check of an Authorization header."""
    if not header.startswith("Digest "):
        return False
    p = {m.group(1): m.group(2) if m.group(2) is not None else m.group(3) for m in _PARAM.finditer(header)}
    ha1 = _md5(f"{user}:{p['realm']}:{password}")
    ha2 = _md5(f"{method}:{p['uri']}")
    expected = _md5(f"{ha1}:{p['nonce']}:{p['nc']}:{p['cnonce']}:auth:{ha2}")
    return p.get("username") == user and p["response"] == expected


@pytest.fixture
def capture(captures_dir: Path) -> bytes:
    return (captures_dir / "antminer" / "s21_web_get_system_info.json").read_bytes()


@pytest.fixture
def router() -> respx.MockRouter:
    """The mocked devices: a request no route matches fails the test."""
    return respx.MockRouter(assert_all_mocked=True)


def mocked(router: respx.MockRouter) -> Callable[[], httpx.AsyncBaseTransport]:
    return lambda: httpx.MockTransport(router.async_handler)


@pytest.fixture
async def session(router: respx.MockRouter) -> AsyncIterator[WebSession]:
    async with WebSession(connect_s=1.0, read_s=2.0, max_connections=4, transport=mocked(router)) as web:
        yield web


def digest_route(router: respx.MockRouter, body: bytes, seen: list[str | None] | None = None) -> respx.Route:
    """The CGI behind digest auth. `seen` collects each request's Authorization header as it arrived
    (httpx's auth flow sends the same Request object again, so the recorded calls show it as it ended)."""

    def answer(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request.headers.get("authorization"))
        if digest_valid(request.headers.get("authorization", ""), request.method, "root", "root"):
            return httpx.Response(200, content=body, headers={"Content-Type": "application/json"})
        return httpx.Response(401, headers={"WWW-Authenticate": CHALLENGE}, text="401 Unauthorized")

    return router.get(CGI_URL).mock(side_effect=answer)


# ------------------------------------------------------------------------------- respx: the HTTP layer
def test_system_info_capture_gives_serial_mac_hostname(capture: bytes) -> None:
    info = parse_system_info(json.loads(capture))
    assert (info.serial, info.hostname, info.model) == ("THQING0BDJAB024NF", "Antminer", "Antminer S21")
    assert info.mac == "02:55:97:22:3M:72"


async def test_digest_401_then_authorized_200_reads_the_capture(
    router: respx.MockRouter, session: WebSession, capture: bytes
) -> None:
    seen: list[str | None] = []
    route = digest_route(router, capture, seen)
    info = await session.device(GOOD, None).antminer_system_info(HOST, timeout=2)
    assert (info.serial, info.mac, info.hostname) == ("THQING0BDJAB024NF", "02:55:97:22:3M:72", "Antminer")
    assert route.call_count == 2
    first, second = seen
    assert first is None
    assert second is not None
    assert second.startswith("Digest ") and 'realm="antMiner Configuration"' in second


async def test_later_fetch_answers_the_cached_challenge_in_one_request(
    router: respx.MockRouter, session: WebSession, capture: bytes
) -> None:
    device = session.device(GOOD, None)
    seen: list[str | None] = []
    route = digest_route(router, capture, seen)
    await device.antminer_system_info(HOST, timeout=2)
    await device.antminer_system_info(HOST, timeout=2)
    assert route.call_count == 3  # 401 + 200, then one authorized 200
    assert seen[2] is not None and seen[2].startswith("Digest ")


async def test_wrong_password_is_auth_error_naming_the_profile_not_the_password(
    router: respx.MockRouter, session: WebSession, capture: bytes
) -> None:
    digest_route(router, capture)
    with pytest.raises(MinerAuthError) as caught:
        await session.device(WRONG, None).antminer_system_info(HOST, timeout=2)
    text = f"{caught.value} {caught.value!r} {WRONG!r} {WRONG} {session.device(WRONG, None)!r}"
    assert "site-a" in str(caught.value)
    assert "hunter2" not in text


@pytest.mark.parametrize("timeout_kind", [httpx.ConnectTimeout, httpx.ReadTimeout, httpx.PoolTimeout])
async def test_httpx_timeouts_become_miner_timeout(
    router: respx.MockRouter, session: WebSession, timeout_kind: type[Exception]
) -> None:
    router.get(CGI_URL).mock(side_effect=timeout_kind("deadline"))
    with pytest.raises(MinerTimeoutError) as caught:
        await session.device(GOOD, None).antminer_system_info(HOST, timeout=2)
    assert caught.value.phase == "web" and isinstance(caught.value.__cause__, timeout_kind)


async def test_connect_error_becomes_miner_connection_error(
    router: respx.MockRouter, session: WebSession
) -> None:
    """respx replaces the exception's cause chain, so the refused errno is tested over a real socket
    (test_closed_web_port_is_connection_refused); here: no httpx exception leaks out."""
    router.get(CGI_URL).mock(side_effect=httpx.ConnectError("All connection attempts failed"))
    with pytest.raises(MinerConnectionError) as caught:
        await session.device(GOOD, None).antminer_system_info(HOST, timeout=2)
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


async def test_chunked_body_in_pieces_is_read_whole(
    router: respx.MockRouter, session: WebSession, capture: bytes
) -> None:
    class Pieces(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            for start in range(0, len(capture), 37):
                yield capture[start : start + 37]

    router.get(CGI_URL).mock(
        return_value=httpx.Response(200, headers={"Transfer-Encoding": "chunked"}, stream=Pieces())
    )
    info = await session.device(GOOD, None).antminer_system_info(HOST, timeout=2)
    assert info.serial == "THQING0BDJAB024NF"


@pytest.mark.parametrize(
    "body", [b"<html><body>Antminer</body></html>", b'["not", "an object"]', b'{"serinum": "trunc'], ids=str
)
async def test_body_that_is_not_a_json_object_is_protocol_error(
    router: respx.MockRouter, session: WebSession, body: bytes
) -> None:
    router.get(CGI_URL).mock(return_value=httpx.Response(200, content=body))
    with pytest.raises(MinerProtocolError) as caught:
        await session.device(GOOD, None).antminer_system_info(HOST, timeout=2)
    assert repr(body[:10])[2:-1] in str(caught.value)  # names the start of the bytes


async def test_oversized_body_is_protocol_error(
    router: respx.MockRouter,
) -> None:
    huge = b'{"pad": "' + b"x" * 5000 + b'"}'
    async with WebSession(
        connect_s=1, read_s=2, max_connections=1, max_body_bytes=4096, transport=mocked(router)
    ) as small:
        router.get(CGI_URL).mock(return_value=httpx.Response(200, content=huge))
        with pytest.raises(MinerProtocolError, match="cap"):
            await small.device(GOOD, None).antminer_system_info(HOST, timeout=2)


async def test_other_http_status_is_protocol_error(router: respx.MockRouter, session: WebSession) -> None:
    router.get(CGI_URL).mock(return_value=httpx.Response(404, text="not found"))
    with pytest.raises(MinerProtocolError, match="404"):
        await session.device(GOOD, None).antminer_system_info(HOST, timeout=2)


def vnish_routes(router: respx.MockRouter, token: str = "tok-1") -> tuple[respx.Route, respx.Route]:
    def unlock(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content) == {"pw": "admin"}:
            return httpx.Response(200, json={"token": token})
        return httpx.Response(401, json={"err": "Wrong password"})

    def info(request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") != f"Bearer {token}":
            return httpx.Response(401, json={"err": "Unauthorized"})
        network = {"mac": "aa:bb:cc:00:11:22", "hostname": "vnish-7"}
        return httpx.Response(
            200, json={"serial": "VN123", "model": "Antminer S19", "system": {"network_status": network}}
        )

    return (
        router.post(f"http://{HOST}/api/v1/unlock").mock(side_effect=unlock),
        router.get(f"http://{HOST}/api/v1/info").mock(side_effect=info),
    )


async def test_vnish_unlock_then_info_then_cached_token(
    router: respx.MockRouter, session: WebSession
) -> None:
    device = session.device(None, VNISH)
    unlock, info_route = vnish_routes(router)
    info = await device.vnish_info(HOST, timeout=2)
    again = await device.vnish_info(HOST, timeout=2)
    assert (info.serial, info.mac, info.hostname) == ("VN123", "AA:BB:CC:00:11:22", "vnish-7")
    assert again == info
    assert (unlock.call_count, info_route.call_count) == (1, 2)  # the second read reused the token


async def test_vnish_rejected_token_unlocks_again(router: respx.MockRouter, session: WebSession) -> None:
    device = session.device(None, VNISH)
    vnish_routes(router, token="first")
    await device.vnish_info(HOST, timeout=2)
    router.clear()  # the device rebooted: new token
    unlock, info_route = vnish_routes(router, token="second")
    info = await device.vnish_info(HOST, timeout=2)
    assert info.serial == "VN123"
    assert (unlock.call_count, info_route.call_count) == (1, 2)


async def test_vnish_wrong_password_is_auth_error_without_the_password(
    router: respx.MockRouter, session: WebSession
) -> None:
    vnish_routes(router)
    with pytest.raises(MinerAuthError) as caught:
        await session.device(None, VNISH_WRONG).vnish_info(HOST, timeout=2)
    assert "vnish-site-b" in str(caught.value) and "swordfish" not in f"{caught.value!r} {caught.value}"


# ------------------------------------------------------------------------------------- real sockets
async def test_digest_cgi_on_simulated_antminer_gives_serial_and_mac() -> None:
    async with (
        simulated_fleet(2, mix="antminer:1", subnet="127.41.0.0/29", seed=4) as fleet,
        WebSession(connect_s=1, read_s=3, max_connections=2) as session,
    ):
        for row in fleet.manifest:
            info = await session.device(GOOD, None).antminer_system_info(str(row["ip"]), timeout=3)
            assert info.serial == row["serial"]
            assert info.mac == row["mac"]
            assert info.model == row["model"]


async def test_rejected_credentials_on_simulator_raise_auth_error_without_the_password() -> None:
    async with (
        simulated_fleet(1, mix="antminer:1", subnet="127.41.0.8/29", seed=4) as fleet,
        WebSession(connect_s=1, read_s=3, max_connections=1) as session,
    ):
        with pytest.raises(MinerAuthError) as caught:
            await session.device(WRONG, None).antminer_system_info(str(fleet.manifest[0]["ip"]), timeout=3)
    assert "site-a" in str(caught.value)
    assert "hunter2" not in str(caught.value) and "hunter2" not in repr(WRONG)


async def test_vnish_web_api_on_simulator_gives_serial_and_mac() -> None:
    async with (
        simulated_fleet(2, mix="vnish:1", subnet="127.41.0.16/29", seed=4) as fleet,
        WebSession(connect_s=1, read_s=3, max_connections=2) as session,
    ):
        for row in fleet.manifest:
            info = await session.device(None, VNISH).vnish_info(str(row["ip"]), timeout=3)
            assert (info.serial, info.mac) == (row["serial"], row["mac"])


class Lighttpd:
    """A digest-protected HTTP/1.1 server on a real socket that keeps connections alive and sends its
    200 bodies chunked, as lighttpd's CGI does; it counts requests and connections."""

    def __init__(self, body: bytes, *, drop_after_401: bool = False) -> None:
        self.body = body
        self.drop_after_401 = drop_after_401  # close silently after a 401, no `Connection: close`
        self.requests: list[str | None] = []  # the Authorization header of each request
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
                method = head[0].split(" ")[0]
                headers = {
                    k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:] if h)
                }
                auth = headers.get("authorization")
                self.requests.append(auth)
                if auth is not None and digest_valid(auth, method, "root", "root"):
                    chunks = [self.body[i : i + 50] for i in range(0, len(self.body), 50)]
                    payload = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
                        b"Server: lighttpd/1.4.32\r\nX-Odd-Header:   spaced  \r\n\r\n" + payload
                    )
                else:
                    page = b"<h1>401 Unauthorized</h1>"
                    writer.write(
                        b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: %s\r\nContent-Length: %d\r\n\r\n%s"
                        % (CHALLENGE.encode(), len(page), page)
                    )
                    if self.drop_after_401:
                        await writer.drain()
                        break
                await writer.drain()
        writer.close()


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def serve(handler: Handler, host: str) -> AsyncIterator[int]:
    server = await asyncio.start_server(handler, host, 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                await server.wait_closed()


async def test_lighttpd_style_keepalive_and_chunked_reply_counted_at_the_server(capture: bytes) -> None:
    lighttpd = Lighttpd(capture)
    async with (
        serve(lighttpd.handle, "127.41.0.40") as port,
        WebSession(connect_s=1, read_s=3, max_connections=2) as session,
    ):
        device = session.device(GOOD, None)
        first = await device.antminer_system_info("127.41.0.40", timeout=3, port=port)
        assert len(lighttpd.requests) == 2 and lighttpd.requests[0] is None
        assert lighttpd.connections == 1  # the 401 and the authorized retry rode one connection
        second = await device.antminer_system_info("127.41.0.40", timeout=3, port=port)
    assert first.serial == second.serial == "THQING0BDJAB024NF"
    # The second fetch answered the cached challenge: one request, not a new 401 round trip.
    assert len(lighttpd.requests) == 3 and lighttpd.requests[2] is not None
    # Nothing stays open between fetches (a poller meets thousands of devices): the second is its own.
    assert lighttpd.connections == 2


async def test_retry_after_a_silently_dropped_401_connection_opens_a_new_one(capture: bytes) -> None:
    # Some web servers close after the 401 without saying so: the retry must notice the dead
    # connection (the socket reads EOF) and dial again instead of failing on it.
    lighttpd = Lighttpd(capture, drop_after_401=True)
    async with (
        serve(lighttpd.handle, "127.41.0.41") as port,
        WebSession(connect_s=1, read_s=3, max_connections=1) as session,
    ):
        info = await session.device(GOOD, None).antminer_system_info("127.41.0.41", timeout=3, port=port)
    assert info.serial == "THQING0BDJAB024NF"
    assert lighttpd.connections == 2 and len(lighttpd.requests) == 2


async def test_closed_web_port_is_connection_refused() -> None:
    async with serve(Lighttpd(b"{}").handle, "127.41.0.41") as port:
        pass  # the port is free again: nothing listens there now
    async with WebSession(connect_s=1, read_s=2, max_connections=1) as session:
        with pytest.raises(MinerConnectionRefusedError):
            await session.device(GOOD, None).antminer_system_info("127.41.0.41", timeout=2, port=port)


def canned(answer: bytes, *, then_close: bool = False) -> Handler:
    """A web server that reads the request, sends `answer`, then closes or holds the connection."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(4096)
        writer.write(answer)
        await writer.drain()
        if then_close:
            writer.close()
        else:
            await asyncio.sleep(30)

    return handle


async def fetch_from(handler: Handler, host: str, *, read_s: float = 2.0, timeout: float = 2.0) -> None:
    """One Antminer CGI fetch from `handler` served on `host`, through the real transport."""
    async with (
        serve(handler, host) as port,
        WebSession(connect_s=1, read_s=read_s, max_connections=1) as session,
    ):
        await session.device(GOOD, None).antminer_system_info(host, timeout=timeout, port=port)


async def test_silent_web_server_becomes_miner_timeout() -> None:
    with pytest.raises(MinerTimeoutError):
        await fetch_from(canned(b""), "127.41.0.30", read_s=5, timeout=0.3)


async def test_malformed_status_line_is_protocol_error_not_an_httpx_one() -> None:
    with pytest.raises(MinerProtocolError) as caught:
        await fetch_from(canned(b"HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\n{}"), "127.41.0.31")
    assert isinstance(caught.value.__cause__, httpx.RemoteProtocolError)  # h11's verdict, translated


async def test_declared_oversized_body_is_refused_before_it_is_read() -> None:
    sent = 0

    async def huge(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        await reader.read(4096)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 500000000\r\n\r\n")
        with contextlib.suppress(ConnectionError):
            for _ in range(2000):
                writer.write(b"x" * 65536)
                await writer.drain()
                sent += 65536

    async with (
        serve(huge, "127.41.0.32") as port,
        WebSession(connect_s=1, read_s=2, max_connections=1, max_body_bytes=4096) as session,
    ):
        with pytest.raises(MinerProtocolError, match="500000000 bytes exceeds the 4096-byte cap"):
            await session.device(GOOD, None).antminer_system_info("127.41.0.32", timeout=5, port=port)
    assert sent < 64 * 1024 * 1024  # the client hung up; it did not drain the 500 MB


async def test_endless_chunked_body_stops_at_the_cap() -> None:
    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(4096)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        with contextlib.suppress(ConnectionError):
            while True:
                writer.write(b"1000\r\n" + b"y" * 4096 + b"\r\n")
                await writer.drain()

    async with (
        serve(endless, "127.41.0.33") as port,
        WebSession(connect_s=1, read_s=2, max_connections=1, max_body_bytes=100_000) as session,
    ):
        with pytest.raises(MinerProtocolError, match="exceeds the 100000-byte cap"):
            await session.device(GOOD, None).antminer_system_info("127.41.0.33", timeout=5, port=port)


async def test_close_in_the_middle_of_the_body_is_a_reset() -> None:
    answer = b'HTTP/1.1 200 OK\r\nContent-Length: 400\r\n\r\n{"serinum": "SN'
    with pytest.raises(MinerConnectionResetError):
        await fetch_from(canned(answer, then_close=True), "127.41.0.34")


async def test_each_wait_for_bytes_is_bounded_by_read_s_not_only_the_fetch_timeout() -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n{"
    with pytest.raises(MinerTimeoutError) as caught:
        await fetch_from(canned(answer), "127.41.0.35", read_s=0.2, timeout=20)
    # read_s ended it (the transport's ReadTimeout), not the 20 s fetch deadline (asyncio's TimeoutError).
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)


async def test_a_transport_never_sends_a_request_down_another_origins_connection(capture: bytes) -> None:
    first, second = Lighttpd(capture), Lighttpd(capture)
    transport = ExchangeTransport(connect_s=1, io_s=2, max_body=MAX_BODY_BYTES)
    async with serve(first.handle, "127.41.0.36") as port_a, serve(second.handle, "127.41.0.37") as port_b:
        try:
            for host, port in (("127.41.0.36", port_a), ("127.41.0.37", port_b)):
                request = httpx.Request("GET", f"http://{host}:{port}/cgi-bin/get_system_info.cgi")
                response = await transport.handle_async_request(request)
                assert response.status_code == 401
        finally:
            await transport.aclose()
    assert (first.connections, len(first.requests)) == (1, 1)
    assert (second.connections, len(second.requests)) == (1, 1)
