"""Who is this device: make, model, firmware vendor and version, and which driver dialect reads it.

`classify` is pure: it takes whatever replies identification gathered (version, devdetails, and when
those say too little, summary/stats/pools) and returns an Identity. `classify_web` does the same for an
HTTP answer from port 80 (status, headers, body), for the scanner. `identify_device` in `reader.py` does
the I/O. Classification follows protocols.md 2.4/2.5: Braiins (BOSminer/BOSer) -> Whatsminer
(btminer/bitmicro) -> LuxOS -> Auradine (GCMiner/FluxOS) -> SealMiner (BDMiner) -> Antminer (with VNish,
Hiveon, MaraFW, MSKminer, asicseer, A.P. and other vendors read from the Type and miner strings) -> Avalon.

Positive evidence only. A make is named when a reply names the brand (a `Type` or model string that
starts with a known brand, "Antminer S19", "Whatsminer M30S", "SealMiner A2") or a firmware only that
maker's machines run names itself (btminer, BDMiner, GCMiner/FluxOS, LUXminer, BOSminer, VNish, the
`rwglr` bmminer build of MSKminer and Hiveon) or
leaves its own mark (btminer's `Power_RT`/`Factory GHS` summary fields, cgminer's Avalon driver
`MM ID` strings and `AV` device IDs). A reply *layout* proves nothing: other makers' cgminer forks copy
Bitmain's stats keys (`GHS 5s`, `chain_acn1`) whole. A device whose replies name no brand keeps its
reported type string as `model`, gets `make=None` (so it counts as unknown in every maker figure, never
as Bitmain's) and is still read by the closest dialect, so its hashrate, temperatures and pools are
reported.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from enum import StrEnum

from collectors.framing import Reply
from collectors.models import branded_lookup
from collectors.wire import first, first_or_msg, section, to_str


class Dialect(StrEnum):
    """The driver that reads a device."""

    ANTMINER = "antminer"
    BRAIINS = "braiins"
    LUXOS = "luxos"
    WHATSMINER = "whatsminer"
    WHATSMINER_V3 = "whatsminer_v3"
    AVALON = "avalon"
    AURADINE = "auradine"
    SEALMINER = "sealminer"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Identity:
    """What identification learned; the poller caches it and passes it back as `known`.

    `model` is the canonical table name when the model is in the table, else the wire string as sent.
    `api_port` is the port the driver talks to (4028, or 4433 for Whatsminer API v3).
    """

    host: str
    api_port: int
    dialect: Dialect
    make: str | None = None
    model: str | None = None
    firmware_vendor: str | None = None
    firmware_version: str | None = None
    mac: str | None = None
    serial: str | None = None
    hostname: str | None = None
    api_write_open: bool | None = None
    """Posture learned once per identification (collectors.posture): `privileged` granted (None: not
    asked or no clear answer)."""
    web_default_login: bool | None = None
    """The web UI accepted the firmware's factory login (None: no login was made)."""

    def with_model(self, wire_model: str | None) -> Identity:
        """A copy with the model filled from a wire string, when it was not known yet."""
        if self.model or not wire_model:
            return self
        return replace(self, model=canonical_model(wire_model, self.make))


def canonical_model(wire_model: str, make: str | None) -> str:
    """The table name for a wire model string, or the cleaned wire string when the table lacks it.

    Without a make the wire string is kept as sent: a device that names no brand must not borrow one
    from a look-alike model code ("S19 Pro" on a clone is not an Antminer S19 Pro).
    """
    spec = branded_lookup(wire_model, make)
    return spec.name if spec is not None else wire_model.strip()


BRANDS: tuple[tuple[str, str], ...] = (
    ("ANTMINER", "Antminer"),
    ("BITMAIN", "Antminer"),
    ("WHATSMINER", "Whatsminer"),
    ("MICROBT", "Whatsminer"),
    ("AVALONMINER", "Avalon"),
    ("AVALON", "Avalon"),
    ("CANAAN", "Avalon"),
    ("SEALMINER", "SealMiner"),
    ("BITDEER", "SealMiner"),
    ("AURADINE", "Auradine"),
    ("TERAFLUX", "Auradine"),
)
"""Brand words a model string may start with, and the make each names."""


