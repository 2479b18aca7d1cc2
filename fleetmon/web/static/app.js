// fleetmon dashboard: fills the page shells from the JSON API (the same routes any client uses).
// No framework, no CDN: small DOM and SVG helpers below, one init function per page.
// Every figure element carries data-value with the API's raw number, so tests compare exactly.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const STATE_COLORS = {
  mining: "#2e9e5b", idle: "#6b8fb3", sleeping: "#9aa3ad", degraded: "#e0a030",
  error: "#d64541", unreachable: "#7a2e8e",
};
const SERIES = ["#2f6fb0", "#e07b28", "#3a9e6e", "#b8457a", "#7a5cc0", "#8c8c3a", "#2aa3a3", "#c44"];

// ---------------------------------------------------------------------------------------- helpers

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== null && v !== undefined) node.setAttribute(k, String(v));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }
  return node;
}

function tip(text) {
  return svg("title", {}, text);
}

function num(value, digits = 1) {
  if (value === null || value === undefined) return "–";
  return Number(value).toLocaleString("en-US", {
    minimumFractionDigits: digits, maximumFractionDigits: digits,
  });
}
const ths = (v) => (v === null || v === undefined ? "–" : `${num(v, 1)} TH/s`);
// Fleet totals above 10,000 TH/s read better in PH/s (a KPI box holds about a dozen characters).
const bigThs = (v) => (v !== null && v !== undefined && Math.abs(v) >= 10000 ? `${num(v / 1000, 2)} PH/s` : ths(v));
const pct = (v, digits = 1) => (v === null || v === undefined ? "–" : `${num(100 * v, digits)}%`);
const usd = (v) => (v === null || v === undefined ? "–" : `$${num(v, 0)}`);
const celsius = (v) => (v === null || v === undefined ? "–" : `${num(v, 1)} °C`);
const watts = (v) => (v === null || v === undefined ? "–" : `${num(v, 0)} W`);
const when = (iso) => (iso ? new Date(iso).toLocaleString() : "–");

function figure(label, value, text, metric, extra) {
  return el("div", { class: "kpi", "data-metric": metric, "data-value": value ?? "" },
    el("span", { class: "label", text: label }),
    el("span", { class: "value", text }),
    extra ? el("span", { class: "sub", text: extra }) : null);
}

class AuthError extends Error {}

async function api(path, options = {}) {
  const response = await fetch(path, {
    credentials: "same-origin",
    ...options,
    headers: { Accept: "application/json", ...(options.headers || {}) },
  });
  if (response.status === 401) {
    location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
    throw new AuthError("session expired");
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = body && typeof body.detail === "string" ? body.detail : JSON.stringify(body);
    throw new Error(`${path}: HTTP ${response.status}: ${detail}`);
  }
  return body;
}

function showError(id, error) {
  if (error instanceof AuthError) return;
  const node = document.getElementById(id);
  node.textContent = String(error.message || error);
  node.hidden = false;
}

function table(node, headers, rows, opts = {}) {
  node.replaceChildren(
    el("thead", {}, el("tr", {}, headers.map((h, i) =>
      el("th", { class: opts.numeric && opts.numeric.includes(i) ? "num" : null, text: h })))),
    el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", {
      colspan: headers.length, class: "empty", text: opts.empty || "nothing to show",
    }))),
  );
}

function cell(content, cls, value) {
  return el("td", { class: cls, "data-value": value }, content);
}

function deviceLink(id, label) {
  return id === null || id === undefined ? label : el("a", { href: `/devices/${id}` }, label);
}

function stateBadge(state) {
  return el("span", { class: `badge state-${state}`, "data-state": state, text: state });
}

// ----------------------------------------------------------------------------------------- charts

// Horizontal bars: rows [{label, value, text, color, title}] scaled to the largest value (or `max`).
function barChart(container, rows, opts = {}) {
  const width = 560, rowH = 24, labelW = opts.labelWidth || 150, textW = 130;
  const max = opts.max || Math.max(...rows.map((r) => r.value || 0), 1e-9);
  const height = rows.length * rowH + 4;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "bars", role: "img" });
  rows.forEach((r, i) => {
    const y = i * rowH + 2, barW = Math.max(0, ((r.value || 0) / max) * (width - labelW - textW));
    chart.append(svg("g", {},
      tip(r.title || `${r.label}: ${r.text}`),
      svg("text", { x: labelW - 6, y: y + 15, "text-anchor": "end", class: "axis" }, r.label),
      svg("rect", { x: labelW, y: y + 3, width: barW, height: rowH - 8, rx: 2, fill: r.color || SERIES[0] }),
      svg("text", { x: labelW + barW + 6, y: y + 15, class: "val" }, r.text)));
  });
  container.replaceChildren(chart);
}

