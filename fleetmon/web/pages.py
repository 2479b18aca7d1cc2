"""The dashboard pages (fleet overview, device, supply chain) and their static assets.

Each page is a shell; static/app.js fills it from the JSON API (the same routes, the same numbers).
A page needs the same permission as the API it shows: the fleet pages READ_FLEET, the supply-chain
page READ_SUPPLY_CHAIN (procurement and admin; others get a 403 page that says why). Static assets
are public: they are the open-source dashboard code and hold no farm data, and the login page needs
its stylesheet before anyone has logged in.
"""

from __future__ import annotations

from html import escape
from importlib.resources import files
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import HTMLResponse, Response

from collectors.sample import State
from fleetmon.service.auth import (
    PageForbiddenError,
    Permission,
    Principal,
    allows,
    require,
    require_page,
)
from fleetmon.service.deps import RuntimeDep
from fleetmon.service.sites import SiteHealth
from fleetmon.web.layout import page

ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "fleetmon.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
MAX_DEVICE_ID = 2**31 - 1

router = APIRouter(include_in_schema=False)

FleetPage = Annotated[Principal, Depends(require_page(Permission.READ_FLEET))]
SupplyPage = Annotated[Principal, Depends(require_page(Permission.READ_SUPPLY_CHAIN))]

# The state filter's choices come from the sample contract, so the page never keeps its own list.
STATE_OPTIONS = "".join(f'<option value="{s.value}">{s.value}</option>' for s in State)

OVERVIEW = (
    """
<h1>Fleet overview <small id="snapshot-at"></small></h1>
<div class="refresh" role="group" aria-label="refresh">
  <button id="refresh" type="button">Refresh</button>
  <label>Auto-refresh <select id="auto-refresh">
    <option value="0">off</option><option value="15">every 15 s</option>
    <option value="30" selected>every 30 s</option><option value="60">every 60 s</option>
    <option value="300">every 5 min</option></select></label>
  <button id="pause" type="button" aria-pressed="false">Pause</button>
  <span class="note" id="refreshed-at" aria-live="polite"></span>
</div>
{site_badges}
<p class="error" id="load-error" hidden></p>
<section class="kpis" id="kpis" aria-busy="true"></section>
<section class="row">
  <div class="card"><h2>Hashrate, measured vs expected</h2><div id="hashrate-sites"></div></div>
  <div class="card"><h2>Devices by state</h2><div id="states"></div></div>
</section>
<section class="card">
  <h2>Temperature by site and rack</h2>
  <p class="note" id="rack-rule"></p>
  <div id="heatmap"></div>
</section>
<section class="card">
  <h2>Worst devices against nominal</h2>
  <table id="worst" class="data"></table>
</section>
<section class="card">
  <h2>Devices</h2>
  <form id="filters" class="filters" role="search">
    <label>Search <input type="search" name="q" size="24" maxlength="100"
      placeholder="IP, serial, MAC or model" autocomplete="off"></label>
    <label>Site <select name="site"><option value="">all</option></select></label>
    <label>State <select name="state"><option value="">all</option>"""
    + STATE_OPTIONS
    + """</select></label>
    <label>Make <input name="make" size="10" placeholder="e.g. Antminer"></label>
    <label>Model <input name="model" size="12"></label>
    <label>Firmware <input name="firmware_vendor" size="10"></label>
    <button type="submit">Filter</button>
  </form>
  <div class="table-head"><p class="note" id="device-count" aria-live="polite"></p>
  <a id="csv" class="button" href="/api/v1/devices/export.csv" download="fleetmon-devices.csv">Export CSV</a>
  </div>
  <p class="note">Click a column heading to sort, again to reverse. The CSV holds every matching device in
  this order, not only this page.</p>
  {fleet_actions}
  <table id="devices" class="data"></table>
  <div class="pager"><button id="prev" type="button">&larr; Previous</button>
  <button id="next" type="button">Next &rarr;</button></div>
</section>
"""
)

# For the roles that may act: a bar acting on the devices ticked in the table (any page of it).
FLEET_ACTIONS = """
<div class="actions fleet-actions" role="group" aria-labelledby="selected-count">
  <p class="note" id="selected-count" aria-live="polite">No device selected: tick devices in the table
    to act on them.</p>
  <div class="action-buttons">
    <button type="button" data-action="reboot" disabled>Reboot</button>
    <button type="button" data-action="locate" data-on="true" disabled>Locate light on</button>
    <button type="button" data-action="locate" data-on="false" disabled>Locate light off</button>
    <button type="button" data-action="sleep" disabled>Sleep</button>
    <button type="button" data-action="wake" disabled>Wake</button>
    <button type="button" id="clear-selection" class="secondary" disabled>Clear selection</button>
  </div>
  <div id="action-status" class="job" role="status" aria-live="polite" hidden></div>
</div>
"""