def brand_of(model: str | None) -> str | None:
    """The make a model string names by its first word ("Antminer S19" -> "Antminer"), else None."""
    if not model:
        return None
    words = model.strip().upper().split()
    head = words[0] if words else ""
    return next((make for brand, make in BRANDS if head == brand), None)


def with_brand(make: str, wire_model: str | None) -> str | None:
    """`wire_model` with the make's name in front when the firmware sends the bare code ("A2")."""
    if not wire_model or brand_of(wire_model) is not None:
        return wire_model
    return f"{make} {wire_model.strip()}"


_VENDOR_IN_TYPE = (
    ("VNISH", "vnish"),
    ("7MINERS", "vnish"),
    ("HIVEON", "hiveon"),
    ("A.P.", "ap"),
    ("ASICSEER", "asicseer"),
    ("BRAIINS", "braiins"),
    ("LUXOS", "luxos"),
)


def _text(reply: Reply | None) -> str:
    return json.dumps(reply).upper() if reply is not None else ""


_VERSION_SUFFIX = re.compile(r"\s+v\.(\d+(?:\.\d+)+)$", re.IGNORECASE)
"""A firmware release after the model in a `Type` (MSKminer: `S19-88 v.2.6.0.39`); the dot after the
`v` keeps a model's own words (`D3 Blissz v2.06 beta`) out of it."""
ANTMINER_ONLY_BUILDS = ("RWGLR",)
"""Marks in the `BMMiner`/`CGMiner` string of bmminer builds made only for Bitmain's control boards (the
MSKminer and Hiveon builds, `4.11.1 rwglr`): the make, even where the `Type` names no brand."""


def antminer_type(type_field: str) -> tuple[str, str | None, str | None]:
    """Split an Antminer `Type` like `Antminer S9 (vnish 3.8.6)` into (model, vendor, vendor version)."""
    clean = type_field.split("\n", maxsplit=1)[0].strip()
    vendor: str | None = None
    version: str | None = None
    suffix = _VERSION_SUFFIX.search(clean)
    if suffix:
        version = suffix.group(1)
        clean = clean[: suffix.start()].strip()
    match = re.search(r"\(([^)]*)\)", clean)
    if match:
        inner = match.group(1)
        for marker, name in _VENDOR_IN_TYPE:
            if marker in inner.upper():
                vendor = name
                number = re.search(r"(\d+(?:\.\d+)+(?:-\S+)?)", inner)
                version = number.group(1) if number else None
        clean = clean[: match.start()].strip()
    upper = clean.upper()
    for marker, name in _VENDOR_IN_TYPE:
        if vendor is None and upper.endswith(" " + marker):
            vendor = name
            clean = clean[: -len(marker)].strip()
    return clean, vendor, version


