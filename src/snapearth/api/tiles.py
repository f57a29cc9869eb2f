"""XYZ tiles, TileJSON, WMTS, previews and thumbnails of items in named renderings, and mosaics of searches.

Pixels come from rio-tiler (COG overviews, windowed reads); what is SnapEarth's is the renderings: each reads the
assets it needs, turns digital numbers into physical values with the item's own ``raster:bands`` scale/offset/nodata
(L2A offset -0.1 from baseline 04.00, SAR dB), then stretches or colour-maps them. Latency comes from keeping
opened COGs per worker thread, caching item lookups, and encoding PNG directly (no GDAL driver round trip).
"""

from __future__ import annotations

import struct
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from io import BytesIO
from typing import Any, Literal
from urllib.parse import quote, urlencode
from xml.sax.saxutils import escape

import morecantile
import numpy as np
from fastapi import APIRouter, Path, Query, Request
from rio_tiler.colormap import cmap
from rio_tiler.errors import TileOutsideBounds
from rio_tiler.io import Reader
from starlette.responses import Response

from snapearth.api.responses import JSONResponse
from snapearth.catalog.base import Catalog, Item, SearchRequest, SortKey
from snapearth.errors import InvalidInputError, NotFoundError

TMS = morecantile.tms.get("WebMercatorQuad")
TILE_SIZE = 256
MAX_ZOOM = 24
ImageFormat = Literal["png", "jpg", "webp"]
MEDIA = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}
CLOUD_SCL = (3, 8, 9, 10)  # cloud shadow, cloud medium/high probability, thin cirrus
Bands = dict[str, np.ma.MaskedArray]


# --- renderings ----------------------------------------------------------------------------------------------------


def _ratio(a: np.ma.MaskedArray, b: np.ma.MaskedArray) -> np.ma.MaskedArray:
    total = a + b
    return np.ma.masked_where(np.ma.getmaskarray(total) | (np.abs(total.filled(0)) < 1e-6), (a - b) / total)


@dataclass(frozen=True)
class Rendering:
    name: str
    title: str
    assets: tuple[str, ...]
    compute: Callable[[Bands], list[np.ma.MaskedArray]]
    rescale: tuple[float, float]
    colormap: str | None = None
    description: str = ""


RENDERINGS: dict[str, Rendering] = {
    r.name: r
    for r in (
        Rendering(
            "truecolor",
            "True colour",
            ("B04", "B03", "B02"),
            lambda b: [b["B04"], b["B03"], b["B02"]],
            (0.0, 0.3),
            description="Red, green, blue reflectance",
        ),
        Rendering(
            "falsecolor",
            "False colour (NIR)",
            ("B08", "B04", "B03"),
            lambda b: [b["B08"], b["B04"], b["B03"]],
            (0.0, 0.45),
            description="Vegetation in red",
        ),
        Rendering(
            "ndvi",
            "NDVI",
            ("B08", "B04"),
            lambda b: [_ratio(b["B08"], b["B04"])],
            (-0.2, 0.9),
            "rdylgn",
            "(B08-B04)/(B08+B04)",
        ),
        Rendering(
            "water",
            "Water (NDWI)",
            ("B03", "B08"),
            lambda b: [_ratio(b["B03"], b["B08"])],
            (-0.6, 0.6),
            "rdbu",
            "McFeeters NDWI (B03-B08)/(B03+B08); water > 0 in blue",
        ),
        Rendering(
            "mndwi",
            "Water (MNDWI)",
            ("B03", "B11"),
            lambda b: [_ratio(b["B03"], b["B11"])],
            (-0.6, 0.6),
            "rdbu",
            "Xu MNDWI (B03-B11)/(B03+B11); water > 0 in blue",
        ),
        Rendering(
            "burn",
            "Burn (NBR)",
            ("B08", "B12"),
            lambda b: [_ratio(b["B08"], b["B12"])],
            (-0.5, 0.8),
            "rdylgn",
            "NBR (B08-B12)/(B08+B12); burned areas low, in red",
        ),
        Rendering(
            "snow",
            "Snow (NDSI)",
            ("B03", "B11"),
            lambda b: [_ratio(b["B03"], b["B11"])],
            (-0.4, 1.0),
            "blues",
            "NDSI (B03-B11)/(B03+B11); snow > 0.4",
        ),
        Rendering(
            "sar",
            "SAR VV/VH",
            ("vv", "vh"),
            lambda b: [b["vv"], b["vh"] + 5.0, (b["vv"] - b["vh"]) * 2.0 - 25.0],
            (-25.0, 0.0),
            description="R = VV dB, G = VH dB (+5), B = VV-VH ratio",
        ),
    )
}


