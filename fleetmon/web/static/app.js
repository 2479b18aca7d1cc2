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
// Hashrate and power read in the largest unit the figure reaches (TH/s, PH/s, EH/s; W, kW, MW), three
// significant digits past the base unit. fleetmon/web/readable.py is the same rule on the server; the
// tests check both against one table of cases.
const HASHRATE_UNITS = ["TH/s", "PH/s", "EH/s"];
const POWER_UNITS = ["W", "kW", "MW"];

function scaledText(value, units, baseDecimals) {
  if (value === null || value === undefined || Number.isNaN(Number(value))) return "–";
  const magnitude = Math.abs(Number(value)), sign = Number(value) < 0 ? -1 : 1;
  let step = 0;
  while (step < units.length - 1 && magnitude >= 1000 ** (step + 1)) step += 1;
  let mantissa, decimals, shown;
  for (;;) {
    mantissa = magnitude / 1000 ** step;
    decimals = step === 0 ? baseDecimals : mantissa < 10 ? 2 : mantissa < 100 ? 1 : 0;
    shown = Number(mantissa.toFixed(decimals));  // toFixed rounds the exact value, halves away from 0
    if (step === units.length - 1 || shown < 1000) break;
    step += 1;
  }
  if (step > 0 && decimals > 0 && shown >= 10 ** (3 - decimals)) {
    decimals -= 1;  // 9.999 PH/s rounds to 10.00: keep three significant digits (10.0 PH/s)
    shown = Number(mantissa.toFixed(decimals));
  }
  const text = (shown === 0 ? 0 : sign * shown).toLocaleString("en-US", {
    minimumFractionDigits: decimals, maximumFractionDigits: decimals,
  });
  return `${text} ${units[step]}`;
}
const hashrateText = (ths) => scaledText(ths, HASHRATE_UNITS, 1);
const powerText = (w) => scaledText(w, POWER_UNITS, 0);
const ths = hashrateText;
const watts = powerText;
const pct = (v, digits = 1) => (v === null || v === undefined ? "–" : `${num(100 * v, digits)}%`);
const usd = (v) => (v === null || v === undefined ? "–" : `$${num(v, 0)}`);
const celsius = (v) => (v === null || v === undefined ? "–" : `${num(v, 1)} °C`);
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

