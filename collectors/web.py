"""Serial number, MAC and hostname from the device's web side, over httpx.

- Antminer: `GET /cgi-bin/get_system_info.cgi` with HTTP digest auth (`serinum`, `macaddr`, `hostname`,
  `minertype`).
- VNish: the AnthillOS JSON API (`POST /api/v1/unlock` for a token, then `GET /api/v1/info`).
- Whatsminer: `get_miner_info` over the API (see the whatsminer driver); nothing to do here.

Contract:
- `WebSession` is shared by every device its owner reads (a Poller, a scan, a probe): timeouts, the
  bound on exchanges at once, and where transports come from. Each exchange runs on its own
  `webnet.ExchangeTransport` (one connection, h11 underneath), closed when the exchange ends (see the
  class). The owner closes the session.
- `DeviceWeb` is one device's web side: the shared session plus this device's login state, an
  `httpx.DigestAuth` (which keeps the device's last challenge, so a later fetch answers it at once
  instead of paying the 401 round trip again) and the VNish token. The poller keeps it with the
  device's cached state.
- Each fetch ends within its `timeout` (the whole exchange, every request of it).
- httpx exceptions become `collectors.errors` exceptions in `_translate`, and only there, always
  `raise ... from exc`: connect refused -> MinerConnectionRefusedError, a close or reset before the
  answer -> MinerConnectionResetError, a deadline -> MinerTimeoutError(phase="web"), other transport
  failures -> MinerConnectionError, a malformed or oversized answer -> MinerProtocolError. A rejected
  login is MinerAuthError naming the credential profile.
- Credentials come by profile name from a typed value; they are never logged and never appear in a
  repr or an exception message (SecretStr; our reprs name the profile only).
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from types import TracebackType

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr

from collectors.errors import (
    MinerAuthError,
    MinerConnectionError,
    MinerConnectionRefusedError,
    MinerConnectionResetError,
    MinerError,
    MinerProtocolError,
    MinerTimeoutError,
)
from collectors.webnet import ExchangeTransport
from collectors.wire import to_str

WEB_PORT = 80
SYSTEM_INFO_PATH = "/cgi-bin/get_system_info.cgi"
VNISH_UNLOCK_PATH = "/api/v1/unlock"
VNISH_INFO_PATH = "/api/v1/info"
MAX_BODY_BYTES = 1024 * 1024
"""The identity pages are a few hundred bytes; a bigger body than this is a fault, not data."""
WEB_MAX_CONNECTIONS = 64
"""Web exchanges at once per session: the identity pages are fetched once per device, and a miner's
lighttpd is slow, so a few dozen at once is plenty and keeps the sockets a poller holds bounded."""

TransportFactory = Callable[[], httpx.AsyncBaseTransport]
"""Makes the transport for one exchange (a new one each time; the exchange closes it)."""


class WebCredentials(BaseModel):
    """One named credential profile for a device web UI (e.g. profile `antminer-default`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: str
    username: str
    password: SecretStr

    def __repr__(self) -> str:
        return f"WebCredentials(profile={self.profile!r})"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class SystemInfo:
    """What the device's web side says about the unit."""

    serial: str | None
    mac: str | None
    hostname: str | None
    model: str | None
    factory_login: bool = False
    """True when the login that read this page used the firmware family's factory credentials (the
    caller says which those are); the credentials themselves never leave this module."""


def parse_system_info(data: dict[str, object]) -> SystemInfo:
    """Pick the identity fields out of a get_system_info.cgi JSON body."""
    mac = to_str(data.get("macaddr"))
    return SystemInfo(
        serial=to_str(data.get("serinum")),
        mac=mac.upper() if mac else None,
        hostname=to_str(data.get("hostname")),
        model=to_str(data.get("minertype")),
    )


def parse_vnish_info(data: dict[str, object]) -> SystemInfo:
    """Pick the identity fields out of a VNish `/api/v1/info` JSON body."""
    system = data.get("system")
    network = system.get("network_status") if isinstance(system, dict) else None
    network = network if isinstance(network, dict) else {}
    mac = to_str(network.get("mac"))
    return SystemInfo(
        serial=to_str(data.get("serial")),
        mac=mac.upper() if mac else None,
        hostname=to_str(network.get("hostname")),
        model=to_str(data.get("model")),
    )


class WebSession:
    """The web sides of many devices, read over httpx; its creator closes it.

    `connect_s` bounds each TCP connect, `read_s` each send and each wait for bytes; at most
    `max_connections` web exchanges run at once (a fetch waits for a slot inside its own `timeout`).

    Each exchange gets its own transport, by default a `webnet.ExchangeTransport`: the digest 401 and
    the authorized retry ride one kept-alive connection as on the miners' lighttpd (a new one if the
    device closed it), and nothing stays open afterwards, since a device's identity page is read once,
    not every cycle, and a 10,000-device poller must not hold 10,000 idle sockets. httpx's AsyncClient
    and httpcore's pool would add cookies, redirects, pool scans and anyio locks nobody here uses, at a
    CPU cost larger than the device's whole API read. Auth is httpx's own (`httpx.DigestAuth`, driven
    through its auth flow exactly as AsyncClient drives it). `transport` replaces the factory (the unit
    tests pass respx's router through `httpx.MockTransport`).
    """

    def __init__(
        self,
        *,
        connect_s: float,
        read_s: float,
        max_connections: int,
        max_body_bytes: int = MAX_BODY_BYTES,
        transport: TransportFactory | None = None,
    ) -> None:
        if connect_s <= 0 or read_s <= 0 or max_connections < 1 or max_body_bytes < 1:
            raise ValueError("web session limits must be positive")
        self.max_body_bytes = max_body_bytes
        self._slots = asyncio.Semaphore(max_connections)
        self._connect_s = connect_s
        self._read_s = read_s
        self._factory = transport  # None: an ExchangeTransport per exchange
        self._closed = False

    def _exchange_transport(self, timeout: float) -> httpx.AsyncBaseTransport:
        if self._factory is not None:
            return self._factory()
        # A per-wait bound no shorter than the whole exchange's can never fire first: leave it out.
        io_s = self._read_s if self._read_s < timeout else None
        return ExchangeTransport(connect_s=self._connect_s, io_s=io_s, max_body=self.max_body_bytes)

    def device(self, antminer: WebCredentials | None, vnish: WebCredentials | None) -> DeviceWeb:
        """The web side of one device, with fresh login state (keep it for the device's lifetime)."""
        return DeviceWeb(self, antminer, vnish)

    @property
    def closed(self) -> bool:
        """True once `aclose` ran."""
        return self._closed

    async def aclose(self) -> None:
        """Refuse further fetches (no connection outlives its exchange, so there is nothing to close)."""
        self._closed = True

    async def __aenter__(self) -> WebSession:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def fetch_json(
        self,
        method: str,
        url: str,
        *,
        timeout: float,
        auth: httpx.Auth | None = None,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        allow_empty: bool = False,
    ) -> tuple[int, dict[str, object]]:
        """One exchange (auth round trips included) within `timeout` seconds: the final status and, for
        a 200, the JSON object of the body (MinerProtocolError when it is not one; with `allow_empty`,
        an empty body is an empty dict); other statuses give an empty dict. Raises only
        `collectors.errors` exceptions."""
        if self._closed:
            raise RuntimeError("the web session is closed")
        with _translate(url, timeout):
            request = httpx.Request(method, url, headers={**_HEADERS, **(headers or {})}, content=content)
            async with asyncio.timeout(timeout), self._slots:
                transport = self._exchange_transport(timeout)
                try:
                    response = await self._send(transport, request, auth or httpx.Auth())
                finally:
                    await transport.aclose()
        if response.status_code != 200:
            return response.status_code, {}
        if allow_empty and not response.content.strip():
            return 200, {}
        return 200, _json_object(url, response.content)

    async def _send(
        self, transport: httpx.AsyncBaseTransport, request: httpx.Request, auth: httpx.Auth
    ) -> httpx.Response:
        """Run the auth flow: send each request it yields, hand it each response, until it is done."""
        flow = auth.async_auth_flow(request)
        try:
            current = await flow.__anext__()
            while True:
                response = await transport.handle_async_request(current)
                await self._read_capped(response)
                try:
                    current = await flow.asend(response)
                except StopAsyncIteration:
                    return response
        finally:
            await flow.aclose()

    async def _read_capped(self, response: httpx.Response) -> None:
        """Have the whole body, within the cap. ExchangeTransport hands it over read and capped already
        (it stops at the cap on the wire); another transport's stream is read here."""
        try:
            body = await response.aread()
        finally:
            await response.aclose()
        if len(body) > self.max_body_bytes:
            raise MinerProtocolError(f"web body exceeds the {self.max_body_bytes}-byte cap")


_HEADERS = {"User-Agent": "fleetmon-collector", "Accept": "application/json"}


class DeviceWeb:
    """The web side of one device: the shared session and this device's login state.

    The digest challenge and the VNish token are kept between fetches, so the next fetch (after the
    device was down and is identified again) needs one request instead of two.
    """

    __slots__ = ("_antminer", "_digest", "_session", "_vnish", "_vnish_token")

    def __init__(
        self, session: WebSession, antminer: WebCredentials | None, vnish: WebCredentials | None
    ) -> None:
        self._session = session
        self._antminer = antminer
        self._vnish = vnish
        self._digest: httpx.DigestAuth | None = None
        self._vnish_token: str | None = None

    def __repr__(self) -> str:
        profiles = [c.profile for c in (self._antminer, self._vnish) if c is not None]
        return f"DeviceWeb(profiles={profiles!r})"

    @property
    def has_antminer(self) -> bool:
        """True when an Antminer CGI profile is configured."""
        return self._antminer is not None

    @property
    def has_vnish(self) -> bool:
        """True when a VNish web API profile is configured."""
        return self._vnish is not None

    async def antminer_system_info(
        self, host: str, *, timeout: float, port: int = WEB_PORT, factory: tuple[str, str] | None = None
    ) -> SystemInfo:
        """GET the system-info CGI with digest auth (the cached challenge first, if any);
        MinerAuthError when the credentials are rejected. `factory` is the firmware's factory
        (user, password): the result's `factory_login` says whether the accepted login was it."""
        body = await self.antminer_cgi(host, SYSTEM_INFO_PATH, body=None, timeout=timeout, port=port)
        assert self._antminer is not None  # antminer_cgi refused a device without the profile
        return _mark_factory(parse_system_info(body), self._antminer, factory)

    async def vnish_info(
        self, host: str, *, timeout: float, port: int = WEB_PORT, factory: tuple[str, str] | None = None
    ) -> SystemInfo:
        """VNish web API: `/api/v1/info` with the cached token, unlocking (`POST /api/v1/unlock
        {"pw": ...}`) first when there is none or the device no longer takes it. Only the profile's
        password is used."""
        body = await self._vnish_call(host, port, "GET", VNISH_INFO_PATH, timeout)
        assert self._vnish is not None  # _vnish_call refused a device without the profile
        return _mark_factory(parse_vnish_info(body), self._vnish, factory, password_only=True)

    async def antminer_cgi(
        self, host: str, path: str, *, body: dict[str, object] | None, timeout: float, port: int = WEB_PORT
    ) -> dict[str, object]:
        """One stock-Antminer CGI call with digest auth: GET without `body`, else POST it as JSON.
        The JSON object answered; MinerAuthError when the credentials are rejected, MinerProtocolError
        for any other status or a body that is not a JSON object."""
        credentials = self._antminer
        if credentials is None:
            raise ValueError("no Antminer web credentials for this device")
        if self._digest is None:
            self._digest = httpx.DigestAuth(credentials.username, credentials.password.get_secret_value())
        url = _url(host, port, path)
        if body is None:
            status, answer = await self._session.fetch_json("GET", url, timeout=timeout, auth=self._digest)
        else:
            status, answer = await self._session.fetch_json(
                "POST",
                url,
                timeout=timeout,
                auth=self._digest,
                headers={"Content-Type": "application/json"},
                content=json.dumps(body).encode(),
            )
        _check(host, credentials, status)
        return answer

    async def vnish_post(
        self, host: str, path: str, *, timeout: float, port: int = WEB_PORT
    ) -> dict[str, object]:
        """One VNish web API action (`POST /api/v1/<path>`, empty JSON body) with the cached token,
        unlocking first when there is none or the device no longer takes it. The JSON object answered
        (an empty body gives an empty dict)."""
        return await self._vnish_call(
            host,
            port,
            "POST",
            f"/api/v1/{path}",
            timeout,
            headers={"Content-Type": "application/json"},
            content=b"{}",
            allow_empty=True,
        )

    async def _vnish_call(
        self,
        host: str,
        port: int,
        method: str,
        path: str,
        timeout: float,
        *,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        allow_empty: bool = False,
    ) -> dict[str, object]:
        """One VNish web API request with the cached token; when there is none, or the device no longer
        takes it, unlock and send it again (within the same `timeout`). The JSON object answered."""
        credentials = self._vnish
        if credentials is None:
            raise ValueError("no VNish web credentials for this device")
        deadline = asyncio.get_running_loop().time() + timeout
        url = _url(host, port, path)
        headers = headers or {}
        if self._vnish_token is not None:
            status, answer = await self._session.fetch_json(
                method,
                url,
                timeout=timeout,
                headers={**headers, **_bearer(self._vnish_token)},
                content=content,
                allow_empty=allow_empty,
            )
            if status == 200:
                return answer
            self._vnish_token = None
        token = await self._vnish_unlock(host, port, credentials, deadline, timeout)
        status, answer = await self._session.fetch_json(
            method,
            url,
            timeout=_remaining(host, deadline, timeout),
            headers={**headers, **_bearer(token)},
            content=content,
            allow_empty=allow_empty,
        )
        _check(host, credentials, status)
        return answer

    async def _vnish_unlock(
        self, host: str, port: int, credentials: WebCredentials, deadline: float, timeout: float
    ) -> str:
        """`POST /api/v1/unlock {"pw": ...}` with the profile's password; the token is kept for next time."""
        secret = json.dumps({"pw": credentials.password.get_secret_value()}).encode()
        status, unlock = await self._session.fetch_json(
            "POST",
            _url(host, port, VNISH_UNLOCK_PATH),
            timeout=_remaining(host, deadline, timeout),
            headers={"Content-Type": "application/json"},
            content=secret,
        )
        _check(host, credentials, status)
        token = unlock.get("token")
        if not isinstance(token, str) or not token:
            raise MinerProtocolError(f"{host}: VNish unlock answered without a token")
        self._vnish_token = token
        return token


def _mark_factory(
    info: SystemInfo,
    credentials: WebCredentials,
    factory: tuple[str, str] | None,
    *,
    password_only: bool = False,
) -> SystemInfo:
    """`info` with `factory_login` set when the accepted credentials are the factory ones (a
    password-only UI compares the password alone)."""
    if factory is None:
        return info
    user, password = factory
    same_password = hmac.compare_digest(credentials.password.get_secret_value().encode(), password.encode())
    same_user = password_only or hmac.compare_digest(credentials.username.encode(), user.encode())
    return replace(info, factory_login=same_password and same_user)


def _url(host: str, port: int, path: str) -> str:
    netloc = f"[{host}]" if ":" in host else host
    return f"http://{netloc}{path}" if port == WEB_PORT else f"http://{netloc}:{port}{path}"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _remaining(host: str, deadline: float, timeout: float) -> float:
    remaining = deadline - asyncio.get_running_loop().time()
    if remaining <= 0:
        raise MinerTimeoutError(f"{host}: web side did not answer within {timeout}s", phase="web")
    return remaining


def _check(host: str, credentials: WebCredentials, status: int) -> None:
    if status in (401, 403):
        raise MinerAuthError(f"{host}: web login rejected the credentials of profile {credentials.profile!r}")
    if status != 200:
        raise MinerProtocolError(f"{host}: web side answered HTTP {status}")


def _json_object(url: str, body: bytes) -> dict[str, object]:
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise MinerProtocolError(f"{url}: web body is not JSON", data=body) from exc
    if not isinstance(data, dict):
        raise MinerProtocolError(f"{url}: web body is not a JSON object", data=body)
    return data


_DROPPED = (httpx.ReadError, httpx.WriteError, httpx.CloseError)


@contextmanager
def _translate(url: str, timeout: float) -> Iterator[None]:
    """The one place where httpx (and deadline) exceptions become `collectors.errors` ones."""
    try:
        yield
    except MinerError:
        raise
    except (TimeoutError, httpx.TimeoutException) as exc:
        raise MinerTimeoutError(f"{url}: web side did not answer within {timeout}s", phase="web") from exc
    except httpx.ConnectError as exc:
        if _caused_by(exc, ConnectionRefusedError):
            raise MinerConnectionRefusedError(f"{url}: web port refused the connection") from exc
        raise MinerConnectionError(f"{url}: no web connection ({exc})") from exc
    except _DROPPED as exc:
        raise MinerConnectionResetError(f"{url}: web server dropped the connection") from exc
    except httpx.RemoteProtocolError as exc:
        # h11 says "without sending a response" / "incomplete ... read" for a close mid-answer.
        if "without sending" in str(exc) or "incomplete" in str(exc).lower():
            raise MinerConnectionResetError(f"{url}: web server closed before a full answer") from exc
        raise MinerProtocolError(f"{url}: malformed HTTP answer ({exc})") from exc
    except httpx.TransportError as exc:
        raise MinerConnectionError(f"{url}: web request failed ({type(exc).__name__})") from exc
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise MinerProtocolError(f"{url}: unusable HTTP exchange ({type(exc).__name__})") from exc


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False
