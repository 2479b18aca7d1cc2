"""The model table: one row per miner model, looked up by the model string the device sends.

A new model is a new row, never a class. Columns: canonical name, maker, algorithm, hashboards, chips per
board, fans, nominal hashrate (TH/s) and nominal power (W); then the wire spellings that mean it.
Nominal hashrate/power come from fleetmon/supplychain/data/models.csv where it has them (None elsewhere: we do
not invent figures); boards/chips/fans are pyasic 0.79's model facts, or what the real captures show where
pyasic has none (E3, Z11, T15, S9k, SealMiner A2). An unknown model still works: `lookup` returns None
and the sample simply has no expectations.

`ghs_unit_ths` is what one unit of an Antminer "GHS" field is worth in TH/s for the model's algorithm:
cgminer forks kept the SHA-256 key names on other coins (an L3+ "GHS 5s" of 504 is 504 MH/s).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

GHS_UNIT_THS = {"sha256": 1e-3, "scrypt": 1e-6, "x11": 1e-6, "ethash": 1e-6, "equihash": 1e-9}


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """What a model should look like when healthy."""

    name: str
    make: str
    algo: str = "sha256"
    boards: int | None = None
    chips_per_board: int | None = None
    fans: int | None = None
    nominal_ths: float | None = None
    nominal_w: float | None = None
    aliases: tuple[str, ...] = ()

    @property
    def ghs_unit_ths(self) -> float:
        """TH/s per unit of the Antminer `GHS` fields on this model's algorithm."""
        return GHS_UNIT_THS.get(self.algo, 1e-3)

    @property
    def manufacturer(self) -> str:
        """The company that makes it (Bitmain, MicroBT, Canaan)."""
        return MANUFACTURERS.get(self.make, self.make)


MANUFACTURERS = {
    "Antminer": "Bitmain",
    "Whatsminer": "MicroBT",
    "Avalon": "Canaan",
    "SealMiner": "Bitdeer",
    "Auradine": "Auradine",
}

A, W, AV, SM, AU = "Antminer", "Whatsminer", "Avalon", "SealMiner", "Auradine"

