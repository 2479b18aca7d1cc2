"""`fleetmon action ACTION TARGETS...`: act on miners through the service's API, and follow the job.

TARGETS are device ids or IP addresses (resolved through GET /api/v1/devices); `--site`, `--model` and
`--state` select by those instead or as well (every criterion given must match). `--dry-run` prints
the plan and sends nothing; `--ramp step_devices=N,step_kw=KW,interval_s=S,target_site_kw=KW` stages
the action. The job is followed until it ends: a progress bar on a terminal, one line per change
otherwise. Exit status: 0 when every device succeeded, 1 when the job failed, was partial or was
cancelled, 2 for a request the service refused or could not be reached.

The key comes from `--key`, `--key-file` or FLEETMON_API_KEY and is never printed. Each run sends one
Idempotency-Key, so a POST retried after a dropped connection never acts twice.
Imports stay light (httpx inside the handler): `fleetmon --help` must not load it.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ACTIONS = ("reboot", "locate", "sleep", "wake", "power_target")
RAMP_KEYS = {"step_devices": int, "step_kw": float, "interval_s": float, "target_site_kw": float}
ENDED = {"succeeded", "failed", "partial", "cancelled"}
DEFAULT_API = "http://127.0.0.1:8000"
POST_ATTEMPTS = 3
FOLLOW_EVERY_S = 1.0
BAR_WIDTH = 30


class UsageError(ValueError):
    """A command-line value the command cannot use."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `action` command."""
    p = subparsers.add_parser(
        "action", help="act on miners through the API (reboot, locate, sleep, wake, power)"
    )
    p.add_argument("action", choices=ACTIONS)
    p.add_argument("targets", nargs="*", metavar="TARGET", help="device ids or IP addresses")
    p.add_argument("--param", action="append", default=[], metavar="K=V", help="on=true|false, watts=3000")
    p.add_argument("--dry-run", action="store_true", help="print the plan; send nothing")
    p.add_argument("--ramp", metavar="K=V,...", help="step_devices, step_kw, interval_s, target_site_kw")
    p.add_argument("--site", help="select the devices of this site")
    p.add_argument("--model", help="select the devices of this model")
    p.add_argument("--state", help="select the devices in this state (mining, sleeping, ...)")
    p.add_argument("--api", default=os.environ.get("FLEETMON_API", DEFAULT_API), help="service URL")
    p.add_argument("--key", help="API key (prefer --key-file or FLEETMON_API_KEY)")
    p.add_argument("--key-file", type=Path, help="file holding the API key")
    p.add_argument("--no-follow", action="store_true", help="print the job and return at once")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per HTTP request")
    p.set_defaults(handler=run_action)


def parse_params(items: list[str], action: str) -> dict[str, Any]:
    """`--param` values as the API's params: `on` a boolean, `watts` a number."""
    params: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--param {item!r}: expected K=V")
        if key == "on":
            if value.lower() not in {"true", "false", "1", "0", "on", "off"}:
                raise UsageError(f"--param on={value}: expected true or false")
            params["on"] = value.lower() in {"true", "1", "on"}
        elif key == "watts":
            params["watts"] = _number(key, value)
        else:
            raise UsageError(f"--param {key}: unknown (on, watts)")
    if action == "power_target" and "watts" not in params:
        raise UsageError("power_target needs --param watts=W")
    return params


def parse_ramp(text: str | None) -> dict[str, Any] | None:
    """`--ramp k=v,...` as the API's ramp (interval_s defaults to 0)."""
    if text is None:
        return None
    ramp: dict[str, Any] = {"interval_s": 0.0}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or key not in RAMP_KEYS:
            raise UsageError(f"--ramp {part!r}: expected one of {', '.join(RAMP_KEYS)} as K=V")
        ramp[key] = int(_number(key, value)) if RAMP_KEYS[key] is int else _number(key, value)
    return ramp


