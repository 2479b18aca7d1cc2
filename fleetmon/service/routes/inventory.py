"""`POST /api/v1/inventory`: import the operator's inventory CSV (origin evidence, customs values).

The body is the CSV itself (`Content-Type: text/csv`) or a multipart upload with the file in field
`file`. Lines that fail validation are reported with their line numbers and not stored; the good
lines are stored (upsert by serial, so importing a file again changes nothing), then the snapshot is
rebuilt so reports and the device list show the new origins at once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from starlette.datastructures import UploadFile

from fleetmon.service.auth import Permission, require
from fleetmon.service.deps import RuntimeDep
from fleetmon.service.routes import AUTH_ERRORS
from fleetmon.service.schemas import ErrorOut
from fleetmon.service.supplychain import store_parsed_inventory
from fleetmon.service.supplychain_schemas import InventoryImportOut, InventoryRowErrorOut
from fleetmon.storage.errors import StorageError
from fleetmon.supplychain.errors import InventoryError
from fleetmon.supplychain.origin import INVENTORY_COLUMNS, OPTIONAL_COLUMNS, parse_inventory_csv

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/inventory", tags=["inventory"], responses=AUTH_ERRORS)

MAX_BYTES = 32 * 1024 * 1024  # ~300,000 lines; a farm's inventory is far smaller
COLUMNS = ", ".join((*INVENTORY_COLUMNS, *OPTIONAL_COLUMNS))
HEADER_PATTERN = "^" + ",".join(INVENTORY_COLUMNS) + "(,hts_code)?\\r?\\n"
"""The documented form of the header line (the parser also takes the columns in another order)."""
CSV_SCHEMA = {"type": "string", "pattern": HEADER_PATTERN, "contentMediaType": "text/csv"}
REQUEST_BODY: dict[str, object] = {
    "requestBody": {
        "required": True,
        "description": f"inventory CSV, UTF-8, with a header line: {COLUMNS} (hts_code optional)",
        "content": {
            "text/csv": {"schema": CSV_SCHEMA},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": CSV_SCHEMA},
                    "additionalProperties": False,
                }
            },
        },
    }
}


def _bad(detail: str) -> HTTPException:
    return HTTPException(400, detail=detail)


async def _csv_text(request: Request) -> tuple[str, str | None]:
    """The CSV text of the request and the uploaded file's name (multipart) if any."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BYTES:
        raise HTTPException(413, detail=f"inventory larger than {MAX_BYTES} bytes")
    filename: str | None = None
    if content_type == "multipart/form-data":
        # An unparsable multipart body: starlette answers 400 itself (its HTTPException).
        form = await request.form(max_files=1, max_fields=10)
        field = form.get("file")
        if isinstance(field, UploadFile):
            raw = await field.read(MAX_BYTES + 1)
            filename = field.filename
        elif isinstance(field, str):
            raw = field.encode()
        else:
            raise _bad("multipart body without a `file` field")
    elif content_type in ("text/csv", "text/plain", "application/csv"):
        raw = await request.body()
    else:
        raise HTTPException(415, detail="send text/csv, or multipart/form-data with the CSV in field `file`")
    if len(raw) > MAX_BYTES:
        raise HTTPException(413, detail=f"inventory larger than {MAX_BYTES} bytes")
    try:
        return raw.decode("utf-8"), filename
    except UnicodeDecodeError as exc:
        raise _bad(f"inventory is not UTF-8: {exc}") from None


@router.post(
    "",
    response_model=InventoryImportOut,
    dependencies=[Depends(require(Permission.IMPORT_INVENTORY))],
    openapi_extra=REQUEST_BODY,
    responses={
        400: {"model": ErrorOut, "description": "not an inventory CSV at all (no header, missing columns)"},
        413: {"model": ErrorOut, "description": "body too large"},
        415: {"model": ErrorOut, "description": "neither text/csv nor multipart/form-data"},
        503: {"model": ErrorOut, "description": "the database refused the records"},
    },
)
async def post_inventory(
    runtime: RuntimeDep,
    request: Request,
    source: Annotated[
        str | None, Query(max_length=200, description="name to record as the records' source file")
    ] = None,
) -> InventoryImportOut:
    """Validate the CSV, store its good lines, report each rejected line; stored/updated/rejected counts."""
    text, filename = await _csv_text(request)
    name = source or filename or "api upload"
    try:
        parsed = parse_inventory_csv(text, name)
    except InventoryError as exc:
        raise _bad(str(exc)) from None
    try:
        outcome = await asyncio.to_thread(store_parsed_inventory, runtime.engine, parsed)
    except StorageError as exc:
        raise HTTPException(503, detail=f"inventory not stored: {exc}") from None
    refreshed = True
    try:
        await runtime.reload_reference()
    except StorageError as exc:
        log.warning("inventory stored, snapshot not refreshed: %s", exc)
        refreshed = False
    return InventoryImportOut(
        source=name,
        stored=outcome.stored.new,
        updated=outcome.stored.updated,
        rejected=len(parsed.errors),
        errors=[InventoryRowErrorOut(line=e.line, serial=e.serial, message=e.message) for e in parsed.errors],
        snapshot_refreshed=refreshed,
    )
