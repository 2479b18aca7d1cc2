"""The MFN (column 1 general) rate of an HTS code from the USITC HTS REST API, and a candidate layer.

This is an optional check for procurement: the shipped schedule stays the reviewed source of truth.
`fetch_mfn` asks the service for one code's current general rate; `candidate_layer_toml` turns the
answer into a schedule file in the format `tariffs.py` loads (mode "add"), flagged "U" until someone
has reviewed it, to be applied with `--schedule FILE`. Nothing here writes into the shipped data.

The service (sources, checked 2026-11-24):
- USITC, "Harmonized Tariff Schedule System External User Guide", section 1.4 "RESTful Api":
  https://hts.usitc.gov/reststop/search?keyword=<text or HTS number> answers a JSON array of records.
- The record fields as USITC publishes them in its JSON export of the schedule, which uses the same
  names (`htsno`, `indent`, `description`, `superior`, `units`, `general`, `special`, `other`,
  `footnotes`, `quotaQuantity`, `additionalDuties`):
  https://www.usitc.gov/sites/default/files/tata/hts/hts_2026_revision_5_json.json
  Statistical-suffix lines (10 digits, "8543.70.99.60") carry an empty `general` and take the rate of
  their 8-digit line; heading lines that only group others have an empty `htsno`.
- A third-party reference lists further endpoints (`searchByNumber`, `HTSDataSet` wrapping); they are
  not used because USITC's own guide does not describe them:
  https://tradefacts.io/blog/usitc-hts-reststop-api-endpoint-reference-limits-and-a-produ.html

Errors, all under `HtsFetchError` (errors.py, under `SupplyChainError`):

    HtsFetchError               the service answered something we cannot read (not JSON, not records)
    ├── HtsUnavailableError     no answer: connection failed, or an HTTP error status
    │   └── HtsTimeoutError     no answer within the timeout
    ├── HtsNotFoundError        the answer has no line for the code (or none with a general rate)
    └── NotAdValoremError       the general rate is specific or compound (¢/kg, $/unit, "x% + y¢")

httpx exceptions are translated once, in `_get_records`, always `raise ... from exc`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal

import httpx

from fleetmon.supplychain.errors import HtsFetchError
from fleetmon.supplychain.tariffs import ANY_ORIGIN, Layer, Schedule, normalise_hts

USITC_BASE_URL = "https://hts.usitc.gov/reststop"
SEARCH_PATH = "/search"
# MFN does not apply to goods assembled in the US, as in the shipped schedule's own MFN layer.
DEFAULT_ORIGINS = (ANY_ORIGIN,)
DEFAULT_EXCLUDED = ("US",)

_PERCENT = re.compile(r"^(\d+(?:\.\d+)?)\s*%$")
_FREE = re.compile(r"^free$", re.IGNORECASE)


class HtsUnavailableError(HtsFetchError):
    """The USITC service could not be reached or answered with an HTTP error status."""


class HtsTimeoutError(HtsUnavailableError):
    """The USITC service did not answer within the timeout."""


class HtsNotFoundError(HtsFetchError):
    """The service's answer holds no line for the HTS code, or none with a general rate."""


class NotAdValoremError(HtsFetchError):
    """The general rate is specific or compound, so it cannot be a layer (a fraction of value)."""


@dataclass(frozen=True)
class HtsRecord:
    """One line of the HTS as the REST API returns it (the fields fleetmon uses)."""

    htsno: str  # dotted, "8543.70.99" or "8543.70.99.60"; "" for grouping lines
    description: str
    general: str  # column 1 general (MFN) rate text; "" on statistical-suffix lines
    special: str
    other: str  # column 2

    @property
    def digits(self) -> str:
        """The HTS number without dots ("" for a grouping line)."""
        return self.htsno.replace(".", "").strip()


