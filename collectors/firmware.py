"""The firmware catalog: who publishes each firmware family, where, and what marks it; and the advisories.

Two reviewed data files, one home for both halves of fleetmon (collectors reads them here; fleetmon
imports this module, never the reverse):

- `data/firmware.csv`: one row per firmware family. `make`/`vendor` say which identified devices belong
  to it (Identity.make and Identity.firmware_vendor; an empty make means any hardware, as for aftermarket
  firmware). `publisher` and `hq_country` (ISO 3166 alpha-2) are empty where no source names them: unknown,
  never guessed. `markers` are the strings replies carry for it (`;`-separated). `factory_user` and
  `factory_password` are the web UI's factory login (user empty: the UI asks for a password only).
  `sources` holds `fact=URL` pairs joined by `|`, one for each non-empty fact: `publisher`, `hq`, `login`.
- `data/advisories.csv`: published advisories (CVE or vendor id) on a family, with the affected range,
  the date, a severity, a one-line summary and the source URL. An empty file (header only) is valid.

Affected ranges are a comma-separated list of clauses that must all hold, each `FIELD OP VALUE`:
- `build` compares the firmware's build date (`build_date` below) with an ISO date: `build<2017-04-27`;
- `version` compares the dotted numeric firmware version (`1.2.5`, `2025.4.8.220305`) component-wise;
- OP is one of `<`, `<=`, `>`, `>=`, `==`.
A device whose build date or version cannot be read matches nothing: an advisory is never guessed.

Errors: a malformed file raises `CatalogError` naming the file, line and column, when it is loaded.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources

from collectors.models import CatalogError

FIRMWARE_FILE = "firmware.csv"
ADVISORIES_FILE = "advisories.csv"
SEVERITIES = ("low", "medium", "high", "critical")
SOURCED_FACTS = ("publisher", "hq", "login")


@dataclass(frozen=True, slots=True)
class FirmwareFamily:
    """One firmware family: who publishes it and what marks it."""

    family: str
    name: str
    make: str | None
    vendor: str
    publisher: str | None
    hq_country: str | None
    markers: tuple[str, ...]
    factory_user: str | None
    factory_password: str | None
    sources: dict[str, str]

    @property
    def factory_login(self) -> tuple[str, str] | None:
        """The web UI's factory (user, password), user "" for a password-only UI; None when unknown."""
        if self.factory_password is None:
            return None
        return (self.factory_user or "", self.factory_password)


@dataclass(frozen=True, slots=True)
class Advisory:
    """One published advisory on a firmware family."""

    id: str
    family: str
    affected: str
    published: dt.date
    severity: str
    summary: str
    source: str
    clauses: tuple[tuple[str, str, str], ...]

    def affects(self, version: str | None, build: dt.date | None) -> bool:
        """True when every clause of the range holds; False when a needed value is unknown."""
        for field, op, value in self.clauses:
            compare = _OPS[op]
            if field == "build":
                bound = dt.date.fromisoformat(value)
                if build is None or not compare(build.timetuple()[:3], bound.timetuple()[:3]):
                    return False
            else:
                parsed, wanted = version_tuple(version), version_tuple(value)
                if parsed is None or wanted is None or not compare(parsed, wanted):
                    return False
        return True


Version = tuple[int, ...]
_OPS: dict[str, Callable[[Version, Version], bool]] = {
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
}
_CLAUSE = re.compile(r"^\s*(build|version)\s*(<=|>=|==|<|>)\s*([0-9][0-9.\-]*)\s*$")
_URL = re.compile(r"^https?://\S+$")


def version_tuple(text: str | None) -> Version | None:
    """The leading dotted numbers of a version ("2025.4.8.220305-57b389c7" -> (2025, 4, 8, 220305))."""
    if not text:
        return None
    match = re.match(r"\s*v?(\d+(?:\.\d+)*)", text)
    return tuple(int(part) for part in match.group(1).split(".")) if match else None


