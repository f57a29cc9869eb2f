"""Tiles, previews, TileJSON, WMTS and mosaics on small real COGs (see conftest), through the app."""

from __future__ import annotations

import io

import morecantile
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from snapearth.api.tiles import RENDERINGS, encode_png, to_rgba
from tests.api.conftest import Archive

TMS = morecantile.tms.get("WebMercatorQuad")
S2 = "sentinel-2-l2a"


def _png(response: object) -> np.ndarray:
    assert response.status_code == 200, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"] == "image/png"  # type: ignore[attr-defined]
    return np.asarray(Image.open(io.BytesIO(response.content)).convert("RGBA"))  # type: ignore[attr-defined]


def _centre_tile(client: TestClient, archive: Archive, zoom: int) -> morecantile.Tile:
    item = client.get(f"/collections/{S2}/items/{archive.s2_ids[0]}").json()
    west, south, east, north = item["bbox"]
    return TMS.tile((west + east) / 2, (south + north) / 2, zoom)


def test_png_encoder_round_trips() -> None:
    rgba = np.random.default_rng(1).integers(0, 255, (17, 23, 4), dtype=np.uint8)
    decoded = np.asarray(Image.open(io.BytesIO(encode_png(rgba))).convert("RGBA"))
    assert np.array_equal(decoded, rgba)


def test_ndvi_uses_scale_and_offset_and_masks_nodata() -> None:
    rendering = RENDERINGS["ndvi"]
    # reflectance 0.35 (NIR) and 0.06 (red): NDVI 0.707 -> high on the -0.2..0.9 stretch
    nir = np.ma.MaskedArray(np.full((2, 2), 0.35, np.float32), mask=[[False, True], [False, False]])
    red = np.ma.MaskedArray(np.full((2, 2), 0.06, np.float32), mask=False)
    rgba = to_rgba(rendering, rendering.compute({"B08": nir, "B04": red}))
    assert rgba[0, 1, 3] == 0  # nodata -> transparent
    assert rgba[0, 0, 3] == 255
    assert rgba[0, 0, 1] > rgba[0, 0, 0]  # green end of RdYlGn


def test_item_tiles_in_every_optical_rendering(client: TestClient, api_archive: Archive) -> None:
    tile = _centre_tile(client, api_archive, 12)
    base = f"/collections/{S2}/items/{api_archive.s2_ids[0]}/tiles/{tile.z}/{tile.x}/{tile.y}.png"
    images = {}
    for name in ("truecolor", "falsecolor", "ndvi", "water", "mndwi", "burn", "snow"):
        image = _png(client.get(base, params={"rendering": name}))
        assert image.shape == (256, 256, 4)
        assert (image[..., 3] == 255).any()
        images[name] = image
    # vegetation (NIR 0.35 vs red 0.06) is bright red in false colour, green in NDVI
    opaque = images["falsecolor"][..., 3] == 255
    assert images["falsecolor"][..., 0][opaque].mean() > images["falsecolor"][..., 2][opaque].mean()
    assert client.get(base.replace(".png", ".jpg")).headers["content-type"] == "image/jpeg"
    assert client.get(base.replace(".png", ".webp")).headers["content-type"] == "image/webp"


def test_sar_rendering_and_wrong_rendering_for_the_item(client: TestClient, api_archive: Archive) -> None:
    thumbnail = _png(client.get(f"/collections/sentinel-1-grd/items/{api_archive.s1_id}/thumbnail.png?rendering=sar"))
    assert max(thumbnail.shape[:2]) == 256
    wrong = client.get(f"/collections/sentinel-1-grd/items/{api_archive.s1_id}/preview.png?rendering=truecolor")
    assert wrong.status_code == 400
    assert wrong.json()["field"] == "rendering"
    assert "sar" in wrong.json()["description"]


def test_preview_tilejson_and_wmts(client: TestClient, api_archive: Archive) -> None:
    base = f"/collections/{S2}/items/{api_archive.s2_ids[0]}"
    preview = _png(client.get(f"{base}/preview.png", params={"rendering": "truecolor", "max_size": 300}))
    assert max(preview.shape[:2]) == 300
    tilejson = client.get(f"{base}/tilejson.json", params={"rendering": "ndvi"}).json()
    assert tilejson["tiles"][0].endswith("/tiles/{z}/{x}/{y}.png?rendering=ndvi")
    assert tilejson["minzoom"] <= tilejson["maxzoom"]
    wmts = client.get(f"{base}/WMTSCapabilities.xml", params={"rendering": "water"})
    assert wmts.status_code == 200
    assert "{TileMatrix}/{TileCol}/{TileRow}.png?rendering=water" in wmts.text


def test_mosaic_least_cloudy_and_best_pixel(client: TestClient, api_archive: Archive) -> None:
    tile = _centre_tile(client, api_archive, 11)
    url = f"/mosaic/tiles/{tile.z}/{tile.x}/{tile.y}.png"
    least = _png(client.get(url, params={"collections": S2, "rendering": "truecolor"}))
    best = _png(client.get(url, params={"collections": S2, "rendering": "truecolor", "method": "best-pixel"}))
    assert (least[..., 3] == 255).any()
    # every item of the fixture has the same cloud (SCL 9) in the south-east: best-pixel leaves it transparent
    assert (best[..., 3] == 0).sum() > (least[..., 3] == 0).sum()
    tilejson = client.get("/mosaic/tilejson.json", params={"collections": S2, "rendering": "ndvi"}).json()
    assert "/mosaic/tiles/{z}/{x}/{y}.png?" in tilejson["tiles"][0]


@pytest.mark.parametrize(
    ("path", "field", "status"),
    [
        ("tiles/12/99999/1.png", "x", 400),
        ("tiles/12/1/-1.png", "y", 400),
        ("tiles/40/1/1.png", "z", 400),
        ("tiles/3/0/0.png", "tile", 404),
        ("tiles/12/1/1.png?rendering=nope", "rendering", 400),
        ("tiles/12/1/1.gif", "fmt", 400),
        ("preview.png?max_size=5", "max_size", 400),
    ],
)
def test_bad_tile_requests_name_the_parameter(
    client: TestClient, api_archive: Archive, path: str, field: str, status: int
) -> None:
    response = client.get(f"/collections/{S2}/items/{api_archive.s2_ids[0]}/{path}")
    assert response.status_code == status, response.text
    assert response.json()["field"] == field


def test_tiles_of_an_unknown_item_are_404(client: TestClient) -> None:
    response = client.get(f"/collections/{S2}/items/nope/tiles/1/1/1.png")
    assert response.status_code == 404