@dataclass(frozen=True)
class MfnRate:
    """The MFN rate of an HTS code as the USITC service gave it, with where and when it came from."""

    hts_code: str  # as asked
    htsno: str  # the line the rate was read from (the code itself or its nearest parent)
    description: str
    general_text: str  # the rate as printed ("2.6%", "Free")
    rate: Decimal  # fraction: 0.026 for 2.6%
    special_text: str
    other_text: str
    source_url: str  # the query URL
    fetched_on: date  # UTC date of the fetch


def search_url(hts_code: str) -> str:
    """The query URL for the 8-digit line of an 8- or 10-digit HTS code; raises ValueError otherwise."""
    heading = _heading(hts_code)
    dotted = f"{heading[:4]}.{heading[4:6]}.{heading[6:8]}"
    return str(httpx.URL(USITC_BASE_URL + SEARCH_PATH, params={"keyword": dotted}))


async def fetch_mfn(
    hts_code: str, *, client: httpx.AsyncClient | None = None, timeout: httpx.Timeout
) -> MfnRate:
    """The MFN rate of `hts_code` (8 or 10 digits) from the USITC HTS REST API.

    The query is the code's 8-digit line; the rate is read from the record of the code itself or,
    when that line has no general rate (a statistical suffix), from its nearest parent that has one.
    `client`, when given, is used and left open; otherwise one is made for this call and closed.
    Raises ValueError for a malformed code and HtsFetchError (or a subclass, see the module) for
    everything the service does or says.
    """
    url = search_url(hts_code)
    if client is None:
        async with httpx.AsyncClient(timeout=timeout) as own:
            records = await _get_records(own, url, timeout)
    else:
        records = await _get_records(client, url, timeout)
    record = pick_record(records, hts_code)
    return MfnRate(
        hts_code=hts_code,
        htsno=record.htsno,
        description=record.description,
        general_text=record.general,
        rate=parse_ad_valorem(record.general, record.htsno),
        special_text=record.special,
        other_text=record.other,
        source_url=url,
        fetched_on=datetime.now(UTC).date(),
    )


async def _get_records(client: httpx.AsyncClient, url: str, timeout: httpx.Timeout) -> list[HtsRecord]:
    """GET the query and read the records: the one place httpx's exceptions become ours."""
    try:
        response = await client.get(url, timeout=timeout, headers={"Accept": "application/json"})
    except httpx.TimeoutException as exc:
        raise HtsTimeoutError(f"USITC HTS service did not answer in time ({exc!r}): {url}") from exc
    except httpx.HTTPError as exc:
        raise HtsUnavailableError(f"cannot reach the USITC HTS service ({exc!r}): {url}") from exc
    if response.status_code != httpx.codes.OK:
        raise HtsUnavailableError(
            f"USITC HTS service answered HTTP {response.status_code} {response.reason_phrase}: {url}"
        )
    try:
        payload = json.loads(response.content)
    except (ValueError, UnicodeDecodeError) as exc:
        start = response.content[:60].decode("utf-8", "replace")
        raise HtsFetchError(
            f"USITC HTS service answered something that is not JSON ({start!r}): {url}"
        ) from exc
    return parse_records(payload, url)


def parse_records(payload: object, where: str) -> list[HtsRecord]:
    """The search answer (a JSON array of objects) as records; HtsFetchError for any other shape."""
    if not isinstance(payload, list):
        raise HtsFetchError(f"{where}: expected a JSON array of HTS records, got {type(payload).__name__}")
    records: list[HtsRecord] = []
    for i, raw in enumerate(payload):
        if not isinstance(raw, dict):
            raise HtsFetchError(f"{where}: record #{i + 1} is not an object")
        records.append(
            HtsRecord(
                htsno=_text(raw, "htsno", where, i),
                description=_text(raw, "description", where, i),
                general=_text(raw, "general", where, i),
                special=_text(raw, "special", where, i),
                other=_text(raw, "other", where, i),
            )
        )
    return records


