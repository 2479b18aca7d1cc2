"""The device side of the CGMiner reply format: STATUS envelopes, JSON and plain-text rendering.

Written from cgminer's API-README rules (envelope, codes, the `| , = \\` escaping of the text form)
and the captures, not from any client's parser. Rendering is exact-bytes: cgminer prints compact JSON
with no spaces, and some firmwares glue list elements together without a comma (`}{`); the
`glue` argument reproduces that for the named sections.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from collectors.simulator.personalities.base import NUL

Json = dict[str, object]

# cgminer codes used by the simulated firmwares.
CODE_POOLS = 7
CODE_DEVS = 9
CODE_SUMMARY = 11
CODE_INVALID = 14
CODE_VERSION = 22
CODE_CONFIG = 33
CODE_ACCESS_DENIED = 45
CODE_PRIVILEGED_OK = 46
CODE_DEVDETAILS = 69
CODE_STATS = 70


def status(letter: str, code: int, msg: str, description: str, when: float) -> Json:
    """One STATUS object, in cgminer's key order."""
    return {"STATUS": letter, "When": int(when), "Code": code, "Msg": msg, "Description": description}


def envelope(section: str, items: list[Json], code: int, msg: str, description: str, when: float) -> Json:  # noqa: PLR0917
    """A successful single-command reply: STATUS, the section, id."""
    return {"STATUS": [status("S", code, msg, description, when)], section: items, "id": 1}


def devdetails_item(index: int, driver: str, model: str) -> Json:
    """One DEVDETAILS element with cgminer's standard fields (no name, kernel or device path)."""
    return {
        "DEVDETAILS": index,
        "Name": "",
        "ID": index,
        "Driver": driver,
        "Kernel": "",
        "Model": model,
        "Device Path": "",
    }


def privileged(write_open: bool, description: str, when: float) -> Json:
    """cgminer's answer to `privileged`: S 46 when the caller may write (api-allow W: for it), else
    E 45. The command only reports; it changes nothing."""
    if write_open:
        return {
            "STATUS": [status("S", CODE_PRIVILEGED_OK, "Privileged access OK", description, when)],
            "id": 1,
        }
    return error(CODE_ACCESS_DENIED, "Access denied to 'privileged' command", description, when)


def error(code: int, msg: str, description: str, when: float) -> Json:
    """An error reply (`STATUS=E`)."""
    return {"STATUS": [status("E", code, msg, description, when)], "id": 1}


_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)  # json.dumps would build one per call


def dump(obj: object) -> str:
    """Compact JSON, as cgminer prints it."""
    return _COMPACT.encode(obj)


def render_json(reply: Mapping[str, object], glue: Iterable[str] = ()) -> str:
    """Render a reply object; lists under a `glue` key lose their separating commas (`}{`)."""
    glued = set(glue)
    if glued.isdisjoint(reply):
        return dump(reply)
    parts: list[str] = []
    for key, value in reply.items():
        if key in glued and isinstance(value, list):
            text = "[" + "".join(dump(v) for v in value) + "]"
        else:
            text = dump(value)
        parts.append(f"{dump(key)}:{text}")
    return "{" + ",".join(parts) + "}"


def render_multi(parts: Mapping[str, Mapping[str, object]], glue: Iterable[str] = ()) -> str:
    """A multi-command reply: `{"summary":[{...}],"pools":[{...}],"id":1}`."""
    body = ",".join(f"{dump(name)}:[{render_json(reply, glue)}]" for name, reply in parts.items())
    return "{" + body + ',"id":1}'


def _escape(value: object) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = f"{value:.6f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:.0f}"
    else:
        text = str(value)
    out = []
    for ch in text:
        if ch in "|,=\\":
            out.append("\\")
        out.append(ch)
    return "".join(out)


def render_text(reply: Mapping[str, object]) -> str:
    """The plain-text form: `STATUS=S,When=...,Code=11,...|SUMMARY,Elapsed=...|`."""
    chunks: list[str] = []
    for section, value in reply.items():
        if section == "id" or not isinstance(value, list):
            continue
        for item in value:
            if not isinstance(item, dict):
                continue
            fields = ",".join(f"{k}={_escape(v)}" for k, v in item.items() if not isinstance(v, dict | list))
            first = next(iter(item), None)
            # cgminer prefixes an item with its section name unless the item opens with its own id key.
            prefix = "" if first in (section, section.rstrip("S"), "ASC", "STATUS") else f"{section},"
            chunks.append(prefix + fields + "|")
    return "".join(chunks)


def finish(text: str) -> bytes:
    """Encode and append the trailing NUL every cgminer reply carries."""
    return text.encode("utf-8") + NUL
