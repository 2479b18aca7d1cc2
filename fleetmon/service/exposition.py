"""Prometheus text exposition (format 0.0.4), written for fleets of many thousand miners.

At 10,000 miners /metrics is about 370,000 lines (37 MB). Building client_python families for them (a
label dict and a Sample tuple per line) and writing those generically cost 2.1-3.1 s on the 2-core
reference machine, the writer alone about 1 s; `generate_latest` is slower still (it escapes and sorts
every label of every sample). The goal is < 1 s.

So `render` writes the per-miner metrics straight from the snapshot, driven by the same table
(`fleetmon.service.metrics.MINER_FAMILIES`) that `collect()` builds families from, so names, help,
labels and values are defined once:
- each miner's `site="..",ip=".."` prefix is escaped and formatted once per render, each board's, fan's
  and pool's label suffix once per render, then every line is a single f-string;
- values are formatted with repr(), which is valid Prometheus text for every finite float; +Inf, -Inf
  and NaN get the spellings Prometheus expects; absent values (None) cost one test and no line;
- label values read from the device (info, state) are rendered once per distinct tuple of values;
- the rows of boards, fans and pools are two flat lists (label text, item) per scope: keeping ~100,000
  small tuples alive instead made the cyclic GC re-walk the snapshot's pydantic objects and doubled
  the render time.
The few fleet, PDU and collector families go through the generic family writer below.
Figures (bench/bench_metrics.py, 10,000 miners and 250 PDUs, 381,000 lines, 2 shared cores, min and
median of 7): this path 0.54 s / 0.62 s; families + generic writer 2.6 s / 3.9 s; `generate_latest`
7.9 s / 9.2 s. More in docs/metrics.md.

Tests compare this output with `generate_latest` over the same collector sample for sample and run it
through `promtool check metrics`.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Sequence
from typing import Any

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from fleetmon.service.metrics import DEVICE, MINER, MINER_FAMILIES, FleetRegistry, MinerFamily, Scope
from fleetmon.service.snapshot import DeviceView

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_TYPE_NAMES = {
    "counter": "counter",
    "gauge": "gauge",
    "histogram": "histogram",
    "summary": "summary",
    "info": "gauge",
    "stateset": "gauge",
    "unknown": "untyped",
}

# Within this range repr() of a number is valid Prometheus text; outside it (and for NaN, which fails
# both comparisons) `_special` spells it.
_LOW, _HIGH = -math.inf, math.inf


def _special(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "+Inf" if value > 0 else "-Inf"


def escape_value(value: str) -> str:
    """A label value escaped for the text format (backslash, newline, double quote)."""
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


def _escape_help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


class _LabelText:
    """Renders `,name="value",...` once per distinct tuple of values during one render."""

    def __init__(self) -> None:
        self._cache: dict[tuple[tuple[str, ...], tuple[str, ...]], str] = {}

    def __call__(self, names: tuple[str, ...], values: tuple[str, ...]) -> str:
        key = (names, values)
        text = self._cache.get(key)
        if text is None:
            parts = [f',{n}="{escape_value(v)}"' for n, v in zip(names, values, strict=True)]
            text = self._cache[key] = "".join(parts)
        return text


def render(registry: Collector) -> bytes:
    """Render every metric family the registry yields, in the Prometheus text format.

    fleetmon's own registry (metrics.build_registry) takes the fast path over its snapshot; any other
    collector is written family by family.
    """
    out: list[str] = []
    if isinstance(registry, FleetRegistry):
        collector = registry.fleet_collector
        snap = collector.source()  # read once: both parts describe the same snapshot
        write_miners(MINER_FAMILIES, snap.devices, out)
        write_families(collector.other_families(snap), out)
    else:
        write_families(registry.collect(), out)
    return "".join(out).encode()


def render_families(metrics: Iterable[Metric]) -> bytes:
    """Client_python metric families in the text format (the runtime families of every scrape)."""
    out: list[str] = []
    write_families(metrics, out)
    return "".join(out).encode()


GZIP_LEVEL = 1
"""zlib level of /metrics: level 1 already shrinks this repetitive text ~10x in a fraction of the time
of the default 6 (bench/bench_metrics.py prints bytes and seconds)."""


class GzipHead:
    """A gzip stream of a body, left open so that every scrape can finish it with its own tail.

    The fleet body is compressed once per snapshot version (`GzipHead(body)`, in a worker thread); a
    scrape copies the compressor (its state, not the data) and adds the few per-scrape lines and the
    gzip trailer: one valid gzip member, whatever the client's decoder, at the cost of the tail alone.
    """

    def __init__(self, body: bytes) -> None:
        self._compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        self.head = self._compressor.compress(body) + self._compressor.flush(zlib.Z_SYNC_FLUSH)

    def finish(self, tail: bytes) -> bytes:
        """The head, `tail` and the gzip trailer: the whole compressed response body."""
        compressor = self._compressor.copy()
        return self.head + compressor.compress(tail) + compressor.flush(zlib.Z_FINISH)


def accepts_gzip(accept_encoding: str | None) -> bool:
    """True when an Accept-Encoding header accepts gzip: listed (or `*`, where gzip is not) with a
    quality above zero (RFC 9110 section 12.5.3)."""
    qualities: dict[str, float] = {}
    for part in (accept_encoding or "").split(","):
        name, *params = (p.strip().lower() for p in part.split(";"))
        quality = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    quality = float(param[2:])
                except ValueError:
                    quality = 0.0
        qualities[name] = quality
    for name in ("gzip", "x-gzip", "*"):
        if name in qualities:
            return qualities[name] > 0
    return False


def _header(out: list[str], name: str, help: str, type: str) -> None:
    out.append(f"# HELP {name} {_escape_help(help)}\n# TYPE {name} {type}\n")


def write_miners(families: Sequence[MinerFamily[Any]], devices: Sequence[DeviceView], out: list[str]) -> None:
    """Append the per-miner families of `families` for `devices`, walking the devices once per family."""
    label_text = _LabelText()
    prefixes = [label_text(MINER, (d.site, d.sample.ip))[1:] for d in devices]
    # scope -> (label text, item) of every device, board, fan or pool of the fleet, as two flat lists
    # built once per render: flat lists of strings keep the cyclic GC from re-walking the snapshot.
    flat: dict[Scope[Any], tuple[list[str], list[Any]]] = {DEVICE: (prefixes, list(devices))}
    append = out.append
    low, high = _LOW, _HIGH
    for spec in families:
        _header(out, spec.name, spec.help, spec.type)
        scope = spec.scope
        labels, items = flat.get(scope) or flat.setdefault(
            scope, _flatten(scope, devices, prefixes, label_text)
        )
        head = spec.name + "{"
        for series in spec.series:
            get, extra = series.value, series.labels
            if callable(extra):
                for label, item in zip(labels, items, strict=True):
                    v = get(item)
                    if v is not None:
                        number = repr(v) if low < v < high else _special(v)
                        append(f"{head}{label}{label_text(spec.extra, extra(item))}}} {number}\n")
                continue
            tail = label_text(spec.extra, extra) + "} "
            for label, item in zip(labels, items, strict=True):
                v = get(item)
                if v is not None:
                    append(f"{head}{label}{tail}{repr(v) if low < v < high else _special(v)}\n")


def _flatten(
    scope: Scope[Any], devices: Sequence[DeviceView], prefixes: list[str], label_text: _LabelText
) -> tuple[list[str], list[Any]]:
    labels: list[str] = []
    items: list[Any] = []
    names, children = scope.labels, scope.children
    assert children is not None  # the device scope is flat already
    for device, prefix in zip(devices, prefixes, strict=True):
        for values, item in children(device):
            labels.append(prefix + label_text(names, values))
            items.append(item)
    return labels, items


def write_families(metrics: Iterable[Metric], out: list[str]) -> None:
    """Append client_python metric families in the text format (labels in the families' order)."""
    append = out.append
    values: dict[str, str] = {}
    for metric in metrics:
        name = metric.name + "_total" if metric.type == "counter" else metric.name
        _header(out, name, metric.documentation, _TYPE_NAMES.get(metric.type, "untyped"))
        skip_created = metric.type == "counter"
        for sample_name, labels, value, *_ in metric.samples:
            if skip_created and sample_name.endswith("_created"):
                continue
            text = ""
            if labels:
                parts = []
                for k, v in labels.items():  # the format does not require sorted labels
                    escaped = values.get(v)
                    if escaped is None:
                        escaped = values[v] = escape_value(v)
                    parts.append(f'{k}="{escaped}"')
                text = "{" + ",".join(parts) + "}"
            number = repr(float(value)) if _LOW < value < _HIGH else _special(value)
            append(f"{sample_name}{text} {number}\n")