def pick_record(records: list[HtsRecord], hts_code: str) -> HtsRecord:
    """The record of the code, or of its nearest parent line, that carries a general rate.

    A keyword search can also return lines of other headings (a description mentioning the number),
    so only the code's own line and the lines whose number is a prefix of it are considered.
    """
    digits = normalise_hts(hts_code)
    lineage = [r for r in records if r.digits and digits.startswith(r.digits)]
    if not lineage:
        raise HtsNotFoundError(f"USITC HTS has no line for {hts_code} (answer held {len(records)} records)")
    with_rate = [r for r in lineage if r.general.strip()]
    if not with_rate:
        raise HtsNotFoundError(
            f"USITC HTS lines for {hts_code} ({', '.join(r.htsno for r in lineage)}) carry no general rate"
        )
    return max(with_rate, key=lambda r: len(r.digits))


def parse_ad_valorem(text: str, htsno: str) -> Decimal:
    """A general rate as a fraction ("2.6%" -> 0.026, "Free" -> 0); NotAdValoremError for anything else."""
    cleaned = text.strip()
    if _FREE.match(cleaned):
        return Decimal(0)
    match = _PERCENT.match(cleaned)
    if match:
        return Decimal(match.group(1)) / 100
    raise NotAdValoremError(
        f"the general rate of {htsno} is {cleaned!r}: a specific or compound rate (per kg, per unit, or a "
        "percentage plus an amount) cannot be expressed as an ad-valorem layer (a fraction of customs "
        "value); no candidate layer made, enter an ad-valorem equivalent by hand if one is needed"
    )


def superseded_mfn_layer(schedule: Schedule, hts_code: str, on: date) -> Layer | None:
    """The MFN layer of `schedule` covering `hts_code` on `on` (preferring the all-origins one), or None."""
    digits = normalise_hts(hts_code)
    found = [
        lay for lay in schedule.layers if lay.kind == "mfn" and lay.covers_hts(digits) and lay.in_force(on)
    ]
    found.sort(key=lambda lay: ANY_ORIGIN not in lay.origins)
    return found[0] if found else None


def candidate_layer_toml(rate: MfnRate, effective_from: date, *, supersedes: Layer | None = None) -> str:
    """A schedule file (mode "add") holding the fetched MFN rate as a layer in force from `effective_from`.

    With `supersedes` (the MFN layer in force today, from `superseded_mfn_layer`), the file also ends
    that layer at `effective_from` under its own id, so entry dates before then keep the reviewed rate
    and the two never overlap; the new layer copies its origins. Raises ValueError when `supersedes`
    starts on or after `effective_from` (the candidate would erase it).
    """
    layer_id = f"mfn-usitc-{rate.fetched_on:%Y%m%d}"
    origins = sorted(supersedes.origins) if supersedes else list(DEFAULT_ORIGINS)
    excluded = sorted(supersedes.exclude_origins) if supersedes else list(DEFAULT_EXCLUDED)
    lines = [
        f"# Candidate MFN layer fetched from the USITC HTS REST API on {rate.fetched_on.isoformat()}.",
        '# For procurement to review: check the rate against the HTS, then drop the "U" flag. Apply',
        "# with `fleetmon tariffs rate --schedule THIS_FILE`; the shipped schedule is not changed.",
        f"# Query: {rate.source_url}",
        f"# Line {rate.htsno}: general {rate.general_text!r}, special {rate.special_text!r}, "
        f"column 2 {rate.other_text!r}",
        "",
        "[schedule]",
        f"name = {_toml_str(f'usitc-mfn-{rate.htsno}-{rate.fetched_on.isoformat()}')}",
        'mode = "add"',
        f"description = {_toml_str(f'MFN rate of {rate.hts_code} published by USITC, {rate.fetched_on}')}",
    ]
    if supersedes is not None and (
        supersedes.effective_to is None or supersedes.effective_to > effective_from
    ):
        if supersedes.effective_from is not None and supersedes.effective_from >= effective_from:
            raise ValueError(
                f"layer {supersedes.id!r} starts {supersedes.effective_from}, not before {effective_from}: "
                "choose a later effective-from date"
            )
        lines += ["", _layer_table(_closed(supersedes, effective_from))]
    source = (
        f"USITC HTS REST API {rate.source_url} (fetched {rate.fetched_on.isoformat()}): "
        f"general rate {rate.general_text!r} of {rate.htsno}"
    )
    notes = f"{rate.htsno}: {rate.description}. Candidate from a fetch, not yet reviewed."
    new = Layer(
        id=layer_id,
        name=f"MFN column 1 general rate, {rate.htsno} (USITC, {rate.fetched_on.isoformat()})",
        kind="mfn",
        rate=rate.rate,
        origins=frozenset(origins),
        exclude_origins=frozenset(excluded),
        hts_prefixes=(normalise_hts(rate.htsno),),
        source=source,
        effective_from=effective_from,
        notes=notes,
        flags=frozenset({"U"}),
    )
    lines += ["", _layer_table(new)]
    return "\n".join(lines) + "\n"