def _read(name: str) -> str:
    return resources.files("collectors.data").joinpath(name).read_text(encoding="utf-8")


def parse_sources(text: str, where: str) -> dict[str, str]:
    """`publisher=URL|hq=URL` -> {"publisher": URL, ...}; CatalogError on an unknown fact or a non-URL."""
    sources: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split("|"))):
        fact, sep, url = part.partition("=")
        if not sep or fact not in SOURCED_FACTS or not _URL.match(url.strip()):
            raise CatalogError(f"{where}: bad source {part!r} (expected publisher|hq|login=http(s)://...)")
        sources[fact] = url.strip()
    return sources


def parse_firmware(text: str, name: str = FIRMWARE_FILE) -> tuple[FirmwareFamily, ...]:
    """Parse firmware.csv; every non-empty publisher, HQ or factory login needs its source."""
    families: list[FirmwareFamily] = []
    for line, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        where = f"{name} line {line}"

        def cell(key: str, row: dict[str, str] = row, where: str = where) -> str | None:
            value = row.get(key)
            if value is None:
                raise CatalogError(f"{where}: missing column {key!r}")
            return value.strip() or None

        family, vendor = cell("family"), cell("vendor")
        if family is None or vendor is None:
            raise CatalogError(f"{where}: family and vendor are required")
        sources = parse_sources(cell("sources") or "", where)
        publisher, hq = cell("publisher"), cell("hq_country")
        user, password = cell("factory_user"), cell("factory_password")
        for fact, value in (("publisher", publisher), ("hq", hq), ("login", password or user)):
            if value is not None and fact not in sources:
                raise CatalogError(f"{where}: {fact} {value!r} has no source (add {fact}=URL to sources)")
        if hq is not None and not re.fullmatch(r"[A-Z]{2}", hq):
            raise CatalogError(f"{where}: hq_country {hq!r} is not an ISO 3166 alpha-2 code")
        families.append(
            FirmwareFamily(
                family=family,
                name=cell("name") or family,
                make=cell("make"),
                vendor=vendor,
                publisher=publisher,
                hq_country=hq,
                markers=tuple(m.strip() for m in (cell("markers") or "").split(";") if m.strip()),
                factory_user=user,
                factory_password=password,
                sources=sources,
            )
        )
    if len({f.family for f in families}) != len(families):
        raise CatalogError(f"{name}: a family appears twice")
    return tuple(families)


def parse_advisories(
    text: str, families: tuple[FirmwareFamily, ...], name: str = ADVISORIES_FILE
) -> tuple[Advisory, ...]:
    """Parse advisories.csv; each entry needs a known family, a valid range and date, and a source URL."""
    known = {f.family for f in families}
    advisories: list[Advisory] = []
    for line, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        where = f"{name} line {line}"
        values = {k: (v or "").strip() for k, v in row.items() if k is not None}
        required = ("id", "family", "affected", "published", "severity", "summary")
        missing = [k for k in required if not values.get(k)]
        if missing:
            raise CatalogError(f"{where}: empty {', '.join(missing)}")
        if not _URL.match(values.get("source", "")):
            raise CatalogError(f"{where}: advisory {values['id']} has no source URL")
        if values["family"] not in known:
            raise CatalogError(f"{where}: unknown family {values['family']!r}")
        if values["severity"] not in SEVERITIES:
            raise CatalogError(f"{where}: severity must be one of {', '.join(SEVERITIES)}")
        clauses = []
        for clause in values["affected"].split(","):
            match = _CLAUSE.match(clause)
            if match is None:
                raise CatalogError(f"{where}: bad range clause {clause!r}")
            field, op, value = match.groups()
            if field == "build":
                _date(value, where)
            clauses.append((field, op, value))
        advisories.append(
            Advisory(
                id=values["id"],
                family=values["family"],
                affected=values["affected"],
                published=_date(values["published"], where),
                severity=values["severity"],
                summary=values["summary"],
                source=values["source"],
                clauses=tuple(clauses),
            )
        )
    return tuple(advisories)