def classify(
    version: Reply | None,
    devdetails: Reply | None,
    probe: dict[str, Reply] | None = None,
    *,
    host: str,
    port: int,
) -> Identity:
    """Identity from the replies gathered (any may be None); `Dialect.UNKNOWN` when nothing fits."""
    probe = probe or {}
    text = _text(version) + _text(devdetails)
    ver = first(version, "VERSION")
    dev = first(devdetails, "DEVDETAILS")
    base = Identity(host=host, api_port=port, dialect=Dialect.UNKNOWN)

    if "BOSMINER" in text or "BOSER" in text:
        fw = to_str(ver.get("BOSer") or ver.get("BOSminer+") or ver.get("BOSminer"))
        model = to_str(dev.get("Model"))
        if model:
            model = re.sub(r"^Bitmain\s+", "", model)
        ident = replace(
            base, dialect=Dialect.BRAIINS, make="Antminer", firmware_vendor="braiins", firmware_version=fw
        )
        return ident.with_model(model)

    if "BTMINER" in text or "BITMICRO" in text or _looks_whatsminer(probe):
        model = to_str(dev.get("Model"))
        if model:
            model = model.replace("_", "")
        ident = replace(base, dialect=Dialect.WHATSMINER, make="Whatsminer", firmware_vendor="stock")
        return ident.with_model(model)

    if "LUXMINER" in text:
        model = to_str(ver.get("Type"))
        ident = replace(
            base,
            dialect=Dialect.LUXOS,
            make="Antminer",
            firmware_vendor="luxos",
            firmware_version=to_str(ver.get("LUXminer")),
        )
        return ident.with_model(antminer_type(model)[0] if model else None)

    # The firmware names itself in VERSION and in every reply's STATUS Description.
    marks = text + _descriptions(probe)
    stats0 = first(probe.get("stats"), "STATS")
    if "GCMINER" in marks or "FLUXOS" in marks:
        ident = replace(
            base,
            dialect=Dialect.AURADINE,
            make="Auradine",
            firmware_vendor="stock",
            firmware_version=to_str(ver.get("GCMiner") or ver.get("FluxOS")),
        )
        return ident.with_model(with_brand("Auradine", to_str(dev.get("Model"))))

    if "BDMINER" in marks:
        wire = to_str(dev.get("Model")) or to_str(stats0.get("Model"))
        ident = replace(
            base,
            dialect=Dialect.SEALMINER,
            make="SealMiner",
            firmware_vendor="stock",
            firmware_version=to_str(ver.get("BDMiner")),
        )
        return ident.with_model(with_brand("SealMiner", wire))

    type_field = to_str(ver.get("Type")) or to_str(stats0.get("Type"))
    # The miner string is in VERSION, and in the stats version block when `version` is refused.
    miner_block = ver if ver.get("Type") else stats0
    miner_string = " ".join(
        s
        for s in (
            to_str(miner_block.get("BMMiner")),
            to_str(miner_block.get("CGMiner")),
            to_str(miner_block.get("CompileTime")),
        )
        if s
    ).upper()
    antminer_build = any(mark in miner_string for mark in ANTMINER_ONLY_BUILDS)
    if type_field and ("ANTMINER" in type_field.upper() or antminer_build):
        model, vendor, vendor_version = antminer_type(type_field)
        if vendor is None:
            if "HIVEON" in text:
                vendor = "hiveon"
            elif "KAONSU" in text:
                vendor = "marafw"
            elif "RWGLR" in miner_string:
                vendor = "mskminer"
            elif "ASICSEER" in miner_string:
                vendor = "asicseer"
                vendor_version = _after(miner_string, "ASICSEER-")
            else:
                vendor = "stock"
        fw_version = vendor_version or to_str(ver.get("CompileTime"))
        ident = replace(
            base,
            dialect=Dialect.ANTMINER,
            make="Antminer",
            firmware_vendor=vendor,
            firmware_version=fw_version,
        )
        return ident.with_model(model)

    if "AVALON" in marks or _looks_avalon(probe):
        wire = _avalon_model(ver, probe)
        mac = to_str(ver.get("MAC"))
        if mac and ":" not in mac and len(mac) == 12:
            mac = ":".join(mac[i : i + 2] for i in range(0, 12, 2))
        ident = replace(
            base,
            dialect=Dialect.AVALON,
            make="Avalon",
            firmware_vendor="stock",
            firmware_version=to_str(ver.get("VERSION") or ver.get("CGVERSION")),
            mac=mac.upper() if mac else None,
        )
        return ident.with_model(wire)

    if "VNISH" in marks:  # VNish is built for Bitmain's control boards only
        return replace(base, dialect=Dialect.ANTMINER, make="Antminer", firmware_vendor="vnish")
    if type_field or _looks_antminer(probe):
        # bmminer's reply layout, but no reply names a brand (a clone, or a maker we do not know): read
        # with the Antminer dialect, the make only from a brand word its type string starts with.
        model = antminer_type(type_field)[0] if type_field else None
        return replace(base, dialect=Dialect.ANTMINER, make=brand_of(model)).with_model(model)
    return base


def _descriptions(probe: dict[str, Reply]) -> str:
    """The STATUS Descriptions of the probe replies (where cgminer forks put their own name), upper-cased."""
    return " ".join(
        str(record.get("Description", "")) for reply in probe.values() for record in section(reply, "STATUS")
    ).upper()


def _after(text: str, marker: str) -> str | None:
    index = text.find(marker)
    return text[index + len(marker) :].split(maxsplit=1)[0].lower() if index >= 0 else None


def _looks_whatsminer(probe: dict[str, Reply]) -> bool:
    summary = first_or_msg(probe.get("summary"), "SUMMARY")
    if any(key in summary for key in ("Fan Speed In", "Power_RT", "Factory GHS", "Error Code Count")):
        return True
    stats = first(probe.get("stats"), "STATS")
    return str(stats.get("ID", "")).startswith("SM")