def get_rendering(name: str) -> Rendering:
    rendering = RENDERINGS.get(name)
    if rendering is None:
        raise InvalidInputError(
            f"rendering: unknown rendering {name!r} (known: {', '.join(RENDERINGS)})", field="rendering"
        )
    return rendering


def _lut(name: str) -> np.ndarray:
    table = np.zeros((256, 4), dtype=np.uint8)
    colors = cmap.get(name)
    if isinstance(colors, dict):
        for index, color in colors.items():
            if 0 <= int(index) < 256:
                table[int(index)] = color
    return table


_LUTS: dict[str, np.ndarray] = {}


def to_rgba(rendering: Rendering, planes: list[np.ma.MaskedArray]) -> np.ndarray:
    """Float planes -> (h, w, 4) uint8: stretched RGB, or a colour-mapped index; alpha 0 where masked."""
    lo, hi = rendering.rescale
    mask = np.zeros(planes[0].shape, dtype=bool)
    for plane in planes:
        mask |= np.ma.getmaskarray(plane)
    scaled = [np.clip((p.filled(lo) - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8) for p in planes]
    shape: tuple[int, ...] = tuple(mask.shape)
    height, width = shape[0], shape[1]
    if rendering.colormap:
        lut = _LUTS.get(rendering.colormap)
        if lut is None:
            lut = _LUTS[rendering.colormap] = _lut(rendering.colormap)
        rgba = lut[scaled[0]].copy()
    else:
        rgba = np.empty((height, width, 4), dtype=np.uint8)
        for i in range(3):
            rgba[..., i] = scaled[i if len(scaled) == 3 else 0]
    rgba[..., 3] = np.where(mask, 0, 255)
    return rgba


# --- encoding ------------------------------------------------------------------------------------------------------


def encode_png(rgba: np.ndarray) -> bytes:
    """A straight RGBA PNG (filter 0, zlib level 1): a few hundred microseconds for a 256x256 tile."""
    height, width, _ = rgba.shape
    raw = np.empty((height, width * 4 + 1), dtype=np.uint8)
    raw[:, 0] = 0
    raw[:, 1:] = rgba.reshape(height, width * 4)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw.tobytes(), 1))
        + chunk(b"IEND", b"")
    )


def encode(rgba: np.ndarray, fmt: str) -> bytes:
    if fmt == "png":
        return encode_png(rgba)
    from PIL import Image

    buffer = BytesIO()
    if fmt == "jpg":
        Image.fromarray(rgba[..., :3]).save(buffer, format="JPEG", quality=85)
    else:
        Image.fromarray(rgba).save(buffer, format="WEBP", quality=80)
    return buffer.getvalue()


# --- reading -------------------------------------------------------------------------------------------------------


