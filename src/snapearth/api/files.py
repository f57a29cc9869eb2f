"""``/files/{path}``: asset files under the data folder, with HTTP Range (pystac-client, EODAG and GDAL download
or stream COGs from here). Nothing outside the data folder is reachable."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from starlette.responses import FileResponse

from snapearth.errors import NotFoundError

MEDIA_TYPES = {
    ".tif": "image/tiff; application=geotiff; profile=cloud-optimized",
    ".tiff": "image/tiff; application=geotiff",
    ".json": "application/json",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".xml": "application/xml",
}


def resolve_data_file(data_root: Path, relative: str) -> Path:
    root = data_root.resolve()
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        raise NotFoundError(f"path: no file {relative!r} in the data folder", field="path")
    return candidate


def create_router(data_root: Path) -> APIRouter:
    router = APIRouter(tags=["Files"])

    @router.get("/files/{path:path}", summary="Download an asset file (Range requests supported)")
    def get_file(path: str) -> FileResponse:
        target = resolve_data_file(data_root, path)
        media_type = MEDIA_TYPES.get(target.suffix.lower(), "application/octet-stream")
        return FileResponse(target, media_type=media_type, filename=target.name, content_disposition_type="inline")

    return router
