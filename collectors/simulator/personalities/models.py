"""The simulator's model table: one row per miner model it can impersonate.

Nominal hashrate, power and release year are copied from the device catalog (collectors/data/models.csv).
Boards, chips per board and fans are the figures pyasic 0.79 expects for the same model (its
`miners/device/models/`), so that a pyasic client sees no "missing chips" where the simulated device is
healthy.

`wire_type` is the string the real firmware reports and pyasic maps to the model class:
- Antminer: `version`/`stats` `Type` ("Antminer S19 Pro"); pyasic upper-cases it.
- Whatsminer: `devdetails` `Model` ("M30S+_VE40"); pyasic drops "_" and zeroes the last character.
- Avalon: `version` `MODEL` ("1246-83"); `PROD` is "AvalonMiner " + MODEL. pyasic cuts PROD at "-",
  except for "AvalonMiner 15", where it uses MODEL whole ("AVALONMINER 15-194").
"""

from __future__ import annotations

from collections.abc import Iterable

from collectors.simulator.device import Make, ModelSpec

A = Make.ANTMINER
W = Make.WHATSMINER
V = Make.AVALON
AU = Make.AURADINE
SM = Make.SEALMINER
CL = Make.CLONE

MODELS: tuple[ModelSpec, ...] = (
    # Antminer X19 / X21 (chips per board from pyasic's S19.py, S21.py, T21.py)
    ModelSpec(A, "Antminer S19 Pro", "Antminer S19 Pro", 3, 114, 4, 110.0, 3250.0),
    ModelSpec(A, "Antminer S19j Pro", "Antminer S19j Pro", 3, 126, 4, 100.0, 3050.0),
    ModelSpec(A, "Antminer S19 XP", "Antminer S19 XP", 3, 110, 4, 140.0, 3010.0),
    # Not in models.csv: Bitmain's S19k Pro card is 120 TH at 23 J/TH (2760 W); the LuxOS capture's
    # config reports NameplateTHS 121.8 for the same model. Kept for LuxOS realism.
    ModelSpec(A, "Antminer S19k Pro", "Antminer S19k Pro", 3, 77, 4, 120.0, 2760.0),
    ModelSpec(A, "Antminer S21", "Antminer S21", 3, 108, 4, 200.0, 3500.0),
    ModelSpec(A, "Antminer S21 Pro", "Antminer S21 Pro", 3, 65, 4, 234.0, 3531.0),
    ModelSpec(A, "Antminer S21 XP", "Antminer S21 XP", 3, 91, 4, 270.0, 3645.0),
    ModelSpec(A, "Antminer T21", "Antminer T21", 3, 108, 4, 190.0, 3610.0),
    # Whatsminer: the hardware revision suffix picks pyasic's class (M30SV50, M30S+VE40, ...).
    ModelSpec(W, "Whatsminer M30S", "M30S_V50", 3, 156, 2, 88.0, 3344.0),
    ModelSpec(W, "Whatsminer M30S+", "M30S+_VE40", 3, 156, 2, 100.0, 3400.0),
    ModelSpec(W, "Whatsminer M30S++", "M30S++_VG40", 3, 117, 2, 112.0, 3472.0),
    ModelSpec(W, "Whatsminer M50", "M50_VH50", 3, 105, 2, 118.0, 3422.0),
    ModelSpec(W, "Whatsminer M60S", "M60S_VK40", 3, 225, 2, 186.0, 3255.0),
    # Avalon (MODEL strings follow the captures: "1246-83", "15-194").
    ModelSpec(V, "Avalon A1246", "1246-83", 3, 120, 4, 90.0, 3420.0),
    # pyasic 0.79 has no A1366 class (it reports "Partially supported"); 3 x 120 chips and 2 fans are
    # assumptions carried over from the A12/A15 generation on either side, not pyasic figures.
    ModelSpec(V, "Avalon A1366", "1366-130", 3, 120, 2, 130.0, 3250.0),
    # models.csv gives no power for the A1566: Canaan's launch card rates it 18.5 J/TH, so
    # 185 TH x 18.5 J/TH = 3422 W, rounded to 3420 W.
    ModelSpec(V, "Avalon A1566", "15-194", 3, 160, 2, 185.0, 3420.0),
    # Auradine: 3 boards x 132 chips and 4 fans are pyasic 0.79's AT1500; no source gives a nominal
    # hashrate or power, so the simulator runs at the target the captured machine was set to
    # (auradine/gcminer_mode.json: "Ths": 160, "Power": 2000). A simulation figure, not a catalog fact.
    ModelSpec(AU, "Auradine AT1500", "AT1500", 3, 132, 4, 160.0, 2000.0),
    # SealMiner A2: boards, chips, fans from the capture (sealminer/a2_stats.json); 226 TH/s, 3729 W from
    # models.csv (Bitdeer's Oct 2024 announcement).
    ModelSpec(SM, "SealMiner A2", "A2", 3, 153, 4, 226.0, 3729.0),
    # A made-up brand (issue 14's clone): S19-class figures (models.csv's Antminer S19 row), because
    # what matters is that its firmware copies the Antminer API under a type string no maker uses.
    ModelSpec(CL, "ClonerX C1", "ClonerX C1", 3, 76, 4, 95.0, 3250.0),
)

