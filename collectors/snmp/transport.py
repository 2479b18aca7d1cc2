"""SNMPv2c GET and table walks over pysnmp 7 (asyncio), and the one place pysnmp errors are translated.

Values come back as plain Python: integers for every numeric SNMP type, `str` for octet strings
(UTF-8, undecodable bytes replaced) and dotted strings for object identifiers. OIDs are tuples of
ints. No MIB is loaded: every request uses numeric OIDs and `lookupMib=False`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType

from pyasn1.type import univ
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    bulk_cmd,
    get_cmd,
)
from pysnmp.proto import errind, rfc1902, rfc1905
from pysnmp.proto.rfc1902 import ObjectName

from collectors.snmp.errors import PduAuthError, PduConnectionError, PduProtocolError, PduTimeoutError

Oid = tuple[int, ...]
Value = int | str
OidTable = dict[Oid, Value]

# SNMP error-status codes (RFC 3416) that mean "you may not", not "I did not understand".
_AUTH_STATUSES = frozenset({"noAccess", "authorizationError", "notWritable"})
_MAX_WALK_ROWS = 20_000  # a PDU table is a few hundred rows; this only stops a runaway agent


def oid(dotted: str) -> Oid:
    """`"1.3.6.1"` -> `(1, 3, 6, 1)`."""
    return tuple(int(part) for part in dotted.strip(".").split("."))


@dataclass(frozen=True, slots=True)
class SnmpTimeouts:
    """Per-request deadline in seconds and the number of retransmissions after the first try."""

    timeout_s: float
    retries: int

    def __post_init__(self) -> None:
        if self.timeout_s <= 0 or self.retries < 0:
            raise ValueError("timeout_s must be > 0 and retries >= 0")


@dataclass(frozen=True, slots=True)
class SnmpTarget:
    """Where the agent listens and the SNMPv2c community to use (never logged or put in errors)."""

    host: str
    port: int
    community: str

    def __repr__(self) -> str:
        return f"SnmpTarget(host={self.host!r}, port={self.port})"


def _to_python(value: object) -> Value | None:
    """One SNMP value as int/str; None for noSuchObject/noSuchInstance/endOfMibView."""
    if isinstance(value, rfc1905.NoSuchObject | rfc1905.NoSuchInstance | rfc1905.EndOfMibView):
        return None
    if isinstance(value, rfc1902.IpAddress):
        return ".".join(str(b) for b in bytes(value))
    if isinstance(value, univ.OctetString):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, univ.ObjectIdentifier):
        return ".".join(str(part) for part in value)
    if isinstance(value, univ.Integer):  # Integer32, Gauge32/Unsigned32, Counter32/64, TimeTicks
        return int(value)
    raise PduProtocolError(f"unexpected SNMP value type {type(value).__name__}")


def new_engine() -> SnmpEngine:
    """An SNMP engine to share between reads (one per poller).

    Building an engine's MIB view costs up to a second when pysmi is installed (pysnmp then sets up
    its MIB compiler on first use), so pollers should create one and pass it to every read.
    """
    return SnmpEngine()


class SnmpClient:
    """Requests to one agent; use as `async with SnmpClient(...) as client:`.

    With `engine=None` the client makes its own engine and closes it on exit; a shared engine passed
    in is left open for its owner.
    """

    def __init__(
        self,
        target: SnmpTarget,
        timeouts: SnmpTimeouts,
        max_repetitions: int = 25,
        engine: SnmpEngine | None = None,
    ) -> None:
        self._target = target
        self._timeouts = timeouts
        self._max_repetitions = max_repetitions
        self._owns_engine = engine is None
        self._engine = new_engine() if engine is None else engine
        self._auth = CommunityData(target.community, mpModel=1)  # mpModel=1: SNMPv2c
        self._transport: UdpTransportTarget | None = None

    async def __aenter__(self) -> SnmpClient:
        try:
            self._transport = await UdpTransportTarget.create(
                (self._target.host, self._target.port),
                timeout=self._timeouts.timeout_s,
                retries=self._timeouts.retries,
            )
        except Exception as exc:  # pysnmp wraps resolver and socket failures in PySnmpError
            self._close()
            raise PduConnectionError(f"{self._target.host}:{self._target.port}: {exc}") from exc
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._close()

    def _close(self) -> None:
        if self._owns_engine:
            self._engine.close_dispatcher()

    def _where(self) -> str:
        return f"{self._target.host}:{self._target.port}"

    def _check(self, error_indication: object, error_status: object, error_index: object) -> None:
        """Translate pysnmp's error triple into our tree (the single translation boundary)."""
        if error_indication:
            if isinstance(error_indication, errind.RequestTimedOut):
                raise PduTimeoutError(
                    f"{self._where()}: no answer within {self._timeouts.timeout_s:g} s "
                    f"x {self._timeouts.retries + 1} tries (agent down, or wrong community)"
                )
            name = type(error_indication).__name__
            if name in {"UnknownCommunityName", "UnknownSecurityName", "AuthenticationFailure"}:
                raise PduAuthError(f"{self._where()}: {error_indication}")
            raise PduProtocolError(f"{self._where()}: {error_indication}")
        if error_status:
            pretty = getattr(error_status, "prettyPrint", None)
            status = str(pretty()) if callable(pretty) else str(error_status)
            if status in _AUTH_STATUSES:
                raise PduAuthError(f"{self._where()}: agent answered {status}")
            raise PduProtocolError(f"{self._where()}: agent answered {status} at varbind {error_index}")

    def _transport_or_fail(self) -> UdpTransportTarget:
        if self._transport is None:
            raise RuntimeError("SnmpClient used outside `async with`")
        return self._transport

    async def get(self, oids: Iterable[Oid]) -> dict[Oid, Value]:
        """GET the given scalars in one request; OIDs the agent does not have are left out."""
        requested = [ObjectType(ObjectIdentity(ObjectName(o))) for o in oids]
        if not requested:
            return {}
        try:
            indication, status, index, var_binds = await get_cmd(
                self._engine,
                self._auth,
                self._transport_or_fail(),
                ContextData(),
                *requested,
                lookupMib=False,
            )
        except OSError as exc:
            raise PduConnectionError(f"{self._where()}: {exc}") from exc
        self._check(indication, status, index)
        out: dict[Oid, Value] = {}
        for name, value in var_binds:
            converted = _to_python(value)
            if converted is not None:
                out[tuple(name)] = converted
        return out

    async def walk(self, root: Oid) -> OidTable:
        """Every OID under `root` (GETBULK, `max_repetitions` rows per request)."""
        out: OidTable = {}
        cursor = root
        depth = len(root)
        while len(out) < _MAX_WALK_ROWS:
            try:
                indication, status, index, var_binds = await bulk_cmd(
                    self._engine,
                    self._auth,
                    self._transport_or_fail(),
                    ContextData(),
                    0,
                    self._max_repetitions,
                    ObjectType(ObjectIdentity(ObjectName(cursor))),
                    lookupMib=False,
                )
            except OSError as exc:
                raise PduConnectionError(f"{self._where()}: {exc}") from exc
            self._check(indication, status, index)
            if not var_binds:
                return out
            for name, value in var_binds:
                current = tuple(name)
                if current[:depth] != root or isinstance(value, rfc1905.EndOfMibView):
                    return out
                if current <= cursor:
                    raise PduProtocolError(
                        f"{self._where()}: walk went backwards at {'.'.join(map(str, current))}"
                    )
                cursor = current
                converted = _to_python(value)
                if converted is not None:
                    out[current] = converted
        raise PduProtocolError(f"{self._where()}: table under {'.'.join(map(str, root))} never ended")


def column(table: Mapping[Oid, Value], column_oid: Oid) -> dict[Oid, Value]:
    """The rows of one table column, keyed by the index after `column_oid`."""
    depth = len(column_oid)
    return {key[depth:]: value for key, value in table.items() if key[:depth] == column_oid}


def as_int(value: Value | None) -> int | None:
    """An integer cell, or None if absent; a string where a number belongs is a protocol error."""
    if value is None:
        return None
    if isinstance(value, int):
        return value
    raise PduProtocolError(f"expected a number, got {value!r}")


def as_measured(value: Value | None) -> int | None:
    """An integer reading where a negative number means "not measured" (APC's and Sentry's -1): None then."""
    number = as_int(value)
    return None if number is None or number < 0 else number


def first_text(table: Mapping[Oid, Value], column_oid: Oid) -> str | None:
    """The text of a column's first row (lowest index), or None if the column is empty."""
    rows = column(table, column_oid)
    return as_str(rows[min(rows)]) if rows else None


def as_str(value: Value | None) -> str | None:
    """A text cell, or None if absent or empty."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None
