"""pyasic 0.79, an independent client, identifies simulated devices and reads their hashrate."""

from __future__ import annotations

import asyncio
import warnings

import pytest

pyasic = pytest.importorskip("pyasic")

from collectors.simulator.fleet import simulated_fleet  # noqa: E402
from collectors.simulator.personalities.models import PYASIC_MODEL  # noqa: E402
from collectors.simulator.server import ListenMode  # noqa: E402

MAKES = {"antminer": "antminer", "whatsminer": "whatsminer", "avalon": "avalonminer"}
# BOSer serves most data over gRPC on 50051, which the simulator does not speak: ask it for hashrate only.
BOSER_INCLUDE = ["hashrate", "api_ver"]


def ths(value: object) -> float:
    """TH/s from a pyasic hashrate (its generic classes report raw H/s)."""
    rate = float(value)  # type: ignore[arg-type]
    return rate / 1e12 if rate > 1e6 else rate


async def read_fleet(mix: str, n: int, subnet: str) -> list[tuple[dict[str, object], object, object]]:
    warnings.simplefilter("ignore")
    async with simulated_fleet(n, mix=mix, subnet=subnet, seed=7, listen=ListenMode.PER_DEVICE) as fleet:
        sem = asyncio.Semaphore(50)

        async def one(row: dict[str, object]) -> tuple[dict[str, object], object, object]:
            async with sem:
                miner = await pyasic.get_miner(str(row["ip"]))
                include = BOSER_INCLUDE if row["firmware"] == "braiins" else None
                data = await miner.get_data(include=include) if miner is not None else None
                return row, miner, data

        return list(await asyncio.gather(*(one(r) for r in fleet.manifest)))


@pytest.mark.slow
async def test_pyasic_reads_antminer_family_fleet() -> None:
    results = await read_fleet("antminer:2,braiins:1,luxos:1,vnish:1", 40, "127.41.0.0/24")
    for row, miner, data in results:
        assert miner is not None, row
        assert str(miner.make).lower() == "antminer", row  # type: ignore[attr-defined]
        assert miner.raw_model is not None and str(miner.raw_model) == PYASIC_MODEL[str(row["model"])], row  # type: ignore[attr-defined]
        if row["state"] == "mining":
            assert abs(ths(data.hashrate) - float(row["hashrate_ths"])) <= 0.1 * float(row["hashrate_ths"]), (
                row
            )  # type: ignore[attr-defined]


@pytest.mark.slow
async def test_pyasic_reads_mixed_fleet_to_the_issue_bar() -> None:
    results = await read_fleet("antminer:100,whatsminer:100,avalon:100", 300, "127.42.0.0/16")
    make_ok = model_ok = known = hr_ok = mining = 0
    for row, miner, data in results:
        if miner is None:
            continue
        make_ok += MAKES[str(row["make"])] in str(miner.make).lower().replace(" ", "")  # type: ignore[attr-defined]
        expected = PYASIC_MODEL[str(row["model"])]
        if expected is not None:
            known += 1
            model_ok += str(miner.raw_model) == expected  # type: ignore[attr-defined]
        if row["state"] == "mining":
            mining += 1
            hr_ok += abs(ths(data.hashrate) - float(row["hashrate_ths"])) <= 0.1 * float(row["hashrate_ths"])  # type: ignore[attr-defined]
    print(
        f"make {make_ok}/300, model {model_ok}/300 ({model_ok}/{known} of models pyasic knows), "
        f"hashrate {hr_ok}/{mining}"
    )
    assert make_ok >= 0.98 * 300
    # The issue's bar counts every device, the A1366s that pyasic 0.79 cannot name included.
    assert model_ok >= 0.95 * 300
    assert model_ok == known  # every model pyasic has a class for is named right
    assert hr_ok >= 0.95 * mining