# name, make, algo, boards, chips/board, fans, TH/s, W, aliases
MODELS: tuple[ModelSpec, ...] = (
    # Bitmain SHA-256
    ModelSpec("Antminer S9", A, "sha256", 3, 63, 2),
    ModelSpec("Antminer S9i", A, "sha256", 3, 63, 2),
    ModelSpec("Antminer S9j", A, "sha256", 3, 63, 2),
    ModelSpec("Antminer S9k", A, "sha256", 3, 60, 2),
    ModelSpec("Antminer S9 Pro", A, "sha256", 3, 63, 2),
    ModelSpec("Antminer T9", A, "sha256", 3, 54, 2),
    ModelSpec("Antminer T15", A, "sha256", 3, 60, 2),
    ModelSpec("Antminer S17", A, "sha256", 3, 48, 4),
    ModelSpec("Antminer S17 Pro", A, "sha256", 3, 48, 4),
    ModelSpec("Antminer S17+", A, "sha256", 3, 65, 4),
    ModelSpec("Antminer S17e", A, "sha256", 3, 135, 4),
    ModelSpec("Antminer T17", A, "sha256", 3, 30, 4),
    ModelSpec("Antminer T17+", A, "sha256", 3, 44, 4),
    ModelSpec("Antminer T17e", A, "sha256", 3, 78, 4),
    ModelSpec("Antminer S19", A, "sha256", 3, 76, 4, 95, 3250),
    ModelSpec("Antminer S19 Pro", A, "sha256", 3, 114, 4, 110, 3250),
    ModelSpec("Antminer S19 Pro+", A, "sha256", 3, 120, 4),
    ModelSpec("Antminer S19+", A, "sha256", 3, 80, 4),
    ModelSpec("Antminer S19i", A, "sha256", 3, 80, 4),
    ModelSpec("Antminer S19a", A, "sha256", 3, 72, 4),
    ModelSpec("Antminer S19a Pro", A, "sha256", 3, 100, 4),
    ModelSpec("Antminer S19j", A, "sha256", 3, 114, 4),
    ModelSpec("Antminer S19j Pro", A, "sha256", 3, 126, 4, 100, 3050),
    ModelSpec("Antminer S19j Pro+", A, "sha256", 3, 120, 4),
    ModelSpec("Antminer S19j XP", A, "sha256", 3, 110, 4),
    ModelSpec("Antminer S19k Pro", A, "sha256", 3, 77, 4),
    ModelSpec("Antminer S19L", A, "sha256", 3, 76, 4),
    ModelSpec("Antminer S19 XP", A, "sha256", 3, 110, 4, 140, 3010),
    ModelSpec("Antminer S19 XP Hyd", A, "sha256", 3, 204, 0, 255, 5304, ("Antminer S19 XP Hydro",)),
    ModelSpec("Antminer S19 Hydro", A, "sha256", 4, 104, 0),
    ModelSpec("Antminer S19 Pro Hydro", A, "sha256", 4, 180, 0),
    ModelSpec("Antminer T19", A, "sha256", 3, 76, 4, 84, 3150),
    ModelSpec("Antminer S21", A, "sha256", 3, 108, 4, 200, 3500),
    ModelSpec("Antminer S21 Pro", A, "sha256", 3, 65, 4, 234, 3531),
    ModelSpec("Antminer S21+", A, "sha256", 3, 55, 4, 216, 3564),
    ModelSpec("Antminer S21 XP", A, "sha256", 3, 91, 4, 270, 3645),
    ModelSpec("Antminer S21 Hyd", A, "sha256", 3, 216, 0, 335, 5360, ("Antminer S21 Hydro",)),
    ModelSpec("Antminer S21+ Hyd", A, "sha256", 3, 95, 0, 319, 4785, ("Antminer S21+ Hydro",)),
    ModelSpec("Antminer T21", A, "sha256", 3, 108, 4, 190, 3610),
    # Bitmain other algorithms
    ModelSpec("Antminer L3+", A, "scrypt", 4, 72, 2, aliases=("Antminer L3",)),
    ModelSpec("Antminer L7", A, "scrypt", 3, 120, 4),
    ModelSpec("Antminer D3", A, "x11", 3, 60, 2),
    ModelSpec("Antminer E3", A, "ethash", None, 2, 2),
    ModelSpec("Antminer Z11", A, "equihash", 3, 3, 2),
    ModelSpec("Antminer Z15", A, "equihash", 3, 3, 2),
    # MicroBT (variant rows where the captures or pyasic name the variant)
    ModelSpec("Whatsminer M3", W, "sha256", 3, 63, 2),
    ModelSpec("Whatsminer M20S", W, "sha256", 3, None, 2),
    ModelSpec("Whatsminer M20S V10", W, "sha256", 3, 105, 2),
    ModelSpec("Whatsminer M20S V20", W, "sha256", 3, 111, 2),
    ModelSpec("Whatsminer M21S", W, "sha256", 3, None, 2),
    ModelSpec("Whatsminer M21S V20", W, "sha256", 3, 66, 2),
    ModelSpec("Whatsminer M21S V60", W, "sha256", 3, 105, 2),
    ModelSpec("Whatsminer M30S", W, "sha256", 3, None, 2, 88, 3344),
    ModelSpec("Whatsminer M30S V20", W, "sha256", 3, 156, 2, 88, 3344),
    ModelSpec("Whatsminer M30S+", W, "sha256", 3, None, 2, 100, 3400),
    ModelSpec("Whatsminer M30S+ VE40", W, "sha256", 3, 156, 2, 100, 3400),
    ModelSpec("Whatsminer M30S++", W, "sha256", 3, None, 2, 112, 3472),
    ModelSpec("Whatsminer M31S", W, "sha256", 3, None, 2),
    ModelSpec("Whatsminer M31S V10", W, "sha256", 3, 105, 2),
    ModelSpec("Whatsminer M31S+", W, "sha256", 3, None, 2),
    ModelSpec("Whatsminer M50", W, "sha256", 3, None, 2, 118, 3422),
    ModelSpec("Whatsminer M50S", W, "sha256", 3, None, 2),
    ModelSpec("Whatsminer M56S++", W, "sha256", 4, None, 0, 230, 5060),
    ModelSpec("Whatsminer M60", W, "sha256", 3, None, 2, 170, 3264),
    ModelSpec("Whatsminer M60S", W, "sha256", 3, None, 2, 186, 3255),
    ModelSpec("Whatsminer M60S VK40", W, "sha256", 3, 225, 2, 186, 3255),
    # Canaan
    ModelSpec("Avalon 721", AV, "sha256", 4, 18, 1),
    ModelSpec("Avalon 741", AV, "sha256", 4, 22, 1),
    ModelSpec("Avalon 761", AV, "sha256", 4, 18, 1),
    ModelSpec("Avalon 821", AV, "sha256", 4, 26, 1),
    ModelSpec("Avalon 841", AV, "sha256", 4, 26, 1),
    ModelSpec("Avalon 851", AV, "sha256", 4, 26, 1),
    ModelSpec("Avalon 921", AV, "sha256", 4, 26, 1),
    ModelSpec("Avalon 1026", AV, "sha256", 3, 80, 2),
    ModelSpec("Avalon 1047", AV, "sha256", 3, 80, 2),
    ModelSpec("Avalon 1066", AV, "sha256", 3, 114, 4),
    ModelSpec("Avalon A1246", AV, "sha256", 3, 120, 4, 90, 3420, ("Avalon 1246",)),
    ModelSpec("Avalon A1366", AV, "sha256", 3, None, None, 130, 3250, ("Avalon 1366",)),
    ModelSpec("Avalon A1566", AV, "sha256", 3, 160, 2, 185, None, ("Avalon 1566", "15-194", "Avalon 15")),
    ModelSpec("Avalon Q", AV, "sha256", 1, 160, 2, aliases=("Avalon Q Home",)),
    # Bitdeer SealMiner (BDMiner firmware; `stats` Model "A2"). A2: 3 boards x 153 chips and 4 fans as the
    # capture sealminer/a2_stats.json reports them ("Board Count", "0 Chip Count", "Fan Count"); nominal
    # 226 TH/s, 3729 W and A2 Hyd 446 TH/s, 7359 W from models.csv (Bitdeer's Oct 2024 announcement,
    # power computed there from 16.5 J/TH). The A2 Hyd's boards, chips and fans have no source.
    ModelSpec("SealMiner A2", SM, "sha256", 3, 153, 4, 226, 3729),
    ModelSpec("SealMiner A2 Hyd", SM, "sha256", None, None, None, 446, 7359, ("SealMiner A2 Hydro",)),
    # Auradine Teraflux (GCMiner/FluxOS; `devdetails` Model "AT2880"). Boards, chips and fans are pyasic
    # 0.79's (miners/device/models/auradine): AT1500 3 x 132 chips, 4 fans; AT2860/AT2880 3 boards, 4 fans.
    # models.csv has no Auradine nominal figures ("specs not found in sources"), so none here.
    ModelSpec("Auradine AT1500", AU, "sha256", 3, 132, 4),
    ModelSpec("Auradine AT2860", AU, "sha256", 3, None, 4),
    ModelSpec("Auradine AT2880", AU, "sha256", 3, None, 4),
    ModelSpec("Auradine AI3680", AU, "sha256"),
)