class ReaderCache:
    """Opened COGs, per worker thread (rasterio datasets must not be shared between threads)."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._local = threading.local()

    def get(self, href: str) -> Reader:
        readers: OrderedDict[str, Reader] | None = getattr(self._local, "readers", None)
        if readers is None:
            readers = self._local.readers = OrderedDict()
        reader = readers.get(href)
        if reader is not None:
            readers.move_to_end(href)
            return reader
        reader = Reader(href)
        readers[href] = reader
        if len(readers) > self.size:
            _, old = readers.popitem(last=False)
            old.close()
        return reader


class ItemCache:
    """Recently used items (a tile request should not cost a catalog lookup each time)."""

    def __init__(self, catalog: Catalog, size: int = 512, ttl_s: float = 30.0) -> None:
        self.catalog = catalog
        self.size = size
        self.ttl_s = ttl_s
        self._items: OrderedDict[tuple[str, str], tuple[float, Item]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, collection_id: str, item_id: str) -> Item:
        key = (collection_id, item_id)
        now = time.monotonic()
        with self._lock:
            hit = self._items.get(key)
            if hit and now - hit[0] < self.ttl_s:
                return hit[1]
        item = self.catalog.get_item(collection_id, item_id)
        with self._lock:
            self._items[key] = (now, item)
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return item


@dataclass(frozen=True)
class BandAsset:
    href: str
    scale: float
    offset: float
    nodata: float | None


def band_asset(item: Item, key: str, rendering: str) -> BandAsset:
    asset = (item.get("assets") or {}).get(key)
    if not isinstance(asset, dict) or not isinstance(asset.get("href"), str):
        usable = [r.name for r in RENDERINGS.values() if all(k in (item.get("assets") or {}) for k in r.assets)]
        raise InvalidInputError(
            f"rendering: {rendering!r} needs asset {key!r}, which item {item.get('id')!r} lacks "
            f"(renderings for this item: {', '.join(usable) or 'none'})",
            field="rendering",
        )
    href = asset["href"]
    if href.startswith("file://"):
        href = href[7:]
    bands = asset.get("raster:bands") or [{}]
    band = bands[0] if isinstance(bands[0], dict) else {}
    nodata = band.get("nodata")
    return BandAsset(
        href=href,
        scale=float(band.get("scale", 1.0)),
        offset=float(band.get("offset", 0.0)),
        nodata=float(nodata) if isinstance(nodata, int | float) else None,
    )


def _physical(data: np.ma.MaskedArray, asset: BandAsset) -> np.ma.MaskedArray:
    raw = data[0]
    mask = np.ma.getmaskarray(raw)
    values = raw.data
    if asset.nodata is not None and not np.isnan(asset.nodata):
        mask = mask | (values == asset.nodata)
    physical = values.astype(np.float32) * np.float32(asset.scale) + np.float32(asset.offset)
    return np.ma.MaskedArray(physical, mask=mask)


class Renderer:
    """Reads an item's assets for a rendering, as tiles or whole-image previews."""

    def __init__(self, readers: ReaderCache | None = None, threads: int = 4) -> None:
        self.readers = readers or ReaderCache()
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="snapearth-tiles")

    def tile_bands(
        self, item: Item, rendering: Rendering, z: int, x: int, y: int, extra: tuple[str, ...] = ()
    ) -> Bands:
        """The assets are read concurrently (GDAL releases the GIL), each pool thread keeping its own COGs open."""
        keys = (*rendering.assets, *extra)
        assets = [band_asset(item, key, rendering.name) for key in keys]

        def read(asset: BandAsset) -> np.ma.MaskedArray:
            image = self.readers.get(asset.href).tile(x, y, z, tilesize=TILE_SIZE, indexes=1)
            return _physical(image.array, asset)

        return dict(zip(keys, self.pool.map(read, assets), strict=True))

    def tile(self, item: Item, rendering: Rendering, z: int, x: int, y: int) -> np.ndarray:
        check_tile(z, x, y)
        try:
            bands = self.tile_bands(item, rendering, z, x, y)
        except TileOutsideBounds:
            raise NotFoundError(f"tile: {z}/{x}/{y} does not intersect item {item.get('id')!r}", field="tile") from None
        return to_rgba(rendering, rendering.compute(bands))

    def preview(self, item: Item, rendering: Rendering, max_size: int) -> np.ndarray:
        first = band_asset(item, rendering.assets[0], rendering.name)
        reader = self.readers.get(first.href)
        ratio = int(reader.width or 1) / int(reader.height or 1)
        width, height = (
            (max_size, max(1, round(max_size / ratio))) if ratio >= 1 else (max(1, round(max_size * ratio)), max_size)
        )
        bands: Bands = {}
        for key in rendering.assets:
            asset = band_asset(item, key, rendering.name)
            image = self.readers.get(asset.href).preview(
                indexes=1,
                width=width,
                height=height,
                max_size=None,  # type: ignore[arg-type]
            )
            bands[key] = _physical(image.array, asset)
        return to_rgba(rendering, rendering.compute(bands))

    def zooms(self, item: Item, rendering: Rendering) -> tuple[int, int]:
        reader = self.readers.get(band_asset(item, rendering.assets[0], rendering.name).href)
        return int(reader.minzoom), int(reader.maxzoom)


def check_tile(z: int, x: int, y: int) -> None:
    if not 0 <= z <= MAX_ZOOM:
        raise InvalidInputError(f"z: zoom {z} is out of range [0, {MAX_ZOOM}]", field="z")
    top = 2**z - 1
    if not 0 <= x <= top:
        raise InvalidInputError(f"x: {x} is out of range [0, {top}] at zoom {z}", field="x")
    if not 0 <= y <= top:
        raise InvalidInputError(f"y: {y} is out of range [0, {top}] at zoom {z}", field="y")


# --- mosaics -------------------------------------------------------------------------------------------------------