DEVICE = """
<p><a href="/">&larr; Fleet</a></p>
<h1 id="device-title">Device</h1>
<p class="error" id="load-error" hidden></p>
{actions}
<section class="row">
  <div class="card"><h2>Identity</h2><dl id="identity" class="facts"></dl></div>
  <div class="card"><h2>Now</h2><dl id="now" class="facts"></dl></div>
</section>
<div class="range" role="group" aria-label="time range of the charts">
  <span class="note">Charts over</span>
  <button type="button" data-hours="1" aria-pressed="false">1 h</button>
  <button type="button" data-hours="6" aria-pressed="false">6 h</button>
  <button type="button" data-hours="24" aria-pressed="true">24 h</button>
  <button type="button" data-hours="168" aria-pressed="false">7 d</button>
</div>
<section class="card"><h2>Hashrate vs expected</h2><div id="chart-hashrate" class="chart"></div></section>
<section class="row">
  <div class="card"><h2>Temperature</h2><div id="chart-temp" class="chart"></div></div>
  <div class="card"><h2>Power</h2><div id="chart-power" class="chart"></div></div>
</section>
<section class="row">
  <div class="card"><h2>Boards</h2><table id="boards" class="data"></table></div>
  <div class="card"><h2>Pools</h2><table id="pools" class="data"></table></div>
</section>
<section class="card"><h2>Errors reported</h2><ul id="errors"></ul></section>
<section class="card"><h2>Security findings</h2><ul id="security"></ul></section>
{audit}
"""

# The confirmation every action goes through: it names each device, and Cancel has the focus.
CONFIRM_DIALOG = """
<dialog id="confirm-action" aria-labelledby="confirm-title" aria-describedby="confirm-text">
  <form method="dialog">
    <h2 id="confirm-title">Confirm</h2>
    <p id="confirm-text"></p>
    <ul id="confirm-devices" class="devices"></ul>
    <p class="note" id="confirm-refused" hidden></p>
    <div class="dialog-buttons">
      <button type="submit" value="cancel" class="secondary" autofocus>Cancel</button>
      <button type="submit" value="confirm" id="confirm-ok">Confirm</button>
    </div>
  </form>
</dialog>
"""

ACTIONS = (
    """
<section class="card actions" aria-labelledby="actions-title">
  <h2 id="actions-title">Act on this device</h2>
  <div class="action-buttons">
    <button type="button" data-action="reboot">Reboot</button>
    <button type="button" data-action="locate" data-on="true">Locate light on</button>
    <button type="button" data-action="locate" data-on="false">Locate light off</button>
    <button type="button" data-action="sleep">Sleep</button>
    <button type="button" data-action="wake">Wake</button>
  </div>
  <div id="action-status" class="job" role="status" aria-live="polite" hidden></div>
</section>"""
    + CONFIRM_DIALOG
)

AUDIT = """
<section class="card"><h2>Audit log</h2>
  <p class="note">Every action on this device, refused ones included, newest first.</p>
  <table id="audit" class="data"></table></section>
"""

SUPPLY_CHAIN = """
<h1>Supply chain <small id="as-of"></small></h1>
<p class="error" id="load-error" hidden></p>
<form id="basis-form" class="filters">
  <label>Basis <select name="basis"><option value="measured">measured hashrate</option>
  <option value="nominal">nominal hashrate</option></select></label>
  <label>Tariffs as of <input type="date" name="as_of"></label>
  <button type="submit">Show</button>
</form>
<section class="card" id="origin"><h2>How origin is known</h2><div id="origin-bar"></div>
  <p class="note" id="origin-note"></p></section>
<section class="row">
  <div class="card"><h2>Hash-share by manufacturer</h2><div id="share-manufacturer"></div>
    <table id="table-manufacturer" class="data"></table></div>
  <div class="card"><h2>Hash-share by assembly country</h2><div id="share-assembly_country"></div>
    <table id="table-assembly_country" class="data"></table></div>
</section>
<section class="card"><h2>Hash-share by firmware publisher country</h2>
  <p class="note">Who publishes the firmware the miners run (collectors/data/firmware.csv); unknown is
  shown as unknown, never guessed.</p>
  <div id="share-firmware_publisher_country"></div>
  <table id="table-firmware_publisher_country" class="data"></table></section>
<section class="card">
  <h2>Tariff exposure</h2>
  <p class="note" id="tariff-sources"></p>
  <p class="error" id="tariff-warning" hidden></p>
  <div class="kpis" id="exposure"></div>
  <h3>Exposure score and its components</h3>
  <table id="score" class="data"></table>
</section>
<section class="card">
  <h2>What if</h2>
  <form id="whatif" class="whatif">
    <fieldset><legend>Override a tariff layer</legend>
      <label>Layer <select name="layer"><option value="">(none)</option></select></label>
      <label>New rate, % <input name="rate" type="number" min="0" step="0.1" size="6"></label>
    </fieldset>
    <fieldset><legend>Re-source hashrate</legend>
      <label>TH/s <input name="ths" type="number" min="0" step="any" size="8"></label>
      <label>from <select name="from"></select></label>
      <label>to <select name="to"></select></label>
    </fieldset>
    <button type="submit">Compute</button>
  </form>
  <p class="error" id="whatif-error" hidden></p>
  <table id="whatif-result" class="data"></table>
</section>
"""