def normalize(model: str) -> str:
    """A lookup key: uppercase, maker prefix and punctuation dropped (`M30S+_VE40` -> `M30S+VE40`)."""
    key = model.upper().split("(")[0]
    key = re.sub(
        r"^(BITMAIN\s+|BITDEER\s+)?(ANTMINER|WHATSMINER|AVALONMINER|AVALON|SEALMINER|AURADINE|TERAFLUX)\s*",
        "",
        key.strip(),
    )
    key = key.replace("HYDRO", "HYD")
    return re.sub(r"[\s_\-]", "", key)


_INDEX: dict[str, ModelSpec] = {}
for _spec in MODELS:
    for _name in (_spec.name, *_spec.aliases):
        _INDEX.setdefault(f"{_spec.make}:{normalize(_name)}", _spec)


def lookup(model: str | None, make: str | None = None) -> ModelSpec | None:
    """The table row for a wire model string (Whatsminer variants fall back to the base model), or None."""
    if not model:
        return None
    key = normalize(model)
    makes = [make] if make else [A, W, AV, SM, AU]
    for candidate_make in makes:
        spec = _INDEX.get(f"{candidate_make}:{key}")
        if spec is not None:
            return spec
        # Whatsminer variant suffixes (V20, VE40, VK40): the base model still names the machine.
        base = re.sub(r"V[A-Z]?\d+[A-Z]?$", "", key)
        if base != key and (spec := _INDEX.get(f"{candidate_make}:{base}")) is not None:
            return spec
    return None
