"""GET /exports/{token}: the signed, expiring download of an access package."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from dsr_gateway.domain.errors import NotFound
from dsr_gateway.services.export_links import ExpiredExportLink, InvalidExportLink
from dsr_gateway.services.exports import ExportService

PRIVATE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}


async def download(request: Request) -> Response:
    service: ExportService = request.state.services.exports
    try:
        found = await service.open_download(request.path_params["token"])
    except InvalidExportLink as exc:
        return JSONResponse({"error": "forbidden", "message": exc.message}, status_code=403, headers=PRIVATE)
    except ExpiredExportLink as exc:
        return JSONResponse({"error": "gone", "message": exc.message}, status_code=410, headers=PRIVATE)
    except NotFound:
        message = "This package no longer exists. Ask for a new one by making a new access request."
        return JSONResponse({"error": "gone", "message": message}, status_code=410, headers=PRIVATE)
    headers = {
        **PRIVATE,
        "Content-Disposition": f'attachment; filename="{found.filename}"',
        "Content-Length": str(found.size),
        "ETag": f'"{found.sha256}"',
    }
    return StreamingResponse(found.chunks, media_type="application/zip", headers=headers)