def _looks_avalon(probe: dict[str, Reply]) -> bool:
    for record in section(probe.get("stats"), "STATS"):
        if str(record.get("ID", "")).startswith("AV") or any(k.startswith("MM ID") for k in record):
            return True
    return False


def _looks_antminer(probe: dict[str, Reply]) -> bool:
    return any("chain_acn1" in r or "GHS 5s" in r for r in section(probe.get("stats"), "STATS"))


def _avalon_model(ver: dict[str, object], probe: dict[str, Reply]) -> str | None:
    prod = to_str(ver.get("PROD"))
    model = to_str(ver.get("MODEL"))
    if prod and prod.upper().startswith("AVALONMINER") and model:
        four_digits = re.match(r"(\d{4})-(?:[A-Z]+-)?\d+$", model, re.IGNORECASE)
        if four_digits:  # "1246-83", "1246-N-90": the A12/A13 line, named by its four digits
            return "Avalon " + four_digits.group(1)
        return model  # "AvalonMiner 15-194" -> "15-194"
    if prod:
        return prod
    for record in section(probe.get("stats"), "STATS"):
        for key, value in record.items():
            if key.startswith("MM ID") and isinstance(value, str):
                match = re.search(r"Ver\[([^\]]+)\]", value)
                if match:
                    ver_text = match.group(1)
                    if ver_text.startswith("Q-"):
                        return "Avalon Q"
                    if re.match(r"\d\d-\d", ver_text):
                        return ver_text.split("-")[0] + "-" + ver_text.split("-")[1]
                    digits = re.match(r"\d+", ver_text)
                    if digits:
                        code = digits.group(0)
                        return "Avalon " + (code[:4] if code.startswith("1") else code[:3])
    return None


def classify_v3(device_info: Reply, *, host: str, port: int) -> Identity:
    """Identity from a Whatsminer API v3 `get.device.info` reply."""
    msg = device_info.get("msg") if isinstance(device_info.get("msg"), dict) else {}
    assert isinstance(msg, dict)
    miner = msg.get("miner") if isinstance(msg.get("miner"), dict) else {}
    system = msg.get("system") if isinstance(msg.get("system"), dict) else {}
    network = msg.get("network") if isinstance(msg.get("network"), dict) else {}
    assert isinstance(miner, dict) and isinstance(system, dict) and isinstance(network, dict)
    wire = to_str(miner.get("type"))
    ident = Identity(
        host=host,
        api_port=port,
        dialect=Dialect.WHATSMINER_V3,
        make="Whatsminer",
        firmware_vendor="stock",
        firmware_version=to_str(system.get("fwversion")),
        mac=to_str(network.get("mac")),
        serial=to_str(miner.get("miner-sn")),
        hostname=to_str(network.get("hostname")),
    )
    return ident.with_model(wire.replace("_", "") if wire else None)


@dataclass(frozen=True, slots=True)
class WebHint:
    """What the port-80 web page says about the device."""

    make: str | None
    firmware_vendor: str | None


def classify_web(status: int, headers: dict[str, str], body: str) -> WebHint | None:
    """Make and firmware vendor from an HTTP answer (401 antMiner realm, Whatsminer 307 + luci, ...)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    realm = lowered.get("www-authenticate", "")
    if status == 401 and "antminer" in realm.lower():
        return WebHint("Antminer", "stock")
    text = body[:65536]
    if "Braiins OS" in text or "BraiinsOS" in text:
        return WebHint("Antminer", "braiins")
    if "Luxor Firmware" in text or "LuxOS" in text:
        return WebHint("Antminer", "luxos")
    if "AnthillOS" in text:
        return WebHint("Antminer", "vnish")
    if status in (301, 302, 307) and (
        "/cgi-bin/luci" in text or "/cgi-bin/luci" in lowered.get("location", "")
    ):
        return WebHint("Whatsminer", "stock")
    if "/cgi-bin/luci" in text and "whatsminer" in text.lower():
        return WebHint("Whatsminer", "stock")
    if "Avalon" in text:
        return WebHint("Avalon", "stock")
    return None
