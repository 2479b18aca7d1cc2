"""`/api/v1/security/findings`: the fleet's security-posture findings, per device and counted (JSON or CSV).

Readable by admin, operator and procurement (Permission.READ_SECURITY), not by viewer keys nor anyone
anonymous: the list says which miners an attacker can reconfigure (docs/security.md, "Who sees findings").
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from fleetmon.service.auth import Permission, require
from fleetmon.service.deps import RuntimeDep
from fleetmon.service.routes import AUTH_ERRORS
from fleetmon.service.routes.supplychain import FormatQuery, csv_doc, csv_response, wants_csv
from fleetmon.service.security import FindingFilter, findings_csv, snapshot_report
from fleetmon.service.security_schemas import SecurityFindingsOut

router = APIRouter(prefix="/api/v1/security", tags=["security"], responses=AUTH_ERRORS)


@router.get(
    "/findings",
    response_model=SecurityFindingsOut,
    dependencies=[Depends(require(Permission.READ_SECURITY))],
    responses=csv_doc("devices with findings and the counts (CSV: one row per finding)"),
)
def get_findings(
    runtime: RuntimeDep,
    request: Request,
    *,
    code: Annotated[str | None, Query(max_length=64, description="only this finding code")] = None,
    severity: Annotated[
        str | None, Query(pattern="^(low|medium|high|critical)$", description="only this severity")
    ] = None,
    site: Annotated[str | None, Query(max_length=64, description="only this site")] = None,
    fmt: FormatQuery = None,
) -> SecurityFindingsOut | Response:
    """Every device whose latest read found something, with counts by code, severity, maker, firmware
    and site; a device with no finding is not listed."""
    report = snapshot_report(runtime.live.snapshot, FindingFilter(code, severity, site))
    if wants_csv(request, fmt):
        return csv_response(findings_csv(report), "security-findings")
    return report