// Time series: series [{name, color, points: [[Date, value|null], ...], dash}]; gaps at null.
// opts: from/to (Date) fix the time axis to a chosen range (points outside it are left out); units
// (HASHRATE_UNITS or POWER_UNITS) scale the value axis to the unit its largest figure reaches; text(v)
// says a value in the hover tooltip; unit names the axis when not scaled.
function lineChart(container, series, opts = {}) {
  const W = 720, H = 220, L = 56, R = 12, T = 10, B = 28;
  const inRange = (p) => p[1] !== null && p[1] !== undefined
    && (!opts.from || p[0] >= opts.from) && (!opts.to || p[0] <= opts.to);
  series = series.map((s) => ({ ...s, points: s.points.filter(inRange) }));
  const all = series.flatMap((s) => s.points);
  if (!all.length) {
    container.replaceChildren(el("p", { class: "note", text: "no readings in this period" }));
    return;
  }
  const t0 = opts.from ? opts.from.getTime() : Math.min(...all.map((p) => p[0].getTime()));
  const t1 = opts.to ? opts.to.getTime() : Math.max(...all.map((p) => p[0].getTime()));
  let lo = Math.min(...all.map((p) => p[1])), hi = Math.max(...all.map((p) => p[1]));
  let factor = 1, unit = opts.unit || "";
  if (opts.units) {
    let step = 0;
    while (step < opts.units.length - 1 && Math.max(Math.abs(lo), Math.abs(hi)) >= 1000 ** (step + 1)) step += 1;
    factor = 1000 ** step;
    unit = opts.units[step];
  }
  lo /= factor; hi /= factor;
  if (opts.zero !== false) lo = Math.min(0, lo);
  const pad = (hi - lo) * 0.08 || Math.abs(hi) * 0.1 || 1;
  hi += pad;
  if (opts.zero === false) lo -= pad;
  const span = t1 - t0 || 3600e3;
  const x = (t) => L + ((t.getTime() - t0) / span) * (W - L - R);
  const y = (v) => T + (1 - (v / factor - lo) / (hi - lo)) * (H - T - B);
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "line", role: "img", tabindex: 0,
    "aria-label": `${opts.label || "chart"}; arrow keys read the values`,
    "data-from": new Date(t0).toISOString(), "data-to": new Date(t1).toISOString(), "data-unit": unit });
  for (const tick of niceTicks(lo, hi)) {
    chart.append(svg("line", { x1: L, x2: W - R, y1: y(tick * factor), y2: y(tick * factor), class: "grid" }),
      svg("text", { x: L - 6, y: y(tick * factor) + 4, "text-anchor": "end", class: "axis" },
        num(tick, tick % 1 ? 1 : 0)));
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
    let d = "", open = false, last = null;
    for (const [t, v] of s.points) {
      // A gap longer than three of the series' usual steps is a gap in the readings, not a line.
      if (last !== null && s.gap && t - last > s.gap) open = false;
      d += `${open ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
      open = true;
      last = t;
    }
    chart.append(svg("path", { d, fill: "none", stroke: color, "stroke-width": s.width || 2,
      "stroke-dasharray": s.dash || null, "data-series": s.name, "data-points": s.points.length }, tip(s.name)));
    if (s.points.length <= 3) {
      for (const [t, v] of s.points) chart.append(svg("circle", { cx: x(t), cy: y(v), r: 3, fill: color }));
    }
  });
  const legend = el("ul", { class: "legend" }, series.map((s, i) =>
    el("li", {}, el("span", { class: `swatch line-${i}`, "data-color": s.color || SERIES[i % SERIES.length] }), s.name)));
  const tipBox = el("div", { class: "chart-tip", role: "status", hidden: true });
  container.replaceChildren(chart, tipBox, legend, unit ? el("p", { class: "note", text: unit }) : "");
  colorSwatches(container);
  hoverValues(chart, tipBox, series, { x, y, L, R, W, H, T, B, text: opts.text || ((v) => num(v, 1)) });
}

// The tooltip of a line chart: at the time nearest the pointer (or chosen with the arrow keys), each
// series' reading nearest that time, with a guide line and a dot on each.
function hoverValues(chart, tipBox, series, g) {
  const times = [...new Set(series.flatMap((s) => s.points.map((p) => p[0].getTime())))].sort((a, b) => a - b);
  if (!times.length) return;
  const guide = svg("line", { y1: g.T, y2: g.H - g.B, class: "guide", visibility: "hidden" });
  const dots = svg("g", { class: "dots" });
  chart.append(guide, dots, svg("rect", { x: g.L, y: g.T, width: g.W - g.L - g.R, height: g.H - g.T - g.B,
    fill: "transparent", class: "hover-area" }));
  let current = -1;
  const show = (index) => {
    current = Math.max(0, Math.min(times.length - 1, index));
    const at = new Date(times[current]);
    const rows = [];
    dots.replaceChildren();
    series.forEach((s, i) => {
      if (!s.points.length) return;
      const near = s.points.reduce((best, p) =>
        Math.abs(p[0] - at) < Math.abs(best[0] - at) ? p : best, s.points[0]);
      if (g.x(near[0]) - g.x(at) > 12 || g.x(at) - g.x(near[0]) > 12) return;  // no reading of it here
      const color = s.color || SERIES[i % SERIES.length];
      dots.append(svg("circle", { cx: g.x(near[0]), cy: g.y(near[1]), r: 4, fill: color, stroke: "#fff" }));
      rows.push(el("li", { "data-series": s.name, "data-value": near[1] },
        el("span", { class: "swatch", "data-color": color }), `${s.name}: `, el("b", { text: g.text(near[1]) })));
    });
    guide.setAttribute("x1", g.x(at)); guide.setAttribute("x2", g.x(at));
    guide.setAttribute("visibility", "visible");
    tipBox.replaceChildren(el("time", { datetime: at.toISOString(), text: at.toLocaleString() }), el("ul", {}, rows));
    colorSwatches(tipBox);
    tipBox.hidden = false;
    const box = chart.getBoundingClientRect(), scale = box.width / g.W;
    const left = g.x(at) * scale;
    tipBox.dataset.x = String(Math.round(left));
    tipBox.dataset.time = at.toISOString();
    positionTip(tipBox, left, box.width);
  };
  const hide = () => { guide.setAttribute("visibility", "hidden"); dots.replaceChildren(); tipBox.hidden = true; };
  chart.addEventListener("mousemove", (event) => {
    const box = chart.getBoundingClientRect();
    const vx = ((event.clientX - box.left) / box.width) * g.W;
    let best = 0;
    times.forEach((t, i) => { if (Math.abs(g.x(new Date(t)) - vx) < Math.abs(g.x(new Date(times[best])) - vx)) best = i; });
    show(best);
  });
  chart.addEventListener("mouseleave", hide);
  chart.addEventListener("blur", hide);
  chart.addEventListener("keydown", (event) => {
    const moves = { ArrowLeft: -1, ArrowRight: 1, Home: -times.length, End: times.length };
    if (event.key === "Escape") { hide(); return; }
    if (!(event.key in moves)) return;
    event.preventDefault();
    show(current < 0 ? (moves[event.key] < 0 ? times.length - 1 : 0) : current + moves[event.key]);
  });
}

// The tooltip sits beside the guide line, on the side with more room. CSSOM writes are not inline
// styles, so the page's Content-Security-Policy (style-src 'self') allows them.
function positionTip(tipBox, left, width) {
  if (left > width / 2) {
    tipBox.style.left = "";
    tipBox.style.right = `${Math.round(width - left + 10)}px`;
  } else {
    tipBox.style.right = "";
    tipBox.style.left = `${Math.round(left + 10)}px`;
  }
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

// The device table's columns: [heading, sort field (the API's `sort`), numeric, cell of a device].
const DEVICE_COLUMNS = [
  ["Device", "ip", false, (d) => cell(deviceLink(d.id, d.ip), null, d.ip)],
  ["Site", "site", false, (d) => cell(d.site)],
  ["Model", "model", false, (d) => cell(d.model || d.make || "–")],
  ["Serial", "serial", false, (d) => cell(d.serial || "–", "mono")],
  ["MAC", "mac", false, (d) => cell(d.mac || "–", "mono")],
  ["Firmware", "firmware_vendor", false, (d) => cell(d.firmware_vendor || "–")],
  ["State", "state", false, (d) => cell(stateBadge(d.state))],
  ["Hashrate", "hashrate_ths", true, (d) => cell(hashrateText(d.hashrate_ths), "num", d.hashrate_ths)],
  ["Expected", "expected_hashrate_ths", true, (d) => cell(hashrateText(d.expected_hashrate_ths), "num", d.expected_hashrate_ths)],
  ["Hottest", "temp_max_c", true, (d) => cell(celsius(d.temp_max_c), "num", d.temp_max_c)],
  ["Power", "power_w", true, (d) => cell(powerText(d.power_w), "num", d.power_w)],
];
const DEVICE_FILTERS = ["q", "site", "state", "make", "model", "firmware_vendor"];
const PAGE_SIZE = 50;

// Header cells whose buttons sort the table; aria-sort tells a screen reader the order in force.
function sortableHead(sort, order, onSort) {
  return el("thead", {}, el("tr", {}, DEVICE_COLUMNS.map(([label, field, numeric]) => {
    const active = sort === field;
    const th = el("th", { class: numeric ? "num" : null, scope: "col",
      "aria-sort": active ? (order === "desc" ? "descending" : "ascending") : "none" },
    el("button", { type: "button", class: "sort", "data-sort": field,
      title: `sort by ${label.toLowerCase()}` }, label, el("span", { class: "arrow", "aria-hidden": "true",
      text: active ? (order === "desc" ? " ▼" : " ▲") : "" })));
    th.querySelector("button").addEventListener("click", () => onSort(field));
    return th;
  })));
}

async function initOverview() {
  const form = document.getElementById("filters");  // its state choices come from the server
  const params = new URLSearchParams(location.search);
  let offset = Number(params.get("offset")) || 0;
  let sort = params.get("sort") || "";
  let order = params.get("order") === "desc" ? "desc" : "asc";
  let racks = null, sitesListed = false, refreshes = 0;
  // Operators and admins tick devices on any page of the table and act on them together.
  const selection = document.body.dataset.mayAct === "1" ? fleetSelection(() => refresh()) : null;
  for (const name of DEVICE_FILTERS) {
    if (params.get(name) && name !== "site") form[name].value = params.get(name);
  }

  function deviceQuery(withPage) {
    const query = new URLSearchParams();
    for (const name of DEVICE_FILTERS) {
      if (form[name].value.trim()) query.set(name, form[name].value.trim());
    }
    if (sort) { query.set("sort", sort); query.set("order", order); }
    if (withPage) { query.set("limit", PAGE_SIZE); query.set("offset", offset); }
    return query;
  }

  async function loadSummary() {
    const [summary, rackData] = await Promise.all([api("/api/v1/fleet/summary"), api("/api/v1/fleet/racks")]);
    racks = rackData;
    if (!sitesListed) {
      for (const s of summary.sites) form.site.append(el("option", { value: s.site, text: s.site }));
      if (params.get("site")) form.site.value = params.get("site");
      sitesListed = true;
    }
    document.getElementById("snapshot-at").textContent = `as of ${when(summary.snapshot_at)}`;
    const ratio = summary.expected_hashrate_ths ? summary.hashrate_ths / summary.expected_hashrate_ths : null;
    document.getElementById("kpis").replaceChildren(
      figure("Hashrate", summary.hashrate_ths, hashrateText(summary.hashrate_ths), "hashrate_ths",
        `${pct(ratio)} of expected`),
      figure("Expected", summary.expected_hashrate_ths, hashrateText(summary.expected_hashrate_ths), "expected_hashrate_ths"),
      figure("Devices up", summary.up, `${summary.up} / ${summary.devices}`, "up", `${summary.devices - summary.up} down`),
      figure("Power", summary.power_w, powerText(summary.power_w), "power_w"),
      figure("Efficiency", summary.efficiency_jth, `${num(summary.efficiency_jth, 1)} J/TH`, "efficiency_jth"),
    );
    document.getElementById("kpis").removeAttribute("aria-busy");

    const siteRows = summary.sites.flatMap((s) => [
      { label: s.site, value: s.hashrate_ths, text: hashrateText(s.hashrate_ths), color: SERIES[0],
        title: `${s.site}: ${hashrateText(s.hashrate_ths)} measured, ${s.up}/${s.devices} devices up, ${powerText(s.power_w)}` },
      { label: "expected", value: s.expected_hashrate_ths, text: hashrateText(s.expected_hashrate_ths), color: "#b9c6d3" },
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
        cell(hashrateText(d.hashrate_ths), "num", d.hashrate_ths),
        cell(hashrateText(d.expected_hashrate_ths), "num", d.expected_hashrate_ths),
        cell(pct(d.performance_ratio), "num ratio", d.performance_ratio), cell(celsius(d.temp_max_c), "num", d.temp_max_c))),
      { numeric: [4, 5, 6, 7], empty: "every hashing device meets its nominal hashrate" });
  }

  async function loadDevices() {
    const page = await api(`/api/v1/devices?${deviceQuery(true)}`);
    if (page.total && offset >= page.total) {  // the list shrank under a later page: back to the last one
      offset = Math.floor((page.total - 1) / PAGE_SIZE) * PAGE_SIZE;
      return loadDevices();
    }
    const count = document.getElementById("device-count");
    count.textContent = `${page.total} devices match · showing ${page.total ? offset + 1 : 0}–${offset + page.items.length}`;
    count.dataset.value = page.total;
    const devices = document.getElementById("devices");
    // Keep the keyboard where it was: a focused sort button is focused again in the new table (a
    // refresh never takes the focus from elsewhere, such as the search box being typed in).
    const focused = devices.contains(document.activeElement) ? document.activeElement.dataset.sort : null;
    const head = sortableHead(sort, order, (field) => {
      order = sort === field && order === "asc" ? "desc" : "asc";
      sort = field;
      offset = 0;
      showDevices();
    });
    const rows = page.items.map((d) => el("tr", { "data-device-id": d.id }, DEVICE_COLUMNS.map((c) => c[3](d))));
    if (selection) selection.decorate(head, rows, page.items);
    devices.replaceChildren(head, el("tbody", {}, rows.length
      ? rows
      : el("tr", {}, el("td", { colspan: DEVICE_COLUMNS.length + (selection ? 1 : 0), class: "empty",
        text: "no device matches these filters" }))));
    const csv = document.getElementById("csv");
    csv.href = `/api/v1/devices/export.csv?${deviceQuery(false)}`;
    document.getElementById("prev").disabled = offset === 0;
    document.getElementById("next").disabled = offset + PAGE_SIZE >= page.total;
    devices.dataset.query = deviceQuery(true).toString();
    if (focused) devices.querySelector(`button[data-sort="${focused}"]`)?.focus();
  }

  function showDevices() {
    const query = deviceQuery(false);
    if (offset) query.set("offset", offset);
    history.replaceState(null, "", query.toString() ? `?${query}` : location.pathname);
    loadDevices().catch((e) => showError("load-error", e));
  }

  async function refresh() {
    await Promise.all([loadSummary(), loadDevices()]);
    refreshes += 1;
    document.body.dataset.refreshes = String(refreshes);
    const at = new Date();
    const stamp = document.getElementById("refreshed-at");
    stamp.textContent = `updated ${at.toLocaleTimeString()}`;
    stamp.dataset.at = at.toISOString();
    document.getElementById("load-error").hidden = true;
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    offset = 0;
    if (racks) heatmap(document.getElementById("heatmap"), racks, form.site.value);
    showDevices();
  });
  // Search as one types, a moment after the last key (each answer is one page of at most 50 rows).
  let typing = null;
  form.q.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => { offset = 0; showDevices(); }, 250);
  });
  document.getElementById("prev").addEventListener("click", () => {
    offset = Math.max(0, offset - PAGE_SIZE);
    showDevices();
  });
  document.getElementById("next").addEventListener("click", () => {
    offset += PAGE_SIZE;
    showDevices();
  });
  autoRefresh(refresh);
  await refresh();
}

// The refresh button, and a timer that refreshes every N seconds until paused (the interval choice
// "off" or the pause button); a hidden tab skips its turns. Nothing reloads the page.
function autoRefresh(refresh) {
  const button = document.getElementById("refresh");
  const every = document.getElementById("auto-refresh");
  const pause = document.getElementById("pause");
  let timer = null, busy = false;
  const run = async () => {
    if (busy) return;
    busy = true;
    button.disabled = true;
    try {
      await refresh();
    } catch (e) {
      showError("load-error", e);
    } finally {
      busy = false;
      button.disabled = false;
    }
  };
  const paused = () => pause.getAttribute("aria-pressed") === "true";
  const arm = () => {
    clearInterval(timer);
    timer = null;
    const seconds = Number(every.value);
    const running = seconds > 0 && !paused();
    document.body.dataset.autoRefresh = running ? String(seconds) : "off";
    pause.disabled = !(seconds > 0);
    if (running) timer = setInterval(() => { if (!document.hidden) run(); }, seconds * 1000);
  };
  button.addEventListener("click", run);
  every.addEventListener("change", () => { pause.setAttribute("aria-pressed", "false"); pause.textContent = "Pause"; arm(); });
  pause.addEventListener("click", () => {
    const now = !paused();
    pause.setAttribute("aria-pressed", String(now));
    pause.textContent = now ? "Resume" : "Pause";
    arm();
  });
  arm();
}

// ----------------------------------------------------------------------------------------- device

const RANGES_H = [1, 6, 24, 168];

async function initDevice() {
  const id = document.body.dataset.deviceId;
  const params = new URLSearchParams(location.search);
  let hours = RANGES_H.includes(Number(params.get("hours"))) ? Number(params.get("hours")) : 24;
  let detail = await loadDevice(id, hours);
  renderDevice(detail, hours);
  const rangeButtons = [...document.querySelectorAll(".range button[data-hours]")];
  const pressRange = () => rangeButtons.forEach((b) => b.setAttribute("aria-pressed", String(Number(b.dataset.hours) === hours)));
  pressRange();
  for (const button of rangeButtons) {
    button.addEventListener("click", async () => {
      hours = Number(button.dataset.hours);
      pressRange();
      history.replaceState(null, "", hours === 24 ? location.pathname : `?hours=${hours}`);
      try {
        detail = await loadDevice(id, hours);
        renderDevice(detail, hours);
      } catch (e) {
        showError("load-error", e);
      }
    });
  }
  if (document.body.dataset.mayAct === "1") {
    deviceActions(() => detail, async () => {
      detail = await loadDevice(id, hours);
      renderDevice(detail, hours);
      if (document.body.dataset.audit === "1") await loadAudit(id);
    });
  }
  if (document.body.dataset.audit === "1") await loadAudit(id);
}

// A device with enough history for `hours`: hourly rollups over the range, and the newest samples
// (the charts show those that fall inside the range).
function loadDevice(id, hours) {
  return api(`/api/v1/devices/${id}?samples=${hours <= 24 ? 500 : 120}&hours=${hours}`);
}

// The locate light as last known: from the poll, or from the device's answer to a locate (or reboot).
function locateText(locate) {
  if (!locate) return "not reported";
  const how = locate.source === "poll" ? "read by the poll" : `confirmed by ${locate.action || "an action"}`;
  return `${locate.on ? "on" : "off"} (${how}, ${when(locate.at)})`;
}

function renderDevice(detail, hours) {
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
    ["State", d.state, d.state], ["Hashrate", hashrateText(d.hashrate_ths), d.hashrate_ths],
    ["Expected", hashrateText(d.expected_hashrate_ths), d.expected_hashrate_ths], ["Of nominal", pct(ratio), ratio],
    ["Hottest", celsius(d.temp_max_c), d.temp_max_c], ["Power", powerText(d.power_w), d.power_w],
    ["Efficiency", d.efficiency_jth === null ? "–" : `${num(d.efficiency_jth, 1)} J/TH`, d.efficiency_jth],
    ["Locate light", locateText(detail.locate), detail.locate ? String(detail.locate.on) : null],
    ["Last seen", when(d.last_seen)],
  ]);

  const recent = [...detail.recent_samples].reverse(); // oldest first
  const hourly = detail.history;
  const at = (iso) => new Date(iso);
  // An hour's figures sit at its middle, or at the last reading for the hour still running.
  const lastSeen = new Date(d.last_seen).getTime();
  const hourMid = (h) => new Date(Math.min(new Date(h.hour).getTime() + 1800e3, lastSeen));
  const to = new Date(Math.max(Date.now(), lastSeen)), from = new Date(to.getTime() - hours * 3600e3);
  const range = { from, to };
  const hourGap = 3 * 3600e3;
  lineChart(document.getElementById("chart-hashrate"), [
    { name: "hourly average", points: hourly.map((h) => [hourMid(h), h.hashrate_avg_ths]), color: SERIES[0], width: 2.5, gap: hourGap },
    { name: "hourly minimum", points: hourly.map((h) => [hourMid(h), h.hashrate_min_ths]), color: "#9db8d6", width: 1, gap: hourGap },
    { name: "recent samples", points: recent.map((s) => [at(s.ts), s.hashrate_ths]), color: SERIES[1] },
    { name: "expected (nominal)", points: recent.map((s) => [at(s.ts), s.expected_hashrate_ths]), color: "#555", dash: "5 4" },
  ], { ...range, units: HASHRATE_UNITS, text: hashrateText, label: "hashrate" });
  const boards = [...new Set(recent.flatMap((s) => s.boards.map((b) => b.index)))].sort((a, b) => a - b);
  lineChart(document.getElementById("chart-temp"), [
    { name: "hottest, hourly average", points: hourly.map((h) => [hourMid(h), h.temp_max_avg_c]), color: "#c0392b", width: 2.5, gap: hourGap },
    { name: "hottest, samples", points: recent.map((s) => [at(s.ts), s.temp_max_c]), color: "#e67e22" },
    ...boards.map((b, i) => ({ name: `board ${b}`, color: SERIES[(i + 4) % SERIES.length], width: 1,
      points: recent.map((s) => [at(s.ts), (s.boards.find((x) => x.index === b) || {}).temp_c ?? null]) })),
  ], { ...range, unit: "°C", zero: false, text: celsius, label: "temperature" });
  lineChart(document.getElementById("chart-power"), [
    { name: "hourly average", points: hourly.map((h) => [hourMid(h), h.power_avg_w]), color: SERIES[2], width: 2.5, gap: hourGap },
    { name: "samples", points: recent.map((s) => [at(s.ts), s.power_w]), color: SERIES[4] },
  ], { ...range, units: POWER_UNITS, text: powerText, label: "power" });
  for (const chart of document.querySelectorAll(".chart")) chart.dataset.hours = String(hours);

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

// ---------------------------------------------------------------------------------------- actions

const TERMINAL_JOB_STATES = new Set(["succeeded", "failed", "partial", "cancelled"]);
const CONFIRM_NAMES = 25;  // a confirmation names this many devices, then says how many more
const JOB_POLL_MS = 1000;
const JOB_FOLLOW_MS = 10 * 60e3;

function actionLabel(action, params) {
  if (action === "locate") return params.on ? "Turn the locate light on" : "Turn the locate light off";
  return { reboot: "Reboot", sleep: "Put to sleep (stop hashing)", wake: "Wake (resume hashing)" }[action] || action;
}

// How a confirmation names a device: model, host (address and hostname) and serial.
function deviceName(d) {
  const host = `${d.ip}:${d.port}${d.hostname ? ` (${d.hostname})` : ""}`;
  return `${d.model || d.make || "unknown model"} at ${host}, serial ${d.serial || "unknown"}`;
}

// A random RFC 4122 version-4 id; crypto.randomUUID exists only in secure contexts (https, localhost),
// and a farm's dashboard is often plain http on a private address.
function newIdempotencyKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// Ask before acting: a modal dialog naming every device. Resolves true on Confirm only; Cancel, Escape
// or closing the dialog any other way resolve false, and nothing is sent.
function confirmAction(dialog, action, params, devices, refused = []) {
  const label = actionLabel(action, params);
  dialog.querySelector("#confirm-title").textContent = `${label}?`;
  dialog.querySelector("#confirm-text").textContent = devices.length === 1
    ? `${label} this device:` : `${label} these ${devices.length} devices:`;
  const named = devices.slice(0, CONFIRM_NAMES).map((d) => el("li", { "data-device-id": d.id, text: deviceName(d) }));
  if (devices.length > CONFIRM_NAMES) named.push(el("li", { class: "more", text: `and ${devices.length - CONFIRM_NAMES} more` }));
  dialog.querySelector("#confirm-devices").replaceChildren(...named);
  const left = dialog.querySelector("#confirm-refused");
  if (left) {
    left.hidden = !refused.length;
    left.textContent = refused.length
      ? `Left out, ${refused.length} of the selected: ${refused.slice(0, CONFIRM_NAMES).map((d) => `${d.host} (${d.excluded})`).join("; ")}${refused.length > CONFIRM_NAMES ? "; ..." : ""}`
      : "";
  }
  dialog.querySelector("#confirm-ok").textContent = label;
  dialog.dataset.action = action;
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
    dialog.showModal();
  });
}

function postAction(deviceId, action, params) {
  return api(`/api/v1/devices/${deviceId}/actions`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "Idempotency-Key": newIdempotencyKey() },
    body: JSON.stringify({ action, params }),
  });
}

function showJob(node, job, label) {
  node.hidden = false;
  node.dataset.state = job.state;
  node.dataset.jobId = job.id;
  const tasks = (job.tasks || []).filter((t) => t.error_code || t.detail);
  node.replaceChildren(
    el("p", {}, el("b", { text: `${label}: ` }), el("span", { class: `job-state job-${job.state}`, text: job.state }),
      ` · ${job.devices_done ?? 0} of ${job.devices_total ?? "?"} done, ${job.devices_failed ?? 0} failed`),
    el("progress", { max: job.devices_total || 1, value: job.devices_done || 0,
      "aria-label": "devices done" }),
    tasks.length ? el("ul", {}, tasks.map((t) => el("li", { "data-state": t.state },
      `${t.host}: ${t.state}`, t.error_code ? el("code", { text: ` ${t.error_code}` }) : "",
      t.detail ? ` ${t.detail}` : ""))) : "");
}

// Poll the job until it ends (or stop following after a while: the audit log has the outcome).
async function followJob(node, job, label) {
  const started = Date.now();
  showJob(node, job, label);
  while (!TERMINAL_JOB_STATES.has(job.state)) {
    if (Date.now() - started > JOB_FOLLOW_MS) {
      node.append(el("p", { class: "note", text: "still running; the audit log will show how it ends" }));
      return job;
    }
    await new Promise((resolve) => setTimeout(resolve, JOB_POLL_MS));
    job = await api(`/api/v1/actions/${encodeURIComponent(job.id)}`);
    showJob(node, job, label);
  }
  return job;
}

function deviceActions(current, after) {
  const dialog = document.getElementById("confirm-action");
  const status = document.getElementById("action-status");
  const buttons = [...document.querySelectorAll(".action-buttons button[data-action]")];
  for (const button of buttons) {
    button.addEventListener("click", async () => {
      const action = button.dataset.action;
      const params = action === "locate" ? { on: button.dataset.on === "true" } : {};
      const device = current().device;
      const target = { ...device, hostname: current().hostname };
      if (!(await confirmAction(dialog, action, params, [target]))) return;
      const label = actionLabel(action, params);
      buttons.forEach((b) => { b.disabled = true; });
      try {
        const job = await postAction(device.id, action, params);
        await followJob(status, job, label);
        await after();
      } catch (e) {
        if (!(e instanceof AuthError)) {
          status.hidden = false;
          status.dataset.state = "error";
          status.replaceChildren(el("p", { class: "error", text: `${label}: ${e.message || e}` }));
        }
      } finally {
        buttons.forEach((b) => { b.disabled = false; });
      }
    });
  }
}

// The overview's selection: a tick box per row and one for the page, kept across pages, filters and
// refreshes until cleared, and the bar whose buttons act on the ticked devices. An action first asks
// the server for a dry run, so the dialog names the devices that will be sent the action and those left
// out with the reason (firmware that cannot, no credential profile); Confirm then sends one request.
function fleetSelection(after) {
  const chosen = new Map();  // device id -> the device as listed when ticked
  const bar = document.querySelector(".fleet-actions");
  const count = document.getElementById("selected-count");
  const buttons = [...bar.querySelectorAll("button[data-action]")];
  const clear = document.getElementById("clear-selection");
  const status = document.getElementById("action-status");
  const dialog = document.getElementById("confirm-action");
  let busy = false;

  function update() {
    count.textContent = chosen.size
      ? `${chosen.size} device${chosen.size === 1 ? "" : "s"} selected (on any page of the table)`
      : "No device selected: tick devices in the table to act on them.";
    count.dataset.value = chosen.size;
    for (const b of [...buttons, clear]) b.disabled = busy || !chosen.size;
    for (const box of document.querySelectorAll("#devices input.pick[data-device-id]")) {
      box.checked = chosen.has(Number(box.dataset.deviceId));
    }
    const all = document.querySelector("#devices input.pick-page");
    if (all) {
      const boxes = [...document.querySelectorAll("#devices input.pick[data-device-id]")];
      all.checked = boxes.length > 0 && boxes.every((b) => b.checked);
      all.indeterminate = !all.checked && boxes.some((b) => b.checked);
    }
  }

  function decorate(head, rows, items) {
    const pageBox = el("input", { type: "checkbox", class: "pick-page", "aria-label": "select every device on this page" });
    pageBox.addEventListener("change", () => {
      for (const d of items) if (d.id !== null) { if (pageBox.checked) chosen.set(d.id, d); else chosen.delete(d.id); }
      update();
    });
    head.querySelector("tr").prepend(el("th", { scope: "col", class: "pick" }, pageBox));
    rows.forEach((row, i) => {
      const d = items[i];
      const box = el("input", { type: "checkbox", class: "pick", "data-device-id": d.id, "aria-label": `select ${d.ip}`,
        disabled: d.id === null ? "" : null });
      box.addEventListener("change", () => {
        if (box.checked) chosen.set(d.id, d); else chosen.delete(d.id);
        update();
      });
      row.prepend(el("td", { class: "pick" }, box));
    });
    queueMicrotask(update);
  }

  async function act(action, params) {
    const label = actionLabel(action, params);
    const request = { action, params, selector: { ids: [...chosen.keys()] } };
    const plan = await api("/api/v1/actions", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ ...request, dry_run: true }),
    });
    const refused = plan.devices.filter((d) => d.excluded);
    const going = plan.devices.filter((d) => !d.excluded)
      .map((d) => chosen.get(d.device_id) || { id: d.device_id, ip: d.host, port: "", model: d.model });
    if (!going.length) {
      status.hidden = false;
      status.dataset.state = "refused";
      status.replaceChildren(el("p", { class: "error", text: `${label}: none of the selected devices can: ${
        refused.map((d) => `${d.host} (${d.excluded})`).join("; ")}` }));
      return;
    }
    if (!(await confirmAction(dialog, action, params, going, refused))) return;
    const job = await api("/api/v1/actions", {
      method: "POST",
      headers: { "Content-Type": "application/json", "Idempotency-Key": newIdempotencyKey() },
      body: JSON.stringify(request),
    });
    await followJob(status, job, label);
    await after();
  }

  for (const button of buttons) {
    button.addEventListener("click", async () => {
      const action = button.dataset.action;
      const params = action === "locate" ? { on: button.dataset.on === "true" } : {};
      busy = true;
      update();
      try {
        await act(action, params);
      } catch (e) {
        if (!(e instanceof AuthError)) {
          status.hidden = false;
          status.dataset.state = "error";
          status.replaceChildren(el("p", { class: "error", text: `${actionLabel(action, params)}: ${e.message || e}` }));
        }
      } finally {
        busy = false;
        update();
      }
    });
  }
  clear.addEventListener("click", () => { chosen.clear(); update(); });
  update();
  return { decorate };
}

async function loadAudit(deviceId) {
  const audit = await api(`/api/v1/audit?device_id=${deviceId}&limit=50`);
  const params = (p) => (p && Object.keys(p).length ? Object.entries(p).map(([k, v]) => `${k}=${v}`).join(", ") : "");
  table(document.getElementById("audit"), ["When", "Who", "Action", "Outcome", "Detail", "Job"],
    audit.entries.map((e) => el("tr", { "data-audit-id": e.id, "data-action": e.action, "data-outcome": e.outcome },
      cell(when(e.at)), cell(`${e.actor} (${e.role})`), cell(`${e.action}${params(e.params) ? ` ${params(e.params)}` : ""}`),
      cell(e.outcome), cell(e.detail || "–"), cell(e.job_id ?? "–"))),
    { empty: "no action on this device yet" });
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
