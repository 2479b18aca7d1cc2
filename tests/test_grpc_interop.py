"""gRPC interop with an independent implementation: grpcio (Google's C-core gRPC) on both sides of ours.

collectors/grpc_client.py and the simulator's BOSer server (collectors/simulator/personalities/
boser_grpc.py) are both written on h2 here, and tests/test_actions_braiins.py has one talk to the other.
That proves they agree with each other, not that they speak gRPC. So: grpcio's client logs in to the
simulated Braiins OS+ miner and stops it, and the collectors' client calls a grpcio server, reading its
message, its initial metadata and a trailers-only error the way a real BOSer answers them.

Messages are encoded with collectors.protobuf (the point here is HTTP/2 framing, headers and trailers,
not the protobuf codec, which tests/test_actions_braiins.py round-trips). Test addresses: 127.45.7.0/29.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from collectors import protobuf
from collectors.connection import Timeouts
from collectors.errors import MinerAPIError, MinerAuthError
from collectors.grpc_client import GrpcConnection
from collectors.simulator.device import SimState
from collectors.simulator.fleet import simulated_fleet

grpc = pytest.importorskip("grpc")
grpc_aio = pytest.importorskip("grpc.aio")

TIMEOUTS = Timeouts(connect=1.0, read=2.0, device=4.0)
LOGIN = "/braiins.bos.v1.AuthenticationService/Login"
STOP = "/braiins.bos.v1.ActionsService/Stop"
START = "/braiins.bos.v1.ActionsService/Start"


def _unary(channel: object, path: str) -> object:
    # Raw bytes in and out: no generated stubs, as the collectors use none either.
    return channel.unary_unary(path, request_serializer=None, response_deserializer=None)  # type: ignore[attr-defined]


async def test_grpcio_logs_in_to_the_simulated_boser_and_stops_then_starts_the_miner() -> None:
    async with simulated_fleet(1, mix="braiins:1", subnet="127.45.7.0/29", seed=3) as fleet:
        dev = fleet.devices[0].device
        assert dev.state is SimState.MINING
        async with grpc_aio.insecure_channel(f"{dev.ip}:50051") as channel:
            call = _unary(channel, LOGIN)(protobuf.encode([(1, "root")]), timeout=5)
            await call
            token = dict(await call.initial_metadata()).get("authorization")
            assert token, "Login answers its token in the authorization header"
            await _unary(channel, STOP)(b"", metadata=(("authorization", token),), timeout=5)
            assert dev.state is SimState.SLEEPING
            await _unary(channel, START)(b"", metadata=(("authorization", token),), timeout=5)
            assert dev.state is SimState.MINING

            with pytest.raises(grpc_aio.AioRpcError) as refused:
                await _unary(channel, STOP)(b"", metadata=(("authorization", "forged"),), timeout=5)
            assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
            assert dev.state is SimState.MINING

            with pytest.raises(grpc_aio.AioRpcError) as wrong:
                await _unary(channel, LOGIN)(protobuf.encode([(1, "root"), (2, "not-it")]), timeout=5)
            assert wrong.value.code() is grpc.StatusCode.UNAUTHENTICATED


@pytest.fixture
async def grpcio_server() -> AsyncIterator[int]:
    """A grpcio server with two methods: Echo answers its request reversed, with initial metadata;
    Deny aborts with UNAUTHENTICATED (a trailers-only answer, as BOSer's refusals are)."""

    async def echo(request: bytes, context: object) -> bytes:
        await context.send_initial_metadata((("authorization", "token-123"),))  # type: ignore[attr-defined]
        return request[::-1]

    async def deny(request: bytes, context: object) -> bytes:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad login")  # type: ignore[attr-defined]
        raise AssertionError("abort raises")

    handlers = {
        "Echo": grpc.unary_unary_rpc_method_handler(echo),
        "Deny": grpc.unary_unary_rpc_method_handler(deny),
    }
    server = grpc_aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("fleetmon.test.Probe", handlers),))
    port = server.add_insecure_port("127.45.7.6:0")
    await server.start()
    try:
        yield port
    finally:
        await server.stop(None)


async def test_the_collectors_client_reads_a_grpcio_server(grpcio_server: int) -> None:
    async with GrpcConnection("127.45.7.6", grpcio_server, TIMEOUTS) as conn:
        reply = await conn.call("/fleetmon.test.Probe/Echo", b"abc\x00\xff")
        assert reply.message == b"\xff\x00cba"
        assert reply.headers.get("authorization") == "token-123"
        with pytest.raises(MinerAuthError):
            await conn.call("/fleetmon.test.Probe/Deny", b"")
        # The connection carries the next call after a refused one, as an action's calls follow a login.
        assert (await conn.call("/fleetmon.test.Probe/Echo", b"xy")).message == b"yx"
        with pytest.raises(MinerAPIError):  # UNIMPLEMENTED, in grpcio's own words
            await conn.call("/fleetmon.test.Probe/Missing", b"")