def mosaic_tile(
    renderer: Renderer,
    items: list[Item],
    rendering: Rendering,
    z: int,
    x: int,
    y: int,
    method: Literal["least-cloudy", "best-pixel"],
) -> np.ndarray | None:
    """First valid pixel wins, items in the given order; ``best-pixel`` also skips SCL cloud/shadow pixels."""
    filled: list[np.ndarray] | None = None
    valid: np.ndarray | None = None
    for item in items:
        extra = ("SCL",) if method == "best-pixel" and "SCL" in (item.get("assets") or {}) else ()
        try:
            bands = renderer.tile_bands(item, rendering, z, x, y, extra)
        except TileOutsideBounds:
            continue
        planes = rendering.compute(bands)
        mask = np.zeros(planes[0].shape, dtype=bool)
        for plane in planes:
            mask |= np.ma.getmaskarray(plane)
        if extra:
            mask |= np.isin(bands["SCL"].filled(0), CLOUD_SCL)
        if filled is None or valid is None:
            filled = [p.filled(np.nan) for p in planes]
            valid = ~mask
        else:
            take = ~valid & ~mask
            for target, plane in zip(filled, planes, strict=True):
                target[take] = plane.data[take]
            valid |= take
        if valid.all():
            break
    if filled is None or valid is None or not valid.any():
        return None
    return to_rgba(rendering, [np.ma.MaskedArray(p, mask=~valid) for p in filled])


# --- HTTP ----------------------------------------------------------------------------------------------------------

RENDERING_QUERY = Query("truecolor", description=f"One of: {', '.join(RENDERINGS)}")


def _image(rgba: np.ndarray, fmt: str) -> Response:
    return Response(encode(rgba, fmt), media_type=MEDIA[fmt], headers={"Cache-Control": "public, max-age=3600"})


def _item_base(request: Request, collection_id: str, item_id: str) -> str:
    return f"{str(request.base_url).rstrip('/')}/collections/{quote(collection_id)}/items/{quote(item_id)}"


def wmts_capabilities(title: str, layer: str, bounds: list[float], minzoom: int, maxzoom: int, template: str) -> str:
    matrices = []
    for z in range(minzoom, maxzoom + 1):
        m = TMS.matrix(z)
        matrices.append(
            f"<TileMatrix><ows:Identifier>{z}</ows:Identifier><ScaleDenominator>{m.scaleDenominator}</ScaleDenominator>"
            f"<TopLeftCorner>{m.pointOfOrigin[0]} {m.pointOfOrigin[1]}</TopLeftCorner>"
            f"<TileWidth>{m.tileWidth}</TileWidth><TileHeight>{m.tileHeight}</TileHeight>"
            f"<MatrixWidth>{m.matrixWidth}</MatrixWidth><MatrixHeight>{m.matrixHeight}</MatrixHeight></TileMatrix>"
        )
    west, south, east, north = bounds
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<Capabilities xmlns="http://www.opengis.net/wmts/1.0" xmlns:ows="http://www.opengis.net/ows/1.1" '
        'xmlns:xlink="http://www.w3.org/1999/xlink" version="1.0.0">'
        f"<ows:ServiceIdentification><ows:Title>{escape(title)}</ows:Title><ows:ServiceType>OGC WMTS</ows:ServiceType>"
        "<ows:ServiceTypeVersion>1.0.0</ows:ServiceTypeVersion></ows:ServiceIdentification>"
        f"<Contents><Layer><ows:Title>{escape(title)}</ows:Title><ows:Identifier>{escape(layer)}</ows:Identifier>"
        f'<ows:WGS84BoundingBox crs="urn:ogc:def:crs:OGC:2:84"><ows:LowerCorner>{west} {south}</ows:LowerCorner>'
        f"<ows:UpperCorner>{east} {north}</ows:UpperCorner></ows:WGS84BoundingBox>"
        '<Style isDefault="true"><ows:Identifier>default</ows:Identifier></Style><Format>image/png</Format>'
        "<TileMatrixSetLink><TileMatrixSet>WebMercatorQuad</TileMatrixSet></TileMatrixSetLink>"
        f'<ResourceURL format="image/png" resourceType="tile" template="{escape(template)}"/></Layer>'
        "<TileMatrixSet><ows:Identifier>WebMercatorQuad</ows:Identifier>"
        "<ows:SupportedCRS>urn:ogc:def:crs:EPSG::3857</ows:SupportedCRS>"
        + "".join(matrices)
        + "</TileMatrixSet></Contents></Capabilities>"
    )


