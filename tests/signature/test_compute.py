"""Per-image signatures on small real COGs painted with typical spectra (see scenes.py)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio

from snapearth.signature import SIGNATURE_VERSION, SignatureInputError, compute_signature
from snapearth.signature.bands import processing_baseline
from snapearth.signature.radar import FALLBACK_VV_THRESHOLD_DB, water_threshold
from tests.signature.scenes import cover_map, s1_item, s2_item

SHAPE = (200, 200)
WHEN = datetime(2023, 7, 1, 10, 30)
LAYOUT = {
    "water": (slice(0, 50), slice(0, 200)),  # 25%
    "snow": (slice(50, 70), slice(0, 100)),  # 5%
    "cloud": (slice(70, 90), slice(0, 200)),  # 10%
    "shadow": (slice(90, 100), slice(0, 200)),  # 5%
    "burned": (slice(100, 120), slice(0, 100)),  # 5%
    "bare": (slice(120, 140), slice(0, 200)),  # 10%
    "built": (slice(140, 150), slice(0, 200)),  # 5%
}


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return s2_item(tmp_path_factory.mktemp("s2"), "S2-A", cover_map(LAYOUT, SHAPE), when=WHEN)


def test_fractions_follow_the_painted_covers(scene: dict) -> None:
    sig = compute_signature(scene, chip_pixels=64)
    p = sig.properties
    total = SHAPE[0] * SHAPE[1]
    clear = total - (20 + 10) * 200
    assert p["signature:version"] == SIGNATURE_VERSION
    assert p["signature:cloud_method"] == "scl"
    assert p["signature:valid_fraction"] == 1.0
    assert p["signature:cloud_fraction"] == pytest.approx(0.10, abs=1e-6)
    assert p["signature:shadow_fraction"] == pytest.approx(0.05, abs=1e-6)
    assert p["signature:water_fraction"] == pytest.approx(50 * 200 / clear, abs=0.005)
    assert p["signature:snow_fraction"] == pytest.approx(20 * 100 / clear, abs=0.005)
    assert p["signature:burn_fraction"] == pytest.approx(20 * 100 / clear, abs=0.005)
    assert p["signature:bare_soil_fraction"] == pytest.approx(20 * 200 / clear, abs=0.01)
    assert p["signature:built_up_fraction"] == pytest.approx(10 * 200 / clear, abs=0.01)
    others = sum(p[f"signature:{k}_fraction"] for k in ("water", "snow", "burn", "bare_soil", "built_up"))
    others += p["signature:land_cover"]["sparse_vegetation"]
    assert p["signature:vegetation_fraction"] == pytest.approx(1 - others, abs=0.01)
    cover = p["signature:land_cover"]
    assert sum(cover.values()) == pytest.approx(1.0, abs=1e-5)
    # NDVI of the painted forest (0.35-0.03)/(0.35+0.03) = 0.84 is the p90; water's is negative (p10)
    assert p["signature:ndvi_p90"] == pytest.approx(0.84, abs=0.02)
    assert p["signature:ndvi_p10"] < 0
    assert p["signature:ndvi_p10"] <= p["signature:ndvi_median"] <= p["signature:ndvi_p90"]
    assert p["signature:ndsi_mean"] == p["signature:mndwi_mean"]
    assert len(sig.vector) == 16
    assert np.linalg.norm(sig.vector) == pytest.approx(1.0, abs=1e-5)
    assert {(c["row"], c["col"]) for c in sig.chips} <= {(r, c) for r in range(4) for c in range(4)}


def test_masks_are_cogs_next_to_the_item(scene: dict) -> None:
    sig = compute_signature(scene, chip_pixels=64)
    folder = Path(scene["assets"]["B04"]["href"]).parent
    assert set(sig.assets) == {
        "signature-cloud",
        "signature-water",
        "signature-snow",
        "signature-burn",
        "signature-indices",
    }
    for key, asset in sig.assets.items():
        assert asset["roles"] == [key]
        assert Path(asset["href"]).parent == folder
    with rasterio.open(sig.assets["signature-water"]["href"]) as ds:
        assert ds.profile["tiled"]
        assert ds.crs.to_epsg() == 32631
        water = ds.read(1)
    assert (water[:50] == 1).mean() > 0.99
    assert (water[70:100] == 255).all()  # under clouds and shadows: not observed
    with rasterio.open(sig.assets["signature-cloud"]["href"]) as ds:
        cloud = ds.read(1)
    assert (cloud[70:90] == 1).all()
    assert (cloud[90:100] == 2).all()
    assert (cloud[150:] == 0).all()
    merged = sig.apply(scene)
    assert merged["properties"]["grid:code"] == "MGRS-31TCJ"
    assert merged["assets"]["signature-snow"]["href"].endswith("S2-A_signature-snow.tif")


def test_indices_raster_is_a_cog_of_the_documented_bytes(scene: dict) -> None:
    from rio_cogeo.cogeo import cog_validate
    from rio_tiler.io import Reader

    from snapearth.signature.optical import decode_index

    href = compute_signature(scene, chip_pixels=64).assets["signature-indices"]["href"]
    valid, errors, warnings = cog_validate(href, strict=True)
    assert valid
    assert not errors
    assert not warnings
    with rasterio.open(href) as ds:
        assert ds.count == 2
        assert ds.dtypes == ("uint8", "uint8")
        assert ds.nodata == 0
        assert ds.overviews(1) == []
        raw = ds.read()
    assert (raw[:, 70:100] == 0).all()  # clouds and shadows: not clear
    ndvi = decode_index(raw[0])
    assert np.nanmean(ndvi[:50]) < 0  # water
    assert np.nanmean(ndvi[150:]) > 0.4  # vegetation
    with Reader(href) as cog:  # what the tile server reads
        image = cog.read()
    assert (image.data == raw).all()


def test_offset_taken_from_the_item_before_baseline_4(tmp_path: Path) -> None:
    names = cover_map({"water": (slice(0, 100), slice(0, 200))}, SHAPE)
    old = s2_item(tmp_path, "old", names, when=datetime(2020, 7, 1), baseline="02.14")
    assert processing_baseline(old) == pytest.approx(2.14)
    assert old["assets"]["B04"]["raster:bands"][0]["offset"] == 0.0
    p = compute_signature(old).properties
    assert p["signature:water_fraction"] == pytest.approx(0.5, abs=0.01)


def test_spectral_detector_without_scl(tmp_path: Path) -> None:
    item = s2_item(tmp_path, "noscl", cover_map(LAYOUT, SHAPE), when=WHEN, with_scl=False)
    p = compute_signature(item).properties
    assert p["signature:cloud_method"] == "spectral"
    assert p["signature:cloud_fraction"] == pytest.approx(0.10, abs=0.01)
    assert p["signature:snow_fraction"] > 0.04  # snow is bright too, but not taken for cloud
    assert p["signature:shadow_fraction"] == pytest.approx(0.05, abs=0.02)


def test_s2cloudless_on_l1c_bands(tmp_path: Path) -> None:
    names = cover_map({"cloud": (slice(0, 100), slice(0, 200))}, SHAPE)
    rng = np.random.default_rng(1)
    cloudy = names == "cloud"
    # B01/B05/B8A/B09/B10 TOA for thick cloud vs forest (DN with the 04.00 offset of +1000)
    extra = {}
    for band, (cloud_r, forest_r) in {
        "B01": (0.45, 0.12),
        "B05": (0.47, 0.08),
        "B8A": (0.5, 0.33),
        "B09": (0.2, 0.1),
        "B10": (0.06, 0.002),
    }.items():
        refl = np.where(cloudy, cloud_r, forest_r) + rng.normal(0, 0.003, SHAPE)
        extra[band] = np.rint(refl / 0.0001 + 1000).astype(np.uint16)
    item = s2_item(tmp_path, "l1c", names, when=WHEN, with_scl=False, extra_bands=extra)
    sig = compute_signature(item)
    p = sig.properties
    assert p["signature:cloud_method"] == "s2cloudless"
    # the cloud half, plus s2cloudless' own dilation (2 pixels at 160 m) around it
    assert 0.5 <= p["signature:cloud_fraction"] <= 0.7
    with rasterio.open(sig.assets["signature-cloud"]["href"]) as ds:
        cloud = ds.read(1)
    assert (cloud[:100] == 1).all()
    assert (cloud[150:] == 0).all()


def test_wrong_scale_is_refused(tmp_path: Path) -> None:
    item = s2_item(tmp_path, "badscale", cover_map({}, SHAPE), when=WHEN)
    item["assets"]["B08"]["raster:bands"][0]["scale"] = 1.0
    with pytest.raises(SignatureInputError, match=r"assets\.B08\.raster:bands: scale 1\.0 is implausible"):
        compute_signature(item)


def test_offset_contradicting_the_baseline_is_refused(tmp_path: Path) -> None:
    item = s2_item(tmp_path, "badoffset", cover_map({}, SHAPE), when=WHEN)
    item["assets"]["B03"]["raster:bands"][0]["offset"] = 0.0
    with pytest.raises(SignatureInputError, match=r"contradicts processing baseline 05\.09"):
        compute_signature(item)


def test_scale_lying_about_the_data_is_refused_and_nothing_written(tmp_path: Path) -> None:
    item = s2_item(tmp_path, "lying", cover_map({}, SHAPE), when=WHEN)
    for band in ("B02", "B03", "B04", "B08", "B11", "B12"):
        item["assets"][band]["raster:bands"][0].update(scale=0.0005, offset=-0.5)
    with pytest.raises(SignatureInputError, match="wrong band scale"):
        compute_signature(item)
    assert not list(tmp_path.glob("*signature*"))


def test_empty_image_is_refused(tmp_path: Path) -> None:
    item = s2_item(tmp_path, "empty", cover_map({}, SHAPE), when=WHEN, nodata_mask=np.ones(SHAPE, bool))
    with pytest.raises(SignatureInputError, match="empty image"):
        compute_signature(item)


def test_corrupt_and_missing_assets_are_refused(tmp_path: Path) -> None:
    item = s2_item(tmp_path, "corrupt", cover_map({}, SHAPE), when=WHEN)
    Path(item["assets"]["B11"]["href"]).write_bytes(b"II*\x00garbage")
    with pytest.raises(SignatureInputError, match=r"assets\.B11: cannot open"):
        compute_signature(item)
    del item["assets"]["B12"]
    with pytest.raises(SignatureInputError, match="missing B12"):
        compute_signature(item)


def test_partial_nodata_counts_in_valid_fraction(tmp_path: Path) -> None:
    nodata = np.zeros(SHAPE, bool)
    nodata[:, :50] = True
    item = s2_item(tmp_path, "edge", cover_map({}, SHAPE), when=WHEN, nodata_mask=nodata)
    p = compute_signature(item).properties
    assert p["signature:valid_fraction"] == pytest.approx(0.75)
    assert p["signature:vegetation_fraction"] == pytest.approx(1.0, abs=0.001)


def test_s1_water_by_minimum_error_threshold(tmp_path: Path) -> None:
    water = np.zeros(SHAPE, bool)
    water[:60] = True
    sig = compute_signature(s1_item(tmp_path, "S1-A", water, when=WHEN), chip_pixels=64)
    p = sig.properties
    assert p["signature:water_method"] == "minimum-error"
    assert -20 < p["signature:water_threshold_db"] < -11
    assert p["signature:water_fraction"] == pytest.approx(0.3, abs=0.01)
    assert p["signature:vv_mean_db"] == pytest.approx(0.3 * -22 + 0.7 * -9, abs=0.1)
    assert p["signature:vh_mean_db"] == pytest.approx(p["signature:vv_mean_db"] - 7, abs=0.05)
    assert set(sig.assets) == {"signature-water"}


def test_s1_without_water_uses_the_fixed_threshold() -> None:
    rng = np.random.default_rng(3)
    land = rng.normal(-9, 1.5, 10000)
    assert water_threshold(land) == (FALLBACK_VV_THRESHOLD_DB, "fixed")
    both = np.concatenate([land, rng.normal(-22, 1.5, 3000)])
    threshold, method = water_threshold(both)
    assert method == "minimum-error"
    assert -19 < threshold < -12
    # sand (or wet snow) around -17.5 dB and a little water: the threshold sits between them, not in the sand
    sand = np.concatenate([rng.normal(-17.5, 1.5, 10000), rng.normal(-23.5, 1.2, 300)])
    threshold, method = water_threshold(sand)
    assert method == "minimum-error"
    assert -22.5 < threshold < -20
    assert (sand < threshold).mean() < 0.06


def test_s1_wrong_scale_is_refused(tmp_path: Path) -> None:
    item = s1_item(tmp_path, "S1-bad", np.zeros(SHAPE, bool), when=WHEN)
    item["assets"]["vv"]["raster:bands"][0]["scale"] = 0.1  # -900 DN would read as -90 dB
    with pytest.raises(SignatureInputError, match="not plausible sigma0"):
        compute_signature(item)