def _closed(layer: Layer, end: date) -> Layer:
    """`layer` ending at `end` (exclusive), with a note saying why, under its own id."""
    note = f"Ended {end.isoformat()} by the candidate MFN layer below (USITC fetch)."
    return replace(layer, effective_to=end, notes=f"{layer.notes} {note}".strip())


def _layer_table(layer: Layer) -> str:
    """One `[[layer]]` table in the keys `tariffs.parse_layer` accepts."""
    rows = [
        "[[layer]]",
        f"id = {_toml_str(layer.id)}",
        f"name = {_toml_str(layer.name)}",
        f"kind = {_toml_str(layer.kind)}",
        f"rate = {layer.rate:f}",  # fixed notation, as in the shipped file; the loader reads it exactly
    ]
    if layer.effective_from is not None:
        rows.append(f"effective_from = {layer.effective_from.isoformat()}")
    if layer.effective_to is not None:
        rows.append(f"effective_to = {layer.effective_to.isoformat()}")
    rows.append(f"origins = {_toml_list(sorted(layer.origins))}")
    if layer.exclude_origins:
        rows.append(f"exclude_origins = {_toml_list(sorted(layer.exclude_origins))}")
    rows.append(f"hts = {_toml_list([_dotted(p) for p in layer.hts_prefixes])}")
    rows.append(f"source = {_toml_str(layer.source)}")
    if layer.notes:
        rows.append(f"notes = {_toml_str(layer.notes)}")
    if layer.flags:
        rows.append(f"flags = {_toml_list(sorted(layer.flags))}")
    return "\n".join(rows)


def _toml_str(value: str) -> str:
    # A JSON string is a valid TOML basic string except for a raw DEL, which TOML wants escaped.
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007F")


def _toml_list(values: list[str]) -> str:
    return "[" + ", ".join(_toml_str(v) for v in values) + "]"


def _dotted(digits: str) -> str:
    """Bare HTS digits in the dotted form people read ("85437099" -> "8543.70.99")."""
    parts = [digits[:4], digits[4:6], digits[6:8], digits[8:10]]
    return ".".join(p for p in parts if p)


def _heading(hts_code: str) -> str:
    digits = normalise_hts(hts_code)
    if len(digits) not in (8, 10):
        raise ValueError(
            f"HTS code {hts_code!r} must have 8 or 10 digits (a rate line or a statistical line)"
        )
    return digits[:8]


def _text(raw: dict[str, object], key: str, where: str, index: int) -> str:
    value = raw.get(key)
    if value is None:  # the service sends null for absent text on some lines
        return ""
    if not isinstance(value, str):
        raise HtsFetchError(f"{where}: record #{index + 1} field {key!r} is not text: {value!r}")
    return value.strip()