# Release years from models.csv (S19k Pro: 2023, Bitmain's launch). Entry dates are drawn after these.
RELEASE_YEAR: dict[str, int] = {
    "Antminer S19 Pro": 2020,
    "Antminer S19j Pro": 2021,
    "Antminer S19 XP": 2022,
    "Antminer S19k Pro": 2023,
    "Antminer S21": 2023,
    "Antminer S21 Pro": 2024,
    "Antminer S21 XP": 2024,
    "Antminer T21": 2023,
    "Whatsminer M30S": 2020,
    "Whatsminer M30S+": 2020,
    "Whatsminer M30S++": 2020,
    "Whatsminer M50": 2022,
    "Whatsminer M60S": 2023,
    "Avalon A1246": 2021,
    "Avalon A1366": 2022,
    "Avalon A1566": 2024,
    "SealMiner A2": 2024,
}

# pyasic 0.79's model name for each row, as `MinerData.model` reports it (None: pyasic does not know it).
PYASIC_MODEL: dict[str, str | None] = {
    "Antminer S19 Pro": "S19 Pro",
    "Antminer S19j Pro": "S19j Pro",
    "Antminer S19 XP": "S19 XP",
    "Antminer S19k Pro": "S19k Pro",
    "Antminer S21": "S21",
    "Antminer S21 Pro": "S21 Pro",
    "Antminer S21 XP": "S21 XP",
    "Antminer T21": "T21",
    "Whatsminer M30S": "M30S V50",
    "Whatsminer M30S+": "M30S+ VE40",
    "Whatsminer M30S++": "M30S++ VG40",
    "Whatsminer M50": "M50 VH50",
    "Whatsminer M60S": "M60S VK40",
    "Avalon A1246": "Avalon 1246",
    "Avalon A1366": None,
    "Avalon A1566": "Avalon 1566",
    "Auradine AT1500": "AT1500",
    "SealMiner A2": "A2",
    "ClonerX C1": None,
}


def by_name(name: str) -> ModelSpec:
    """The row for a catalog name; KeyError names the known models."""
    for spec in MODELS:
        if spec.name == name:
            return spec
    raise KeyError(f"unknown model {name!r}; known: {', '.join(s.name for s in MODELS)}")


def of_make(make: Make, names: Iterable[str] | None = None) -> list[ModelSpec]:
    """Rows of one make, optionally restricted to some catalog names."""
    wanted = set(names) if names is not None else None
    return [s for s in MODELS if s.make is make and (wanted is None or s.name in wanted)]