def _number(key: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise UsageError(f"{key}={value}: not a number") from None
    if not math.isfinite(number):
        raise UsageError(f"{key}={value}: not a finite number")
    return number


def _key(args: argparse.Namespace) -> str:
    if args.key:
        return str(args.key).strip()
    if args.key_file is not None:
        try:
            return str(args.key_file.read_text(encoding="utf-8")).strip()
        except OSError as exc:
            raise UsageError(f"--key-file: {exc.strerror}") from None
    key = os.environ.get("FLEETMON_API_KEY", "").strip()
    if not key:
        raise UsageError("an API key is needed: --key-file FILE, --key KEY or FLEETMON_API_KEY")
    return key


def run_action(args: argparse.Namespace) -> int:
    """Send the action, then follow the job (or print the plan)."""
    import httpx

    try:
        key = _key(args)
        params = parse_params(args.param, args.action)
        ramp = parse_ramp(args.ramp)
        with httpx.Client(
            base_url=args.api, headers={"Authorization": f"Bearer {key}"}, timeout=args.timeout
        ) as client:
            selector = _selector(client, args)
            body: dict[str, Any] = {"action": args.action, "params": params, "selector": selector}
            body["dry_run"] = bool(args.dry_run)
            if ramp is not None:
                body["ramp"] = ramp
            response = _post(client, "/api/v1/actions", body)
            if response.status_code >= 400:
                return _refused(response)
            result = response.json()
            if args.dry_run:
                _print_plan(result)
                return 0
            if args.no_follow:
                print(f"job {result['id']}: {result['state']}")
                return 0
            job = _follow(client, result, sys.stdout.isatty())
    except UsageError as exc:
        print(f"fleetmon action: {exc}", file=sys.stderr)
        return 2
    except httpx.HTTPError as exc:
        print(f"fleetmon action: the service at {args.api} cannot be reached: {exc}", file=sys.stderr)
        return 2
    _print_outcome(job)
    return 0 if job["state"] == "succeeded" else 1


def _selector(client: Any, args: argparse.Namespace) -> dict[str, Any]:
    selector: dict[str, Any] = {k: getattr(args, k) for k in ("site", "model", "state") if getattr(args, k)}
    ids: list[int] = []
    ips: list[str] = []
    for target in args.targets:
        (ids if target.isdigit() else ips).append(int(target) if target.isdigit() else target)  # type: ignore[arg-type]
    if ips:
        by_ip = _device_ids_by_ip(client)
        missing = [ip for ip in ips if ip not in by_ip]
        if missing:
            raise UsageError(f"no device with address {', '.join(missing)}")
        ids += [by_ip[ip] for ip in ips]
    if ids:
        selector["ids"] = ids
    if not selector:
        raise UsageError("name TARGETS (device ids or addresses) or select with --site/--model/--state")
    return selector


def _device_ids_by_ip(client: Any) -> dict[str, int]:
    found: dict[str, int] = {}
    offset = 0
    while True:
        response = client.get("/api/v1/devices", params={"limit": 1000, "offset": offset})
        if response.status_code >= 400:
            raise UsageError(f"cannot list devices: {response.status_code} {_detail(response)}")
        page = response.json()
        for item in page["items"]:
            if item["id"] is not None:
                found[item["ip"]] = item["id"]
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"]:
            return found


def _post(client: Any, path: str, body: dict[str, Any]) -> Any:
    import httpx

    headers = {"Idempotency-Key": f"cli-{uuid.uuid4()}"}
    for attempt in range(POST_ATTEMPTS):
        try:
            return client.post(path, json=body, headers=headers)
        except httpx.TransportError:
            if attempt == POST_ATTEMPTS - 1:
                raise
            time.sleep(1.0 + attempt)
    raise AssertionError("unreachable")


def _detail(response: Any) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        return str(response.text)[:200]
    return detail if isinstance(detail, str) else str(detail)[:500]


def _refused(response: Any) -> int:
    print(f"fleetmon action: {response.status_code}: {_detail(response)}", file=sys.stderr)
    return 2


def _progress(job: dict[str, Any]) -> str:
    total, done, failed = job["devices_total"], job["devices_done"], job["devices_failed"]
    steps = job["steps"]
    ran = sum(s["state"] in {"running", "done"} for s in steps)
    text = f"{done}/{total} devices, {failed} failed"
    if len(steps) > 1:
        text += f", step {ran}/{len(steps)}"
    read = [s for s in steps if s["site_kw_after"] is not None]
    if read:
        text += f", site {read[-1]['site_kw_after']:.1f} kW"
        estimated = (read[-1].get("site_kw_after_sources") or {}).get("estimated_kw")
        if estimated:
            text += f" ({estimated:.1f} estimated)"
    return f"{job['state']}: {text}"


def _bar(job: dict[str, Any]) -> str:
    total = max(1, job["devices_total"])
    filled = round(BAR_WIDTH * job["devices_done"] / total)
    return f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {_progress(job)}\x1b[K"


def _follow(client: Any, job: dict[str, Any], tty: bool) -> dict[str, Any]:
    shown = None
    while True:
        line = _progress(job)
        if tty:
            sys.stdout.write(_bar(job))
            sys.stdout.flush()
        elif line != shown:
            print(f"job {job['id']}: {line}", flush=True)
        shown = line
        if job["state"] in ENDED:
            if tty:
                sys.stdout.write("\n")
            return job
        time.sleep(FOLLOW_EVERY_S)
        response = client.get(f"/api/v1/actions/{job['id']}")
        if response.status_code >= 400:
            raise UsageError(f"cannot follow job {job['id']}: {response.status_code} {_detail(response)}")
        job = response.json()


def _print_outcome(job: dict[str, Any]) -> None:
    print(f"job {job['id']} {job['state']}" + (f" ({job['detail']})" if job.get("detail") else ""))
    for task in job["tasks"]:
        if task["state"] not in {"succeeded", "skipped"}:
            why = f"{task['error_code'] or ''} {task['detail'] or ''}".strip()
            print(f"  device {task['device_id']} ({task['host']}): {task['state']} {why}".rstrip())


def _print_plan(plan: dict[str, Any]) -> None:
    print(f"dry run: {plan['action']} {plan['params'] or ''}".rstrip() + " (nothing sent)")
    if plan["site_kw"] is not None:
        print(f"sites {', '.join(plan['sites'])}: {plan['site_kw']:.3f} kW now", end="")
        if plan["target_site_kw"] is not None:
            after = plan["expected_site_kw_after"]
            print(f", target {plan['target_site_kw']:.3f} kW, expected after {after:.3f} kW", end="")
        print()
        sources = plan.get("site_kw_sources") or {}
        if sources.get("estimated_kw") or sources.get("pdu_kw"):
            print(
                f"  of which reported {sources['reported_kw']:.3f} kW,"
                f" PDU-measured {sources['pdu_kw']:.3f} kW, estimated {sources['estimated_kw']:.3f} kW"
            )
    source_of = {d["device_id"]: d.get("power_source") for d in plan["devices"]}
    for step in plan["steps"]:
        kw = "?" if step["expected_kw"] is None else f"{step['expected_kw']:.3f}"
        estimated = sum(source_of.get(d) == "estimated" for d in step["device_ids"])
        note = f", {estimated} estimated" if estimated else ""
        ids = ", ".join(map(str, step["device_ids"]))
        print(f"  step {step['index'] + 1}: devices {ids} ({kw} kW{note})")
    for device in plan["devices"]:
        if device["excluded"]:
            print(f"  device {device['device_id']} ({device['host']}) left out: {device['excluded']}")
