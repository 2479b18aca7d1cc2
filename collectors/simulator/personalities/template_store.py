"""Loads the capture-derived reply templates shipped in `templates/` (package data, read from the package).

Personalities patch a fresh deep copy of a template with the device's state, so the key set, key order
and value types stay those of the real capture.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from functools import cache
from importlib import resources

Json = dict[str, object]


@cache
def _load(relative: str) -> Json:
    text = (
        resources.files("collectors.simulator.personalities.templates").joinpath(relative).read_text("utf-8")
    )
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"template {relative} is not a JSON object")
    return data


def template(relative: str) -> Json:
    """A private deep copy of the template at `relative` (e.g. "luxos/s19kpro_config.json")."""
    return copy.deepcopy(_load(relative))


def first(reply: Json, section: str) -> Json:
    """The first element of a reply section, typed for patching."""
    items = reply[section]
    if not isinstance(items, list) or not items or not isinstance(items[0], dict):
        raise ValueError(f"template section {section} has no object")
    item: Json = items[0]
    return item


def fill(reply: Json, section: str, patches: Iterable[Json]) -> int:
    """Replace `section` with one copy of its first element per patch, laid over the copy; the count."""
    shape = first(reply, section)
    items: list[Json] = [{**shape, **patch} for patch in patches]
    reply[section] = items
    return len(items)


def stamp(reply: Json, description: str, now: float, msg: str | None = None) -> Json:
    """Set the template's STATUS When and Description (and Msg, when given) for this reply."""
    status = first(reply, "STATUS")
    status["When"] = int(now)
    status["Description"] = description
    if msg is not None:
        status["Msg"] = msg
    return reply
