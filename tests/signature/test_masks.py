"""The mask COG writer: what GDAL reads back is what was written, overviews as GDAL's own nearest ones, valid COGs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling
from rasterio.transform import from_origin
from rasterio.windows import Window
from rio_cogeo.cogeo import cog_validate

from snapearth.signature.bands import Grid
from snapearth.signature.masks import RasterSink


def _grid(height: int, width: int) -> Grid:
    return Grid(height, width, from_origin(399960.0, 4900020.0, 20.0, 20.0), rasterio.crs.CRS.from_epsg(32631))


def _write(path: Path, data: np.ndarray, strip: int, *, overviews: bool = True, compress: bool = True) -> None:
    count, height, width = data.shape
    grid = _grid(height, width)
    sink = RasterSink(path, grid, count=count, dtype="uint8", nodata=255, overviews=overviews, compress=compress)
    for row in range(0, height, strip):
        rows = min(strip, height - row)
        sink.write(data[:, row : row + rows] if count > 1 else data[0, row : row + rows], Window(0, row, width, rows))
    sink.finish()


@pytest.mark.parametrize(("height", "width", "strip"), [(700, 530, 64), (1024, 512, 256), (300, 1100, 100)])
def test_mask_cog_reads_back_with_gdal_overviews(tmp_path: Path, height: int, width: int, strip: int) -> None:
    rng = np.random.default_rng(height)
    data = rng.choice(np.array([0, 1, 2, 255], dtype=np.uint8), (1, height, width), p=[0.7, 0.1, 0.1, 0.1])
    data[0, : height // 3] = 0  # uniform tiles too
    path = tmp_path / "mask.tif"
    _write(path, data, strip)
    with rasterio.open(path) as ds:
        assert (ds.read(1) == data[0]).all()
        assert ds.crs.to_epsg() == 32631
        assert ds.transform == _grid(height, width).transform
        assert ds.nodata == 255
        assert ds.profile["compress"] == "zstd"
        assert ds.profile["tiled"]
        assert ds.block_shapes == [(256, 256)]
        factors = ds.overviews(1)
    assert factors
    assert max(height, width) / factors[-1] <= 256
    # GDAL's own nearest overviews of the same data
    reference = tmp_path / "gdal.tif"
    grid = _grid(height, width)
    profile = {"driver": "GTiff", "height": height, "width": width, "count": 1, "dtype": "uint8", "nodata": 255}
    profile |= {"crs": grid.crs, "transform": grid.transform}
    with rasterio.open(reference, "w+", **profile, tiled=True, blockxsize=256, blockysize=256) as ds:
        ds.write(data)
        ds.build_overviews(factors, Resampling.nearest)
    for level in range(len(factors)):
        with rasterio.open(path, overview_level=level) as mine, rasterio.open(reference, overview_level=level) as gdal:
            assert mine.shape == gdal.shape
            assert (mine.read() == gdal.read()).all()
    valid, errors, warnings = cog_validate(path, strict=True)
    assert valid
    assert not errors
    assert not warnings


def test_two_band_raster_without_overviews(tmp_path: Path) -> None:
    data = np.random.default_rng(1).integers(0, 255, (2, 300, 400), dtype=np.uint8)
    path = tmp_path / "indices.tif"
    _write(path, data, 64, overviews=False)
    with rasterio.open(path) as ds:
        assert ds.count == 2
        assert ds.overviews(1) == []
        assert (ds.read() == data).all()
    assert cog_validate(path)[0]


@pytest.mark.parametrize("overviews", [False, True])
def test_uncompressed_raster_is_a_valid_cog(tmp_path: Path, overviews: bool) -> None:
    data = np.random.default_rng(2).integers(0, 255, (2, 700, 530), dtype=np.uint8)
    data[:, :300] = 7  # uniform tiles are stored whole too
    path = tmp_path / "raw.tif"
    _write(path, data, 100, overviews=overviews, compress=False)
    with rasterio.open(path) as ds:
        assert ds.compression is None
        assert ds.block_shapes == [(256, 256)] * 2
        assert (ds.read() == data).all()
        assert bool(ds.overviews(1)) == overviews
    assert path.stat().st_size > data.nbytes  # tiles padded to 256 x 256, nothing compressed
    valid, errors, warnings = cog_validate(path)
    assert valid
    assert not errors
    # the only warning without overviews: rio-cogeo recommends them above 512 pixels
    assert all("overviews" in w for w in warnings)
    assert bool(warnings) != overviews


def test_uncompressed_tiles_do_not_alias_the_written_array(tmp_path: Path) -> None:
    data = np.arange(256 * 256, dtype=np.uint32).reshape(1, 256, 256).astype(np.uint8)  # one whole tile
    expected = data.copy()
    path = tmp_path / "one-tile.tif"
    sink = RasterSink(path, _grid(256, 256), count=1, dtype="uint8", nodata=255, overviews=False, compress=False)
    sink.write(data, Window(0, 0, 256, 256))
    data[:] = 0  # the caller reuses its buffer before finish
    sink.finish()
    with rasterio.open(path) as ds:
        assert (ds.read() == expected).all()


@pytest.mark.parametrize("compress", [True, False])
def test_strips_may_come_from_a_reused_buffer(tmp_path: Path, compress: bool) -> None:
    """Rows waiting for their tile row (strips of 100 rows, tiles of 256) are kept, not views of the caller's
    array, at every level: a caller filling one buffer strip after strip gets the rows it wrote."""
    rng = np.random.default_rng(0)
    expected = rng.integers(0, 250, (1, 700, 600), dtype=np.uint8)
    path = tmp_path / "reused.tif"
    sink = RasterSink(path, _grid(700, 600), count=1, dtype="uint8", nodata=255, compress=compress)
    buffer = np.empty((1, 100, 600), np.uint8)
    for row in range(0, 700, 100):
        buffer[:] = expected[:, row : row + 100]
        sink.write(buffer, Window(0, row, 600, 100))
        buffer[:] = 0  # reused before the next strip
    sink.finish()
    reference = tmp_path / "reference.tif"
    _write(reference, expected, 100, compress=compress)
    with rasterio.open(path) as ds:
        assert (ds.read() == expected).all()
        for level in range(1, len(ds.overviews(1)) + 1):
            with (
                rasterio.open(path, overview_level=level - 1) as ov,
                rasterio.open(reference, overview_level=level - 1) as rv,
            ):
                assert (ov.read() == rv.read()).all()


def test_strips_must_come_in_order(tmp_path: Path) -> None:
    sink = RasterSink(tmp_path / "m.tif", _grid(512, 512), count=1, dtype="uint8", nodata=255)
    with pytest.raises(ValueError, match="top to bottom"):
        sink.write(np.zeros((256, 512), np.uint8), Window(0, 256, 512, 256))
    sink.abort()
    assert not (tmp_path / "m.tif").exists()


def test_chunks_written_in_batches(tmp_path: Path) -> None:
    from snapearth.signature.masks import _WRITEV_CHUNKS, _write_chunks

    chunks: list[bytes | memoryview] = [bytes([k % 251]) * (k % 7 + 1) for k in range(3 * _WRITEV_CHUNKS + 5)]
    chunks.append(np.arange(600, dtype=np.uint8).reshape(20, 30).data.cast("B"))
    path = tmp_path / "chunks.bin"
    path.write_bytes(b"x" * 100_000)  # truncated
    _write_chunks(path, chunks)
    assert path.read_bytes() == b"".join(chunks)