def create_router(catalog: Catalog) -> APIRouter:
    router = APIRouter(tags=["Tiles and previews"])
    items = ItemCache(catalog)
    renderer = Renderer()

    @router.get("/renderings", summary="The named renderings", response_class=JSONResponse)
    def renderings() -> JSONResponse:
        return JSONResponse(
            {
                "renderings": [
                    {
                        "id": r.name,
                        "title": r.title,
                        "assets": list(r.assets),
                        "description": r.description,
                        "rescale": list(r.rescale),
                        "colormap": r.colormap,
                    }
                    for r in RENDERINGS.values()
                ]
            }
        )

    @router.get(
        "/collections/{collection_id}/items/{item_id}/tiles/{z}/{x}/{y}.{fmt}",
        summary="XYZ tile (WebMercatorQuad) of an item in a rendering",
        response_class=Response,
    )
    def item_tile(
        collection_id: str,
        item_id: str,
        z: int = Path(..., description="Zoom level"),
        x: int = Path(..., description="Column"),
        y: int = Path(..., description="Row"),
        fmt: ImageFormat = Path(..., description="png, jpg or webp"),
        rendering: str = RENDERING_QUERY,
    ) -> Response:
        chosen = get_rendering(rendering)
        check_tile(z, x, y)
        return _image(renderer.tile(items.get(collection_id, item_id), chosen, z, x, y), fmt)

    @router.get(
        "/collections/{collection_id}/items/{item_id}/tilejson.json",
        summary="TileJSON of an item in a rendering",
        response_class=JSONResponse,
    )
    def item_tilejson(
        request: Request, collection_id: str, item_id: str, rendering: str = RENDERING_QUERY
    ) -> JSONResponse:
        chosen = get_rendering(rendering)
        item = items.get(collection_id, item_id)
        minzoom, maxzoom = renderer.zooms(item, chosen)
        base = _item_base(request, collection_id, item_id)
        bounds = item.get("bbox") or [-180, -85, 180, 85]
        return JSONResponse(
            {
                "tilejson": "3.0.0",
                "name": f"{item_id} ({chosen.title})",
                "tiles": [f"{base}/tiles/{{z}}/{{x}}/{{y}}.png?{urlencode({'rendering': chosen.name})}"],
                "minzoom": minzoom,
                "maxzoom": maxzoom,
                "bounds": bounds[:4] if len(bounds) == 4 else [bounds[0], bounds[1], bounds[3], bounds[4]],
                "center": [
                    (bounds[0] + bounds[-3 if len(bounds) == 6 else 2]) / 2,
                    (bounds[1] + bounds[-2 if len(bounds) == 6 else 3]) / 2,
                    minzoom,
                ],
            }
        )

    @router.get(
        "/collections/{collection_id}/items/{item_id}/WMTSCapabilities.xml",
        summary="OGC WMTS capabilities of an item in a rendering",
        response_class=Response,
    )
    def item_wmts(request: Request, collection_id: str, item_id: str, rendering: str = RENDERING_QUERY) -> Response:
        chosen = get_rendering(rendering)
        item = items.get(collection_id, item_id)
        minzoom, maxzoom = renderer.zooms(item, chosen)
        base = _item_base(request, collection_id, item_id)
        template = f"{base}/tiles/{{TileMatrix}}/{{TileCol}}/{{TileRow}}.png?{urlencode({'rendering': chosen.name})}"
        bbox = item.get("bbox") or [-180, -85, 180, 85]
        bounds = [bbox[0], bbox[1], bbox[-2], bbox[-1]]
        xml = wmts_capabilities(
            f"{item_id} ({chosen.title})", f"{item_id}-{chosen.name}", bounds, minzoom, maxzoom, template
        )
        return Response(xml, media_type="application/xml")

    @router.get(
        "/collections/{collection_id}/items/{item_id}/preview.{fmt}",
        summary="Whole-image preview of an item in a rendering",
        response_class=Response,
    )
    def item_preview(
        collection_id: str,
        item_id: str,
        fmt: ImageFormat = Path(...),
        rendering: str = RENDERING_QUERY,
        max_size: int = Query(1024, ge=16, le=2048, description="Longest side in pixels"),
    ) -> Response:
        chosen = get_rendering(rendering)
        return _image(renderer.preview(items.get(collection_id, item_id), chosen, max_size), fmt)

    @router.get(
        "/collections/{collection_id}/items/{item_id}/thumbnail.{fmt}",
        summary="256-pixel thumbnail of an item in a rendering",
        response_class=Response,
    )
    def item_thumbnail(
        collection_id: str, item_id: str, fmt: ImageFormat = Path(...), rendering: str = RENDERING_QUERY
    ) -> Response:
        chosen = get_rendering(rendering)
        return _image(renderer.preview(items.get(collection_id, item_id), chosen, 256), fmt)

    @router.get(
        "/mosaic/tiles/{z}/{x}/{y}.{fmt}",
        summary="XYZ tile of a mosaic of the items a search finds (least cloudy first, or best pixel)",
        response_class=Response,
    )
    def mosaic(
        z: int = Path(...),
        x: int = Path(...),
        y: int = Path(...),
        fmt: ImageFormat = Path(...),
        collections: str = Query("sentinel-2-l2a", description="Comma-separated collection ids"),
        datetime: str | None = Query(None, description="RFC 3339 instant or interval"),
        filter: str | None = Query(None, description="CQL2 text filter on the items"),
        rendering: str = RENDERING_QUERY,
        method: Literal["least-cloudy", "best-pixel"] = Query("least-cloudy"),
        max_items: int = Query(10, ge=1, le=50, description="Items read at most per tile"),
    ) -> Response:
        chosen = get_rendering(rendering)
        check_tile(z, x, y)
        west, south, east, north = TMS.bounds(morecantile.Tile(x, y, z))
        ids = [c for c in collections.split(",") if c]
        sortby = None if chosen.name == "sar" else [SortKey(field="eo:cloud_cover", direction="asc")]
        request = SearchRequest(
            collections=ids,
            bbox=[west, max(south, -85.0), east, min(north, 85.0)],
            datetime=datetime,
            filter=filter,
            filter_lang="cql2-text" if filter else None,
            sortby=sortby,
            limit=max_items,
            count=False,
        )
        found = catalog.search(request).items
        rgba = mosaic_tile(renderer, found, chosen, z, x, y, method)
        if rgba is None:
            raise NotFoundError(f"tile: no item of this search covers {z}/{x}/{y}", field="tile")
        return _image(rgba, fmt)

    @router.get("/mosaic/tilejson.json", summary="TileJSON of a search mosaic", response_class=JSONResponse)
    def mosaic_tilejson(request: Request) -> JSONResponse:
        params = dict(request.query_params)
        get_rendering(params.get("rendering", "truecolor"))
        root = str(request.base_url).rstrip("/")
        query = f"?{urlencode(params)}" if params else ""
        return JSONResponse(
            {
                "tilejson": "3.0.0",
                "name": "SnapEarth mosaic",
                "tiles": [f"{root}/mosaic/tiles/{{z}}/{{x}}/{{y}}.png{query}"],
                "minzoom": 6,
                "maxzoom": 16,
                "bounds": [-180, -85.0511, 180, 85.0511],
            }
        )

    return router


