"""Which personality speaks for a device: (make, firmware) -> one shared, stateless instance.

The other makes' personalities (Whatsminer, Avalon, Auradine, SealMiner, the brandless clone) live in
their own modules; they are imported lazily so this registry works (and says clearly what is missing)
before those modules exist.
"""

from __future__ import annotations

import importlib
from functools import cache

from collectors.simulator.device import Fault, Firmware, Make, SimDevice
from collectors.simulator.personalities.antminer import StockAntminer
from collectors.simulator.personalities.base import Personality
from collectors.simulator.personalities.braiins import BraiinsOS
from collectors.simulator.personalities.luxos import LuxOS
from collectors.simulator.personalities.non_finite import NonFinite, NonFiniteV3
from collectors.simulator.personalities.vnish import VNish

_ANTMINER: dict[Firmware, Personality] = {
    Firmware.STOCK: StockAntminer(),
    Firmware.BRAIINS: BraiinsOS(),
    Firmware.LUXOS: LuxOS(),
    Firmware.VNISH: VNish(),
}

# module, class name: the other makes' personalities (stock firmware only).
_OTHER_MAKES: dict[Make, tuple[str, str]] = {
    Make.WHATSMINER: ("collectors.simulator.personalities.whatsminer", "WhatsminerPersonality"),
    Make.AVALON: ("collectors.simulator.personalities.avalon", "AvalonPersonality"),
    Make.AURADINE: ("collectors.simulator.personalities.auradine", "AuradinePersonality"),
    Make.SEALMINER: ("collectors.simulator.personalities.sealminer", "SealMinerPersonality"),
    Make.CLONE: ("collectors.simulator.personalities.clone", "CloneMiner"),
}


class PersonalityMissing(LookupError):
    """No personality exists (yet) for this make and firmware."""


@cache
def _load(make: Make) -> Personality:
    module_name, class_name = _OTHER_MAKES[make]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise PersonalityMissing(f"{make} personality module {module_name} is not available") from exc
    cls = getattr(module, class_name, None)
    if cls is None:
        raise PersonalityMissing(f"{module_name} has no class {class_name}")
    instance: Personality = cls()
    return instance


def personality_for(dev: SimDevice) -> Personality:
    """The personality that renders `dev`'s replies (wrapped to spoil its rates under `non_finite`)."""
    personality = _own_personality(dev)
    if dev.fault is Fault.NON_FINITE:
        return NonFiniteV3(personality) if hasattr(personality, "v3") else NonFinite(personality)
    return personality


def _own_personality(dev: SimDevice) -> Personality:
    if dev.spec.make is Make.ANTMINER:
        return _ANTMINER[dev.firmware]
    if dev.firmware is not Firmware.STOCK:
        raise PersonalityMissing(f"{dev.firmware} firmware is only simulated on Antminer hardware")
    return _load(dev.spec.make)


def available(make: Make) -> bool:
    """True when the make's personality can be loaded."""
    if make is Make.ANTMINER:
        return True
    try:
        _load(make)
    except PersonalityMissing:
        return False
    return True
