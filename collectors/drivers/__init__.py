"""One driver per firmware dialect; `driver_for` picks it from an Identity's dialect."""

from __future__ import annotations

from collectors.drivers.antminer import AntminerDriver, LuxOSDriver
from collectors.drivers.auradine import AuradineDriver
from collectors.drivers.avalon import AvalonDriver
from collectors.drivers.base import Driver, Reading, build_sample
from collectors.drivers.braiins import BraiinsDriver
from collectors.drivers.sealminer import SealMinerDriver
from collectors.drivers.whatsminer import WhatsminerDriver
from collectors.drivers.whatsminer_v3 import WhatsminerV3Driver
from collectors.identify import Dialect

DRIVERS: dict[Dialect, Driver] = {
    Dialect.ANTMINER: AntminerDriver(),
    Dialect.LUXOS: LuxOSDriver(),
    Dialect.BRAIINS: BraiinsDriver(),
    Dialect.WHATSMINER: WhatsminerDriver(),
    Dialect.WHATSMINER_V3: WhatsminerV3Driver(),
    Dialect.AVALON: AvalonDriver(),
    Dialect.AURADINE: AuradineDriver(),
    Dialect.SEALMINER: SealMinerDriver(),
}


def driver_for(dialect: Dialect) -> Driver | None:
    """The driver for a dialect, None for Dialect.UNKNOWN."""
    return DRIVERS.get(dialect)


__all__ = ["DRIVERS", "Driver", "Reading", "build_sample", "driver_for"]