def _date(text: str, where: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise CatalogError(f"{where}: {text!r} is not an ISO date") from exc


@cache
def families() -> tuple[FirmwareFamily, ...]:
    """The firmware catalog (read once)."""
    return parse_firmware(_read(FIRMWARE_FILE))


@cache
def advisories() -> tuple[Advisory, ...]:
    """The advisory file (read once)."""
    return parse_advisories(_read(ADVISORIES_FILE), families())


def family_of(make: str | None, vendor: str | None) -> FirmwareFamily | None:
    """The family of an identified device: its make and firmware vendor; None when no row fits."""
    if vendor is None:
        return None
    for family in families():
        if family.vendor == vendor and (family.make is None or family.make == make):
            return family
    return None


_MONTHS = {
    m: i
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1
    )
}
_DATE_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # "Fri Dec 11 17:30:55 CST 2020" (bmminer/cgminer CompileTime, LuxOS CompileTime)
    (re.compile(r"\b([A-Z][a-z]{2})\s+(\d{1,2})\s+\d{1,2}:\d{2}:\d{2}\s+(?:[A-Z]{2,5}\s+)?(\d{4})\b"), "mdy"),
    # "10 Dec 2024 14:34:31 GMT" (MSKminer's CompileTime: day, month, year)
    (re.compile(r"(?<!\d)(\d{1,2})\s+([A-Z][a-z]{2})\s+(\d{4})\s+\d{1,2}:\d{2}:\d{2}\b"), "dmy"),
    # "2023-05.24-0ce5e7cc" (GCMiner), "2022-09-13" (Braiins OS builds), "2025.4.8.220305" (LuxOS)
    (re.compile(r"(?<!\d)(20\d{2})[-.](\d{1,2})[-.](\d{1,2})(?!\d)"), "ymd"),
    # "21072802_4ec6bb0_211fc46" (Avalon VERSION: YYMMDD and a build number)
    (re.compile(r"^(\d{2})(\d{2})(\d{2})\d{2}_[0-9a-f]+"), "yymd"),
    # "20210322.22.REL" (btminer), "20221206" (a bare build date)
    (re.compile(r"(?<!\d)(20\d{2})(\d{2})(\d{2})(?!\d)"), "ymd"),
)


def build_date(version: str | None) -> dt.date | None:
    """The build date a firmware version string carries, or None when it carries none.

    Reads the forms the replies hold: a CompileTime ("Fri Dec 11 17:30:55 CST 2020", MSKminer's
    "10 Dec 2024 14:34:31 GMT"), a dashed or dotted
    date ("2023-05.24", "2025.4.8"), an eight-digit date ("20210322.22.REL"), and Canaan's YYMMDDNN_
    prefix. A match that is not a real calendar date is skipped, never bent into one.
    """
    if not version:
        return None
    for pattern, order in _DATE_PATTERNS:
        for found in _dates(pattern, order, version):
            if found >= EARLIEST_BUILD:
                return found
    return None


EARLIEST_BUILD = dt.date(2009, 1, 3)
"""Bitcoin's genesis block: no mining firmware was built before it. LuxOS fills CompileTime with
"Mon Jan 01 00:01:01 UTC 2000" when it spoofs stock firmware; such a date is a placeholder, not a build."""


def _dates(pattern: re.Pattern[str], order: str, version: str) -> Iterator[dt.date]:
    """The calendar dates `pattern` finds in `version`, read in `order`; non-dates are skipped."""
    for match in pattern.finditer(version):
        a, b, c = match.groups()
        try:
            if order in ("mdy", "dmy"):
                day, name = (b, a) if order == "mdy" else (a, b)
                month = _MONTHS.get(name.lower())
                if month is not None:
                    yield dt.date(int(c), month, int(day))
                continue
            year = int(a) + (2000 if order == "yymd" else 0)
            yield dt.date(year, int(b), int(c))
        except ValueError:
            continue
