"""The shipped Mosquitto configuration (deploy/mosquitto/) enforced by a real Mosquitto.

The test starts `mosquitto` with deploy/mosquitto/mosquitto.conf adapted to a temporary directory (paths
moved there, its two listeners moved to free ports on 127.74.0.1, logging to a file) and the shipped ACL
file unchanged; the password file is made by `mosquitto_passwd` and the TLS certificate by `openssl`,
here. Then real MQTT 5 clients check what the configuration promises:

- a client without a password, or with a wrong one, is refused on both listeners;
- a site's collector publishes under its own site only: Mosquitto drops a publish the ACL denies without
  telling a subscriber, so an ingester-user subscriber on the shared subscription must see site A's
  messages and none of what A published under site B (A's own message, published after, marks the end);
- the ingester user reads but cannot publish, under any site, its own name included;
- a collector's retained site status reaches readers that subscribe later, and no other site can
  overwrite it; an ACL-denied QoS 1 publish is answered "not authorized" (so the collector spools it);
- TLS on the second listener, verified against the test's certificate.

A broker with a permissive ACL, started the same way, shows that each check sees a forbidden message
when one does get through: without it, "nothing arrived" could pass for a broken harness.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import paho.mqtt.client as paho
import pytest
from conftest import ROOT, services_required
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

MOSQUITTO_DIR = ROOT / "deploy" / "mosquitto"
HOST = "127.74.0.1"  # this module's loopback address (127.74.0.0/16 belongs to these tests)
PASSWORDS = {
    "tx1": "pw-tx1-7f3a",
    "ga2": "pw-ga2-91c2",
    "ingest": "pw-ingest-5d0e",
    "fleetmon-api": "pw-api-2b8c",
}
SHARED_SAMPLES = "$share/fleetmon/fleetmon/v1/+/+/sample"
PERMISSIVE_ACL = "pattern readwrite #\n"


def _tool(name: str) -> str:
    path = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None)
    if path is None:
        message = f"{name} is not installed (apt-get install mosquitto openssl)"
        if services_required():
            pytest.fail(message + " and FLEETMON_REQUIRE_SERVICES=1")
        pytest.skip(message)
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.2):
            return True
    except OSError:
        return False


def adapt_config(text: str, directory: Path, plain_port: int, tls_port: int, host: str | None = None) -> str:
    """The shipped mosquitto.conf with its paths under `directory` and its listeners on `host` (this
    module's HOST, read at call time: other modules patch it), test ports."""
    host = host or HOST
    text = text.replace("/mosquitto/config/", f"{directory}/").replace("/mosquitto/certs/", f"{directory}/")
    text = text.replace("/mosquitto/data/", f"{directory}/data/")
    text, plain = re.subn(r"^listener 1883$", f"listener {plain_port} {host}", text, flags=re.M)
    text, tls = re.subn(r"^listener 8883$", f"listener {tls_port} {host}", text, flags=re.M)
    assert plain == 1 and tls == 1, "the shipped config no longer has listeners 1883 and 8883"
    text = re.sub(r"^log_dest .*$", f"log_dest file {directory}/mosquitto.log", text, flags=re.M)
    # Started as root here, mosquitto would drop to a `mosquitto` user that cannot read the test's files.
    return text + "user root\n"


@dataclass
class Broker:
    directory: Path
    plain_port: int
    tls_port: int
    ca_file: Path
    process: subprocess.Popen[bytes]

    def client(self, user: str | None, *, password: str | None = None, tls: bool = False) -> aiomqtt.Client:
        """An MQTT 5 client of the broker as `user` (None: anonymous), with that user's password."""
        return aiomqtt.Client(
            HOST,
            self.tls_port if tls else self.plain_port,
            username=user,
            password=password if password is not None else PASSWORDS.get(user or ""),
            protocol=aiomqtt.ProtocolVersion.V5,
            tls_params=aiomqtt.TLSParameters(ca_certs=str(self.ca_file), cert_reqs=ssl.CERT_REQUIRED)
            if tls
            else None,
            timeout=10,
        )

    def log(self) -> str:
        path = self.directory / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""


def start_broker(directory: Path, acl: str | None = None) -> Broker:
    """mosquitto with the shipped configuration under `directory` (and the shipped ACL unless `acl`)."""
    mosquitto, passwd, openssl = _tool("mosquitto"), _tool("mosquitto_passwd"), _tool("openssl")
    directory.mkdir(parents=True)
    (directory / "data").mkdir()
    plain_port, tls_port = _free_port(), _free_port()
    config = adapt_config((MOSQUITTO_DIR / "mosquitto.conf").read_text(), directory, plain_port, tls_port)
    (directory / "mosquitto.conf").write_text(config)
    (directory / "acl").write_text(acl if acl is not None else (MOSQUITTO_DIR / "acl").read_text())
    password_file = directory / "passwd"
    password_file.touch()
    for user, password in PASSWORDS.items():
        subprocess.run([passwd, "-b", str(password_file), user, password], check=True, timeout=30)
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(directory / "server.key"), "-out", str(directory / "server.crt"), "-days", "1",
         "-subj", f"/CN={HOST}", "-addext", f"subjectAltName=IP:{HOST}"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    process = subprocess.Popen(
        [mosquitto, "-c", str(directory / "mosquitto.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    broker = Broker(directory, plain_port, tls_port, directory / "server.crt", process)
    deadline = time.monotonic() + 10
    while not (_listening(plain_port) and _listening(tls_port)):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_broker(broker)
            stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise RuntimeError(f"mosquitto did not start:\n{stderr}\n{broker.log()}")
        time.sleep(0.05)
    return broker


def stop_broker(broker: Broker) -> None:
    if broker.process.poll() is None:
        broker.process.terminate()
        broker.process.wait(10)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """The shipped configuration and ACL."""
    started = start_broker(tmp_path_factory.mktemp("mosquitto") / "shipped")
    yield started
    stop_broker(started)


@pytest.fixture(scope="module")
def open_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """The shipped configuration with an ACL that allows everything: the control group."""
    started = start_broker(tmp_path_factory.mktemp("mosquitto") / "permissive", acl=PERMISSIVE_ACL)
    yield started
    stop_broker(started)


async def _refused(client: aiomqtt.Client) -> aiomqtt.MqttError:
    with pytest.raises(aiomqtt.MqttError) as caught:
        async with client:
            pass
    return caught.value


async def _received_until(
    subscriber: aiomqtt.Client, marker_topic: str, timeout: float = 10.0
) -> list[tuple[str, bytes]]:
    """Messages the subscriber gets up to and including the first on `marker_topic` (retained ones aside)."""
    seen: list[tuple[str, bytes]] = []
    async with asyncio.timeout(timeout):
        async for message in subscriber.messages:
            if message.retain:  # left by an earlier test on this broker, not published by this one
                continue
            payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
            seen.append((str(message.topic), payload))
            if str(message.topic) == marker_topic:
                return seen
    raise AssertionError("subscription ended before the marker arrived")


async def _cross_site_publish(broker: Broker) -> list[tuple[str, bytes]]:
    """tx1's collector publishes under ga2, then under tx1; what an ingester-user subscriber receives."""
    marker = "fleetmon/v1/tx1/10.20.0.11_4028/sample"
    async with broker.client("ingest") as ingester, broker.client("tx1") as collector:
        await ingester.subscribe(SHARED_SAMPLES, qos=1)
        await collector.publish("fleetmon/v1/ga2/10.30.0.5_4028/sample", b'{"forged": true}', qos=1)
        await collector.publish(marker, b'{"site": "tx1"}', qos=1)
        return await _received_until(ingester, marker)


async def _ingester_publish(broker: Broker) -> list[tuple[str, bytes]]:
    """The ingester user publishes under a site and under its own name; what a reader receives."""
    marker = "fleetmon/v1/tx1/10.20.0.12_4028/sample"
    async with broker.client("fleetmon-api") as reader, broker.client("ingest") as ingester:
        await reader.subscribe("fleetmon/v1/#", qos=1)
        await ingester.publish("fleetmon/v1/tx1/10.20.0.99_4028/sample", b'{"forged": true}', qos=1)
        await ingester.publish("fleetmon/v1/ingest/10.20.0.99_4028/sample", b'{"forged": true}', qos=1)
        async with broker.client("tx1") as collector:
            await collector.publish(marker, b'{"site": "tx1"}', qos=1)
        return await _received_until(reader, marker)


# ---- the configuration as shipped ---------------------------------------------------------------------


def test_shipped_config_refuses_anonymous_clients_and_points_at_password_and_acl_files() -> None:
    text = (MOSQUITTO_DIR / "mosquitto.conf").read_text()
    settings = [line.split(None, 1) for line in text.splitlines() if line and not line.startswith("#")]
    values = {key: value for key, value in settings if key != "listener"}
    assert values["allow_anonymous"] == "false"
    assert values["per_listener_settings"] == "false"
    assert values["password_file"] and values["acl_file"]
    assert values["certfile"] and values["keyfile"]
    assert not any(key == "allow_anonymous" and value != "false" for key, value in settings)


async def test_anonymous_clients_are_refused_on_both_listeners(broker: Broker) -> None:
    plain = await _refused(broker.client(None))
    tls = await _refused(broker.client(None, tls=True))
    for error in (plain, tls):
        assert "authori" in str(error).lower(), error


async def test_a_wrong_password_is_refused(broker: Broker) -> None:
    error = await _refused(broker.client("tx1", password="not-the-password"))
    assert "authori" in str(error).lower() or "password" in str(error).lower(), error


async def test_a_collector_publishing_under_another_site_reaches_no_ingester(broker: Broker) -> None:
    received = await _cross_site_publish(broker)
    assert [topic for topic, _ in received] == ["fleetmon/v1/tx1/10.20.0.11_4028/sample"]
    assert all(b"forged" not in payload for _, payload in received)


async def test_the_ingester_user_cannot_publish(broker: Broker) -> None:
    received = await _ingester_publish(broker)
    assert [topic for topic, _ in received] == ["fleetmon/v1/tx1/10.20.0.12_4028/sample"]


async def _site_statuses(broker: Broker) -> dict[str, bytes]:
    """tx1 and ga2 retain "online"; ga2 then tries to retain "offline" for tx1. What a late reader gets."""
    async with broker.client("tx1") as collector:
        await collector.publish("fleetmon/v1/tx1/status", b"online", qos=1, retain=True)
    async with broker.client("ga2") as collector:
        await collector.publish("fleetmon/v1/ga2/status", b"online", qos=1, retain=True)
        await collector.publish("fleetmon/v1/tx1/status", b"offline", qos=1, retain=True)
    async with broker.client("fleetmon-api") as reader:
        await reader.subscribe("fleetmon/v1/+/status", qos=1)
        statuses: dict[str, bytes] = {}
        async with asyncio.timeout(10):
            async for message in reader.messages:
                assert message.retain
                payload = message.payload if isinstance(message.payload, bytes) else b""
                statuses[str(message.topic)] = payload
                if len(statuses) == 2:
                    break
    return statuses


async def test_retained_site_status_reaches_a_later_reader_and_no_other_site_can_forge_it(
    broker: Broker,
) -> None:
    statuses = await _site_statuses(broker)
    assert statuses == {"fleetmon/v1/ga2/status": b"online", "fleetmon/v1/tx1/status": b"online"}


async def test_a_site_publishes_over_tls_with_a_verified_certificate(broker: Broker) -> None:
    marker = "fleetmon/v1/ga2/10.30.0.6_4028/sample"
    async with broker.client("ingest", tls=True) as ingester, broker.client("ga2", tls=True) as collector:
        await ingester.subscribe(SHARED_SAMPLES, qos=1)
        await collector.publish(marker, b'{"site": "ga2"}', qos=1)
        assert [topic for topic, _ in await _received_until(ingester, marker)] == [marker]


def _reply_to_plain_connect(port: int) -> bytes:
    """The first bytes a listener sends back to a plain-text MQTT 5 CONNECT (anonymous, empty id)."""
    connect = bytes.fromhex("100d00044d5154540502003c000000")  # fixed header, 13 bytes
    with socket.create_connection((HOST, port), timeout=5) as sock:
        sock.sendall(connect)
        sock.settimeout(5)
        try:
            return sock.recv(16)
        except (ConnectionResetError, TimeoutError):
            return b""


def test_the_tls_listener_does_not_speak_plain_mqtt(broker: Broker) -> None:
    # The plain listener answers the same bytes with a CONNACK (refusing the anonymous client): the
    # probe is a well-formed CONNECT, so silence from the TLS port means TLS, not a broken probe.
    assert _reply_to_plain_connect(broker.plain_port)[:1] == b"\x20"
    assert _reply_to_plain_connect(broker.tls_port)[:1] != b"\x20"


def test_a_denied_publish_is_answered_not_authorized_so_the_collector_keeps_it(broker: Broker) -> None:
    # fleetmon's MQTT sink treats a PUBACK reason of 0x80 or more as "broker unavailable" and keeps the
    # samples in its spool: a collector logged in under the wrong site loses nothing, its spool grows.
    acks: dict[int, ReasonCode] = {}
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.username_pw_set("tx1", PASSWORDS["tx1"])
    client.on_publish = lambda _client, _userdata, mid, reason, _properties: acks.__setitem__(mid, reason)
    client.connect(HOST, broker.plain_port)
    client.loop_start()
    try:
        denied = client.publish("fleetmon/v1/ga2/10.30.0.9_4028/sample", b"{}", qos=1)
        allowed = client.publish("fleetmon/v1/tx1/10.20.0.9_4028/sample", b"{}", qos=1)
        denied.wait_for_publish(10)
        allowed.wait_for_publish(10)
        deadline = time.monotonic() + 10
        while len(acks) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        client.loop_stop()
        client.disconnect()
    assert acks[denied.mid].value == 0x87, acks[denied.mid]  # Not authorized
    assert acks[allowed.mid].value < 0x80, acks[allowed.mid]  # success (0x10: nobody subscribed)


# ---- the control group: the same checks see a forbidden message when the ACL lets it through ----------


async def test_harness_sees_a_cross_site_publish_when_the_acl_allows_it(open_broker: Broker) -> None:
    received = await _cross_site_publish(open_broker)
    assert [topic for topic, _ in received] == [
        "fleetmon/v1/ga2/10.30.0.5_4028/sample",
        "fleetmon/v1/tx1/10.20.0.11_4028/sample",
    ]


async def test_harness_sees_an_ingester_publish_when_the_acl_allows_it(open_broker: Broker) -> None:
    received = await _ingester_publish(open_broker)
    assert [topic for topic, _ in received][:2] == [
        "fleetmon/v1/tx1/10.20.0.99_4028/sample",
        "fleetmon/v1/ingest/10.20.0.99_4028/sample",
    ]


async def test_harness_sees_a_forged_site_status_when_the_acl_allows_it(open_broker: Broker) -> None:
    statuses = await _site_statuses(open_broker)
    assert statuses["fleetmon/v1/tx1/status"] == b"offline"