@router.get("/", response_class=HTMLResponse)
def overview_page(principal: FleetPage, runtime: RuntimeDep) -> HTMLResponse:
    """The fleet overview, with a badge per site saying whether its collector is heard from; for the
    roles that may act, a bar acting on the devices ticked in the table (confirmed in a dialog)."""
    acting = allows(principal.role, Permission.ACT_ON_DEVICES)
    body = OVERVIEW.replace("{site_badges}", site_badges(runtime.site_health()), 1).replace(
        "{fleet_actions}", FLEET_ACTIONS if acting else "", 1
    )
    if acting:
        body += CONFIRM_DIALOG
    return page(
        "Fleet", body, principal=principal, active="overview", data={"may-act": "1"} if acting else None
    )


def site_badges(sites: list[SiteHealth]) -> str:
    """One badge per site: `ok` (collector heard from lately), `stale`, or `offline` (it said goodbye)."""
    if not sites:
        return ""
    items = []
    for health in sites:
        state = health.state
        age = f"last seen {health.age_s:.0f} s ago" if health.age_s is not None else "never seen"
        items.append(
            f'<li class="badge site-{state}" data-site="{escape(health.site)}" title="{escape(age)}">'
            f"{escape(health.site)}: {state}</li>"
        )
    joined = "".join(items)
    return f'<ul class="site-badges" aria-label="collectors by site">{joined}</ul>'


@router.get("/devices/{device_id}", response_class=HTMLResponse)
def device_page(
    request: Request, principal: FleetPage, device_id: Annotated[int, Path(ge=1, le=MAX_DEVICE_ID)]
) -> HTMLResponse:
    """One device: identity, charts of its history, boards and pools; for operators and admins the
    action buttons (each confirmed in a dialog naming the device) and the device's audit log."""
    # The actions API and the audit log it keeps are for the roles that may act (operator, admin).
    acting = auditing = allows(principal.role, Permission.ACT_ON_DEVICES)
    body = DEVICE.replace("{actions}", ACTIONS if acting else "", 1).replace(
        "{audit}", AUDIT if auditing else "", 1
    )
    data = {"device-id": str(device_id)}
    if acting:
        data["may-act"] = "1"
    if auditing:
        data["audit"] = "1"
    return page(f"Device {device_id}", body, principal=principal, active="device", data=data)


@router.get("/supply-chain", response_class=HTMLResponse)
def supply_chain_page(principal: SupplyPage) -> HTMLResponse:
    """Hash-share, tariff exposure and the what-if form."""
    return page("Supply chain", SUPPLY_CHAIN, principal=principal, active="supply-chain")


@router.get("/static/{name}", dependencies=[Depends(require(None))])
def static_asset(name: str) -> Response:
    """A file of the dashboard (public: code and styles, no data)."""
    media_type = ASSETS.get(name)
    if media_type is None:
        raise HTTPException(404, detail="no such asset")
    body = files("fleetmon.web").joinpath("static", name).read_bytes()
    return Response(
        body,
        media_type=media_type,
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


def forbidden_page(request: Request, exc: Exception) -> HTMLResponse:
    """The 403 page of a dashboard page the caller's role may not see."""
    detail = escape(str(exc.detail)) if isinstance(exc, PageForbiddenError) else "forbidden"
    body = (
        "<h1>Not for this key</h1>"
        f'<p class="error">{detail}.</p>'
        "<p>The supply-chain page needs a key with the <b>procurement</b> or <b>admin</b> role "
        "(<code>fleetmon keys create --role procurement</code>).</p>"
        '<p><a href="/">Back to the fleet</a> · <a href="/login">log in with another key</a></p>'
    )
    return page("Forbidden", body, principal=None, active="forbidden", status_code=403)