// One stacked horizontal bar with a legend: parts [{label, value, color, text}].
function stackedBar(container, parts, opts = {}) {
  const width = 560, total = parts.reduce((s, p) => s + (p.value || 0), 0);
  const chart = svg("svg", { viewBox: `0 0 ${width} 34`, class: "stack", role: "img" });
  let x = 0;
  for (const p of parts) {
    const w = total ? ((p.value || 0) / total) * width : 0;
    if (w > 0) {
      chart.append(svg("rect", { x, y: 4, width: w, height: 26, fill: p.color }, tip(`${p.label}: ${p.text}`)));
    }
    x += w;
  }
  const legend = el("ul", { class: "legend" }, parts.map((p) =>
    el("li", { "data-key": p.key || p.label, "data-value": p.value },
      el("span", { class: `swatch ${p.swatch || ""}` }), `${p.label} `, el("b", { text: p.text }))));
  if (opts.colorClass) legend.classList.add(opts.colorClass);
  container.replaceChildren(chart, legend);
}

function niceTicks(lo, hi, count = 5) {
  if (!(hi > lo)) { hi = lo + 1; }
  const raw = (hi - lo) / count, mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const ticks = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9; t += step) ticks.push(t);
  return ticks;
}

// Time series: series [{name, color, points: [[Date, value|null], ...], dash, step}]; gaps at null.
function lineChart(container, series, opts = {}) {
  const W = 720, H = 220, L = 56, R = 12, T = 10, B = 28;
  const all = series.flatMap((s) => s.points.filter((p) => p[1] !== null && p[1] !== undefined));
  if (!all.length) {
    container.replaceChildren(el("p", { class: "note", text: "no readings in this period" }));
    return;
  }
  const t0 = Math.min(...all.map((p) => p[0].getTime())), t1 = Math.max(...all.map((p) => p[0].getTime()));
  let lo = Math.min(...all.map((p) => p[1])), hi = Math.max(...all.map((p) => p[1]));
  if (opts.zero !== false) lo = Math.min(0, lo);
  const pad = (hi - lo) * 0.08 || Math.abs(hi) * 0.1 || 1;
  hi += pad;
  if (opts.zero === false) lo -= pad;
  const span = t1 - t0 || 3600e3;
  const x = (t) => L + ((t.getTime() - t0) / span) * (W - L - R);
  const y = (v) => T + (1 - (v - lo) / (hi - lo)) * (H - T - B);
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "line", role: "img" });
  for (const tick of niceTicks(lo, hi)) {
    chart.append(svg("line", { x1: L, x2: W - R, y1: y(tick), y2: y(tick), class: "grid" }),
      svg("text", { x: L - 6, y: y(tick) + 4, "text-anchor": "end", class: "axis" }, num(tick, tick % 1 ? 1 : 0)));
  }
  const days = span > 2 * 86400e3;
  for (let i = 0; i <= 4; i++) {
    const t = new Date(t0 + (span * i) / 4);
    const label = days ? t.toLocaleDateString([], { month: "short", day: "numeric" })
      : t.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    chart.append(svg("text", { x: x(t), y: H - 8, "text-anchor": i === 0 ? "start" : i === 4 ? "end" : "middle", class: "axis" }, label));
  }
  series.forEach((s, i) => {
    const color = s.color || SERIES[i % SERIES.length];
    let d = "", open = false;
    for (const [t, v] of s.points) {
      if (v === null || v === undefined) { open = false; continue; }
      d += `${open ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
      open = true;
    }
    chart.append(svg("path", { d, fill: "none", stroke: color, "stroke-width": s.width || 2,
      "stroke-dasharray": s.dash || null }, tip(s.name)));
    if (s.points.length <= 3) {
      for (const [t, v] of s.points) {
        if (v !== null && v !== undefined) chart.append(svg("circle", { cx: x(t), cy: y(v), r: 3, fill: color }));
      }
    }
  });
  const legend = el("ul", { class: "legend" }, series.map((s, i) =>
    el("li", {}, el("span", { class: `swatch line-${i}`, "data-color": s.color || SERIES[i % SERIES.length] }), s.name)));
  container.replaceChildren(chart, legend, opts.unit ? el("p", { class: "note", text: opts.unit }) : "");
  colorSwatches(container);
}

// Swatch colours are SVG (not inline styles, which the page's CSP forbids).
function colorSwatches(root) {
  for (const sw of root.querySelectorAll(".swatch[data-color]")) {
    const icon = svg("svg", { viewBox: "0 0 12 12", width: 12, height: 12 },
      svg("rect", { width: 12, height: 12, rx: 2, fill: sw.dataset.color }));
    sw.replaceChildren(icon);
  }
}

// Temperature colour: blue (cool) through yellow to red (hot), clamped to 35..90 °C.
function tempColor(t) {
  if (t === null || t === undefined) return "#d9dde2";
  const f = Math.min(1, Math.max(0, (t - 35) / 55));
  return `hsl(${Math.round(220 - 220 * f)}, 70%, ${Math.round(58 - 10 * f)}%)`;
}

function heatmap(container, data, siteFilter) {
  // One band per site; a site with more racks than fit across wraps onto further lines.
  const sites = data.sites.filter((s) => !siteFilter || s === siteFilter);
  const bySite = new Map(sites.map((s) => [s, data.racks.filter((r) => r.site === s)]));
  const most = Math.max(1, ...[...bySite.values()].map((r) => r.length));
  const labelW = 90, width = 1180, minCell = 16;
  const perLine = Math.min(most, Math.floor((width - labelW) / minCell));
  const cell = Math.min(44, Math.floor((width - labelW) / perLine)), rowH = cell >= 30 ? 30 : 16;
  const bands = sites.map((s) => Math.max(1, Math.ceil(bySite.get(s).length / perLine)));
  const W = labelW + perLine * cell + 10;
  const H = bands.reduce((sum, lines) => sum + lines * (rowH + 3) + 8, 0) + 4;
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: "heat", role: "img",
    "aria-label": "hottest temperature per rack" });
  let top = 2;
  sites.forEach((site, band) => {
    chart.append(svg("text", { x: labelW - 8, y: top + rowH / 2 + 4, "text-anchor": "end", class: "axis" }, site));
    bySite.get(site).forEach((r, i) => {
      const x = labelW + (i % perLine) * cell, y = top + Math.floor(i / perLine) * (rowH + 3);
      const rect = svg("rect", { x, y, width: cell - 2, height: rowH, rx: 2,
        fill: tempColor(r.temp_max_c), "data-site": r.site, "data-rack": r.rack, "data-temp": r.temp_max_c ?? "" },
      tip(`${site} rack ${r.rack} (${r.rack_source})\nhottest ${celsius(r.temp_max_c)}, mean ${celsius(r.temp_mean_c)}\n` +
        `${r.up}/${r.devices} devices up, ${ths(r.hashrate_ths)} of ${ths(r.expected_hashrate_ths)}`));
      chart.append(r.hottest_device_id ? svg("a", { href: `/devices/${r.hottest_device_id}` }, rect) : rect);
      if (cell >= 30 && r.temp_max_c !== null) {
        chart.append(svg("text", { x: x + (cell - 2) / 2, y: y + rowH / 2 + 4, "text-anchor": "middle",
          class: "cellval" }, Math.round(r.temp_max_c)));
      }
    });
    top += bands[band] * (rowH + 3) + 8;
  });
  const scale = svg("svg", { viewBox: "0 0 360 30", class: "scale" });
  for (let t = 35; t <= 90; t += 5) {
    scale.append(svg("rect", { x: ((t - 35) / 5) * 28, y: 0, width: 28, height: 12, fill: tempColor(t) }),
      svg("text", { x: ((t - 35) / 5) * 28, y: 26, class: "axis" }, `${t}`));
  }
  scale.append(svg("text", { x: 340, y: 10, class: "axis" }, "°C"));
  container.replaceChildren(chart, el("div", { class: "scale-row" }, el("span", { class: "note", text: "hottest device per rack · grey: no reading · click a rack for its hottest device" }), scale));
}

// --------------------------------------------------------------------------------------- overview

async function initOverview() {
  const form = document.getElementById("filters");  // its state choices come from the server
  const params = new URLSearchParams(location.search);
  let offset = 0;
  const limit = 50;

  const [summary, racks] = await Promise.all([api("/api/v1/fleet/summary"), api("/api/v1/fleet/racks")]);
  for (const s of summary.sites) form.site.append(el("option", { value: s.site, text: s.site }));
  for (const name of ["site", "state", "make", "model", "firmware_vendor"]) {
    if (params.get(name)) form[name].value = params.get(name);
  }
  document.getElementById("snapshot-at").textContent = `as of ${when(summary.snapshot_at)}`;
  const ratio = summary.expected_hashrate_ths ? summary.hashrate_ths / summary.expected_hashrate_ths : null;
  document.getElementById("kpis").replaceChildren(
    figure("Hashrate", summary.hashrate_ths, bigThs(summary.hashrate_ths), "hashrate_ths",
      `${pct(ratio)} of expected`),
    figure("Expected", summary.expected_hashrate_ths, bigThs(summary.expected_hashrate_ths), "expected_hashrate_ths"),
    figure("Devices up", summary.up, `${summary.up} / ${summary.devices}`, "up", `${summary.devices - summary.up} down`),
    figure("Power", summary.power_w, `${num(summary.power_w / 1000, 1)} kW`, "power_w"),
    figure("Efficiency", summary.efficiency_jth, `${num(summary.efficiency_jth, 1)} J/TH`, "efficiency_jth"),
  );
  document.getElementById("kpis").removeAttribute("aria-busy");

  const siteRows = summary.sites.flatMap((s) => [
    { label: s.site, value: s.hashrate_ths, text: ths(s.hashrate_ths), color: SERIES[0],
      title: `${s.site}: ${ths(s.hashrate_ths)} measured, ${s.up}/${s.devices} devices up` },
    { label: "expected", value: s.expected_hashrate_ths, text: ths(s.expected_hashrate_ths), color: "#b9c6d3" },
  ]);
  barChart(document.getElementById("hashrate-sites"), siteRows, { labelWidth: 90 });

  stackedBar(document.getElementById("states"), Object.keys(summary.devices_by_state).map((s) => ({
    key: s, label: s, value: summary.devices_by_state[s] || 0,
    text: String(summary.devices_by_state[s] || 0), color: STATE_COLORS[s], swatch: `state-${s}`,
  })));
  document.getElementById("states").querySelector(".legend").id = "state-legend";

  document.getElementById("rack-rule").textContent = `Rack: ${racks.rack_rule}.`;
  heatmap(document.getElementById("heatmap"), racks, form.site.value);

  table(document.getElementById("worst"),
    ["Device", "Site", "Model", "State", "Hashrate", "Expected", "Of nominal", "Hottest"],
    summary.worst_performers.map((d) => el("tr", { "data-device-id": d.id },
      cell(deviceLink(d.id, d.ip)), cell(d.site), cell(d.model || "–"), cell(stateBadge(d.state)),
      cell(ths(d.hashrate_ths), "num", d.hashrate_ths), cell(ths(d.expected_hashrate_ths), "num", d.expected_hashrate_ths),
      cell(pct(d.performance_ratio), "num ratio", d.performance_ratio), cell(celsius(d.temp_max_c), "num", d.temp_max_c))),
    { numeric: [4, 5, 6, 7], empty: "every reporting device meets its nominal hashrate" });

  async function loadDevices() {
    const query = new URLSearchParams({ limit, offset });
    for (const name of ["site", "state", "make", "model", "firmware_vendor"]) {
      if (form[name].value.trim()) query.set(name, form[name].value.trim());
    }
    const page = await api(`/api/v1/devices?${query}`);
    document.getElementById("device-count").textContent =
      `${page.total} devices match · showing ${page.total ? offset + 1 : 0}–${offset + page.items.length}`;
    document.getElementById("device-count").dataset.value = page.total;
    table(document.getElementById("devices"),
      ["Device", "Site", "Model", "Firmware", "State", "Hashrate", "Expected", "Hottest", "Power"],
      page.items.map((d) => el("tr", {},
        cell(deviceLink(d.id, d.ip)), cell(d.site), cell(d.model || d.make || "–"),
        cell(d.firmware_vendor || "–"), cell(stateBadge(d.state)),
        cell(ths(d.hashrate_ths), "num", d.hashrate_ths), cell(ths(d.expected_hashrate_ths), "num"),
        cell(celsius(d.temp_max_c), "num"), cell(watts(d.power_w), "num"))),
      { numeric: [5, 6, 7, 8], empty: "no device matches these filters" });
    document.getElementById("prev").disabled = offset === 0;
    document.getElementById("next").disabled = offset + limit >= page.total;
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    offset = 0;
    const query = new URLSearchParams();
    for (const name of ["site", "state", "make", "model", "firmware_vendor"]) {
      if (form[name].value.trim()) query.set(name, form[name].value.trim());
    }
    history.replaceState(null, "", query.toString() ? `?${query}` : location.pathname);
    heatmap(document.getElementById("heatmap"), racks, form.site.value);
    loadDevices().catch((e) => showError("load-error", e));
  });
  document.getElementById("prev").addEventListener("click", () => {
    offset = Math.max(0, offset - limit);
    loadDevices().catch((e) => showError("load-error", e));
  });
  document.getElementById("next").addEventListener("click", () => {
    offset += limit;
    loadDevices().catch((e) => showError("load-error", e));
  });
  await loadDevices();
}

// ----------------------------------------------------------------------------------------- device

async function initDevice() {
  const id = document.body.dataset.deviceId;
  const detail = await api(`/api/v1/devices/${id}?samples=120&hours=168`);
  const d = detail.device;
  document.getElementById("device-title").replaceChildren(
    `${d.model || d.make || "Device"} · ${d.ip}`, " ", stateBadge(d.state));
  const facts = (node, pairs) => node.replaceChildren(...pairs.flatMap(([k, v, raw]) =>
    [el("dt", { text: k }), el("dd", { "data-value": raw ?? null }, v ?? "–")]));
  facts(document.getElementById("identity"), [
    ["Site", d.site], ["Address", `${d.ip}:${d.port}`], ["Hostname", detail.hostname], ["MAC", detail.mac],
    ["Serial", d.serial], ["Manufacturer", d.manufacturer && `${d.manufacturer} (${d.manufacturer_country || "?"})`],
    ["Firmware", d.firmware_vendor && `${d.firmware_vendor} ${d.firmware_version || ""}`],
    ["Assembled in", `${d.assembly_country || "unknown"} (${d.origin_source})`],
    ["First seen", when(detail.first_seen)],
  ]);
  const ratio = d.hashrate_ths !== null && d.expected_hashrate_ths ? d.hashrate_ths / d.expected_hashrate_ths : null;
  facts(document.getElementById("now"), [
    ["State", d.state, d.state], ["Hashrate", ths(d.hashrate_ths), d.hashrate_ths],
    ["Expected", ths(d.expected_hashrate_ths), d.expected_hashrate_ths], ["Of nominal", pct(ratio), ratio],
    ["Hottest", celsius(d.temp_max_c), d.temp_max_c], ["Power", watts(d.power_w), d.power_w],
    ["Efficiency", d.efficiency_jth === null ? "–" : `${num(d.efficiency_jth, 1)} J/TH`, d.efficiency_jth],
    ["Last seen", when(d.last_seen)],
  ]);

  const recent = [...detail.recent_samples].reverse(); // oldest first
  const hours = detail.history;
  const at = (iso) => new Date(iso);
  // An hour's figures sit at its middle, or at the last reading for the hour still running.
  const lastSeen = new Date(d.last_seen).getTime();
  const hourMid = (h) => new Date(Math.min(new Date(h.hour).getTime() + 1800e3, lastSeen));
  lineChart(document.getElementById("chart-hashrate"), [
    { name: "hourly average", points: hours.map((h) => [hourMid(h), h.hashrate_avg_ths]), color: SERIES[0], width: 2.5 },
    { name: "hourly minimum", points: hours.map((h) => [hourMid(h), h.hashrate_min_ths]), color: "#9db8d6", width: 1 },
    { name: "recent samples", points: recent.map((s) => [at(s.ts), s.hashrate_ths]), color: SERIES[1] },
    { name: "expected (nominal)", points: recent.map((s) => [at(s.ts), s.expected_hashrate_ths]), color: "#555", dash: "5 4" },
  ], { unit: "TH/s" });
  const boards = [...new Set(recent.flatMap((s) => s.boards.map((b) => b.index)))].sort((a, b) => a - b);
  lineChart(document.getElementById("chart-temp"), [
    { name: "hottest, hourly average", points: hours.map((h) => [hourMid(h), h.temp_max_avg_c]), color: "#c0392b", width: 2.5 },
    { name: "hottest, samples", points: recent.map((s) => [at(s.ts), s.temp_max_c]), color: "#e67e22" },
    ...boards.map((b, i) => ({ name: `board ${b}`, color: SERIES[(i + 4) % SERIES.length], width: 1,
      points: recent.map((s) => [at(s.ts), (s.boards.find((x) => x.index === b) || {}).temp_c ?? null]) })),
  ], { unit: "°C", zero: false });
  lineChart(document.getElementById("chart-power"), [
    { name: "hourly average", points: hours.map((h) => [hourMid(h), h.power_avg_w]), color: SERIES[2], width: 2.5 },
    { name: "samples", points: recent.map((s) => [at(s.ts), s.power_w]), color: SERIES[4] },
  ], { unit: "W" });

  const latest = detail.recent_samples[0];
  table(document.getElementById("boards"), ["Board", "Hashrate", "Board temp", "Chip temp", "Chips"],
    (latest ? latest.boards : []).map((b) => el("tr", {},
      cell(String(b.index)), cell(ths(b.hashrate_ths), "num", b.hashrate_ths), cell(celsius(b.temp_c), "num"),
      cell(celsius(b.chip_temp_c), "num"),
      cell(b.chips === null ? "–" : `${b.chips}${b.expected_chips ? ` / ${b.expected_chips}` : ""}`,
        b.expected_chips && b.chips < b.expected_chips ? "num warn" : "num"))),
    { numeric: [1, 2, 3, 4], empty: "no board data in the latest sample" });
  table(document.getElementById("pools"), ["Pool", "User", "Status", "Accepted", "Rejected"],
    (latest ? latest.pools : []).map((p) => el("tr", { class: p.active ? "active" : null },
      cell(p.url), cell(p.user || "–"), cell(`${p.status || "–"}${p.active ? " (active)" : ""}`),
      cell(num(p.accepted, 0), "num"), cell(num(p.rejected, 0), "num"))),
    { numeric: [3, 4], empty: "no pool data in the latest sample" });
  const errors = latest ? latest.errors : [];
  document.getElementById("errors").replaceChildren(...(errors.length
    ? errors.map((e) => el("li", {}, el("code", { text: e.code }), ` ${e.message}`))
    : [el("li", { class: "note", text: "none in the latest sample" })]));
  // Findings reach keys that may read them (admin, operator, procurement); others get an empty list.
  const findings = latest ? latest.security || [] : [];
  document.getElementById("security").replaceChildren(...(findings.length
    ? findings.map((f) => el("li", { class: `finding ${f.severity}` }, el("code", { text: f.code }),
      ` ${f.severity}: ${f.message}`))
    : [el("li", { class: "note", text: "none in the latest sample (or not visible to this key)" })]));
}

// ----------------------------------------------------------------------------------- supply chain

const ORIGIN_COLORS = { declared: "#2e9e5b", inferred: "#e0a030", unknown: "#9aa3ad" };
const RESOURCE_TARGETS = ["US", "MY", "TH", "ID", "VN", "SG", "CN"];

function shareSection(dim, data) {
  const rows = data.groups.map((g, i) => ({
    label: g.key, value: g.share, text: `${pct(g.share)} · ${ths(g.hashrate_ths)}`,
    color: g.key === "unknown" ? "#9aa3ad" : SERIES[i % SERIES.length],
  }));
  barChart(document.getElementById(`share-${dim}`), rows, { max: 1, labelWidth: 120 });
  const heading = { manufacturer: "Manufacturer", assembly_country: "Assembly country",
    firmware_publisher_country: "Firmware publisher country" }[dim];
  table(document.getElementById(`table-${dim}`), [heading,
    "Hashrate", "Share", "Devices"],
  data.groups.map((g) => el("tr", { "data-key": g.key },
    cell(g.key), cell(ths(g.hashrate_ths), "num", g.hashrate_ths), cell(pct(g.share), "num share", g.share),
    cell(String(g.devices), "num", g.devices))), { numeric: [1, 2, 3] });
  const foot = el("tfoot", {}, el("tr", {}, cell("Total"), cell(ths(data.total_ths), "num", data.total_ths),
    cell("100%", "num"), cell(String(data.devices_counted), "num")),
  el("tr", {}, el("td", { colspan: 4, class: "note",
    text: `HHI ${num(data.hhi, 0)} of 10,000` + (data.devices_without_hashrate
      ? ` · ${data.devices_without_hashrate} devices without a ${data.basis} hashrate left out` : "") })));
  document.getElementById(`table-${dim}`).append(foot);
}

function sourcesEndText(day) {
  return day ? `sources end ${day}` : "sources end not stated";
}

function exposureFigures(e) {
  return [
    ["Replacement duty", e.replacement_duty_usd, usd(e.replacement_duty_usd), "replacement_duty_usd"],
    ["Weighted duty rate", e.hashrate_weighted_rate, pct(e.hashrate_weighted_rate), "hashrate_weighted_rate"],
    ["Duty per TH/s", e.usd_per_ths, e.usd_per_ths === null ? "–" : `$${num(e.usd_per_ths, 2)}`, "usd_per_ths"],
    ["Reclassification liability", e.reclassification_liability_usd, usd(e.reclassification_liability_usd), "reclassification_liability_usd"],
    ["IEEPA paid, maybe refundable", e.ieepa_refundable_usd, usd(e.ieepa_refundable_usd), "ieepa_refundable_usd"],
    ["of which via CAPE phase 1", e.ieepa_refund_cape_phase1_usd, usd(e.ieepa_refund_cape_phase1_usd), "ieepa_refund_cape_phase1_usd"],
    ["of which finally liquidated (under appeal)", e.ieepa_refund_finally_liquidated_usd,
      usd(e.ieepa_refund_finally_liquidated_usd), "ieepa_refund_finally_liquidated_usd"],
    ["Exposure score", e.score.score, `${num(e.score.score, 1)} / 100`, "score"],
  ];
}

async function initSupplyChain() {
  const form = document.getElementById("basis-form");
  const whatif = document.getElementById("whatif");
  const params = new URLSearchParams(location.search);
  if (params.get("basis")) form.basis.value = params.get("basis");
  if (params.get("as_of")) form.as_of.value = params.get("as_of");
  let asOf = null;

  async function load() {
    const basis = form.basis.value;
    const exposureQuery = new URLSearchParams({ limit: 0 });
    if (form.as_of.value) exposureQuery.set("as_of", form.as_of.value);
    const [maker, assembly, software, exposure] = await Promise.all([
      api(`/api/v1/supply-chain/hash-share?by=manufacturer&basis=${basis}`),
      api(`/api/v1/supply-chain/hash-share?by=assembly_country&basis=${basis}`),
      api(`/api/v1/supply-chain/hash-share?by=firmware_publisher_country&basis=${basis}`),
      api(`/api/v1/supply-chain/tariff-exposure?${exposureQuery}`),
    ]);
    asOf = exposure.as_of;
    document.getElementById("as-of").textContent =
      `tariffs as of ${asOf} · ${sourcesEndText(exposure.sources_end)} · ${basis} hashrate`;
    const sources = document.getElementById("tariff-sources");
    sources.textContent = `Duties priced from schedule ${exposure.schedule}; ${sourcesEndText(exposure.sources_end)}.`;
    sources.dataset.sourcesEnd = exposure.sources_end ?? "";
    const warning = document.getElementById("tariff-warning");
    warning.textContent = exposure.warning ?? "";
    warning.hidden = !exposure.warning;
    const o = maker.origin;
    stackedBar(document.getElementById("origin-bar"), ["declared", "inferred", "unknown"].map((k) => ({
      key: k, label: { declared: "declared (inventory)", inferred: "inferred (catalog default)", unknown: "unknown" }[k],
      value: o[`${k}_ths`], text: `${ths(o[`${k}_ths`])} · ${pct(o.total_ths ? o[`${k}_ths`] / o.total_ths : null)}`,
      color: ORIGIN_COLORS[k], swatch: `origin-${k}`,
    })));
    const note = document.getElementById("origin-note");
    note.textContent = `${pct(o.inferred_or_unknown_share)} of the ${basis} hashrate rests on inferred or unknown assembly origin.`;
    note.dataset.value = o.inferred_or_unknown_share;
    shareSection("manufacturer", maker);
    shareSection("assembly_country", assembly);
    shareSection("firmware_publisher_country", software);
    document.getElementById("exposure").replaceChildren(...exposureFigures(exposure).map(([label, v, text, key]) =>
      figure(label, v, text, key)));
    const s = exposure.score;
    table(document.getElementById("score"), ["Component", "Value (0–1)", "Weight", "Points"],
      Object.entries(s.components).map(([k, v]) => el("tr", { "data-key": k },
        cell(k.replaceAll("_", " ")), cell(num(v, 3), "num", v), cell(num(s.weights[k], 2), "num", s.weights[k]),
        cell(num(100 * v * (s.weights[k] ?? 0), 1), "num"))), { numeric: [1, 2, 3] });
    document.getElementById("score").append(el("tfoot", {}, el("tr", {}, cell("Score"), cell(""), cell(""),
      cell(`${num(s.score, 1)} / 100`, "num", s.score))));

    // What-if choices: the layers in force for each origin the fleet has, on the same date.
    const origins = assembly.groups.map((g) => g.key).filter((k) => /^[A-Z]{2}$/.test(k));
    const rates = await Promise.all(origins.map((c) => api(`/api/v1/tariffs/rate?origin=${c}&date=${asOf}`)));
    const layers = new Map();
    for (const r of rates) for (const l of r.layers) layers.set(l.id, l);
    const keepLayer = whatif.layer.value;
    whatif.layer.replaceChildren(el("option", { value: "", text: "(none)" }),
      ...[...layers.values()].map((l) => el("option", { value: l.id, text: `${l.name} (${pct(l.rate)})` })));
    if (layers.has(keepLayer)) whatif.layer.value = keepLayer;
    const keepFrom = whatif.from.value, keepTo = whatif.to.value;
    whatif.from.replaceChildren(...origins.map((c) => el("option", { value: c, text: c })));
    whatif.to.replaceChildren(...[...new Set([...RESOURCE_TARGETS, ...origins])].map((c) => el("option", { value: c, text: c })));
    if (origins.includes(keepFrom)) whatif.from.value = keepFrom;
    whatif.to.value = keepTo || "US";
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const query = new URLSearchParams({ basis: form.basis.value });
    if (form.as_of.value) query.set("as_of", form.as_of.value);
    history.replaceState(null, "", `?${query}`);
    load().catch((e) => showError("load-error", e));
  });

  whatif.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = document.getElementById("whatif-error");
    error.hidden = true;
    const body = { name: "dashboard what-if", as_of: asOf, rate_overrides: {}, resourcing: [] };
    if (whatif.layer.value && whatif.rate.value !== "") {
      body.rate_overrides[whatif.layer.value] = Number(whatif.rate.value) / 100;
    }
    if (whatif.ths.value !== "" && Number(whatif.ths.value) > 0) {
      body.resourcing.push({ from: whatif.from.value, to: whatif.to.value, ths: Number(whatif.ths.value) });
    }
    try {
      const result = await api("/api/v1/supply-chain/scenarios", {
        method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "application/json" },
      });
      const before = exposureFigures(result.before), after = exposureFigures(result.after);
      const out = document.getElementById("whatif-result");
      table(out, ["Figure", "Before", "After", "Change"], before.map(([label, v, text, key], i) => {
        const change = after[i][1] !== null && v !== null ? after[i][1] - v : null;
        return el("tr", { "data-key": key },
          cell(label), cell(text, "num before", v), cell(after[i][2], "num after", after[i][1]),
          cell(change === null ? "–" : `${change > 0 ? "+" : ""}${key === "hashrate_weighted_rate"
            ? `${num(100 * change, 1)} pts` : key === "score" ? num(change, 1) : key === "usd_per_ths" ? `$${num(change, 2)}` : usd(change)}`,
          `num ${change > 0 ? "up" : change < 0 ? "down" : ""}`, change));
      }), { numeric: [1, 2, 3] });
      out.append(el("caption", { text: `Moved ${ths(result.moved_ths)}; tariffs as of ${result.before.as_of}; `
        + `${sourcesEndText(result.before.sources_end)}.` }));
      out.dataset.movedThs = result.moved_ths;
      out.dataset.ready = String(Number(out.dataset.ready || 0) + 1);
    } catch (e) {
      showError("whatif-error", e);
    }
  });
  await load();
}

// ------------------------------------------------------------------------------------------- boot

const PAGES = { overview: initOverview, device: initDevice, "supply-chain": initSupplyChain };

document.addEventListener("DOMContentLoaded", () => {
  colorSwatches(document);
  const init = PAGES[document.body.dataset.page];
  if (!init) return;
  init()
    .then(() => { document.body.dataset.ready = "1"; })
    .catch((e) => {
      showError("load-error", e);
      document.body.dataset.ready = "error";
    });
});