_RenderTemplate = tuple[tuple[str, str, str, str], ...]  # (rel, type, title, href suffix) per link


@lru_cache(maxsize=256)  # asset layouts are few: the items of a collection share one
def _render_template(asset_keys: tuple[str, ...]) -> _RenderTemplate:
    """The render links an item with these asset keys gets, as suffixes of its URL."""
    keys = set(asset_keys)
    entries: list[tuple[str, str, str, str]] = []
    for rendering in RENDERINGS.values():
        if all(key in keys for key in rendering.assets):
            query = urlencode({"rendering": rendering.name})
            if not entries:
                entries.append(("preview", "image/png", rendering.title, f"/preview.png?{query}"))
            entries.append(("tilejson", "application/json", rendering.title, f"/tilejson.json?{query}"))
    return tuple(entries)


def item_render_links(item: dict[str, Any], root: str, base: str | None = None) -> list[dict[str, Any]]:
    """Links advertising an item's previews and tiles, for the renderings its assets allow.

    ``base`` is the item's URL when the caller has it already (``{root}collections/{c}/items/{id}``).
    """
    assets = item.get("assets") or {}
    template = _render_template(tuple(assets))
    if not template:
        return []
    if base is None:
        base = f"{root}collections/{quote(str(item.get('collection', '')))}/items/{quote(str(item['id']))}"
    return [{"rel": rel, "type": kind, "title": title, "href": base + suffix} for rel, kind, title, suffix in template]
