"""The packed R*Tree is the one SQLite would query, check and update: rtreecheck, brute force, inserts after."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from snapearth.catalog.sqlite_rtree import bulk_load, outward_float32, str_order

_DDL = "CREATE VIRTUAL TABLE r USING rtree (id, minx, maxx, miny, maxy, mint, maxt, +item INTEGER)"


def _rtree(page_size: int = 16384) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.execute(f"PRAGMA page_size = {page_size}")
    conn.execute(_DDL)
    return conn


def _random_boxes(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, y, t = rng.uniform(-180, 179, count), rng.uniform(-80, 79, count), rng.uniform(1.6e9, 1.7e9, count)
    boxes = np.stack(
        [x, x + rng.uniform(0, 1, count), y, y + rng.uniform(0, 1, count), t, t + rng.uniform(0, 1e5, count)], 1
    )
    ids = np.arange(1, count + 1, dtype=np.int64)
    ids[::7] *= -1  # second boxes of antimeridian items have negative ids
    return ids, boxes, np.abs(ids) * 10


@pytest.mark.parametrize(("count", "page_size"), [(1, 16384), (51, 16384), (52, 16384), (2602, 16384), (700, 1024)])
def test_a_packed_rtree_answers_like_brute_force(count: int, page_size: int) -> None:
    rng = np.random.default_rng(count)
    ids, boxes, aux = _random_boxes(rng, count)
    conn = _rtree(page_size)
    bulk_load(conn, "r", ids, boxes, aux)
    assert conn.execute("SELECT rtreecheck('r')").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*) FROM r").fetchone()[0] == count
    assert dict(conn.execute("SELECT id, item FROM r")) == dict(zip(ids.tolist(), aux.tolist(), strict=True))
    for _ in range(40):
        qx, qy, qt = rng.uniform(-180, 170), rng.uniform(-80, 70), rng.uniform(1.6e9, 1.7e9)
        query = (qx + 10, qx, qy + 10, qy, qt + 5e6, qt)
        got = {
            row[0]
            for row in conn.execute(
                "SELECT id FROM r"
                " WHERE minx <= ? AND maxx >= ? AND miny <= ? AND maxy >= ? AND mint <= ? AND maxt >= ?",
                query,
            )
        }
        hit = (
            (boxes[:, 0] <= query[0])
            & (boxes[:, 1] >= query[1])
            & (boxes[:, 2] <= query[2])
            & (boxes[:, 3] >= query[3])
            & (boxes[:, 4] <= query[4])
            & (boxes[:, 5] >= query[5])
        )
        assert got == set(ids[hit].tolist())
    # SQLite keeps maintaining it: inserts split the full packed nodes, deletes condense them
    conn.executemany("INSERT INTO r VALUES (?, 0, 1, 0, 1, 0, 1, 5)", [(10**6 + n,) for n in range(120)])
    conn.executemany("DELETE FROM r WHERE id = ?", [(value,) for value in ids[: count // 2].tolist()])
    assert conn.execute("SELECT rtreecheck('r')").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*) FROM r").fetchone()[0] == count - count // 2 + 120


def test_coordinates_round_outwards() -> None:
    low = np.array([0.1, -0.1, 1.7e9 + 1])
    high = np.array([0.1, -0.1, 1.7e9 + 1])
    low32, high32 = outward_float32(low, high)
    assert (low32.astype(np.float64) <= low).all()
    assert (high32.astype(np.float64) >= high).all()
    conn = _rtree()
    boxes = np.array([[0.1, 0.1, -0.1, -0.1, 1.7e9 + 1, 1.7e9 + 1]])
    bulk_load(conn, "r", np.array([1]), boxes, np.array([1]))
    # the exact point is inside its stored box
    found = conn.execute(
        "SELECT id FROM r WHERE minx <= 0.1 AND maxx >= 0.1 AND miny <= -0.1 AND maxy >= -0.1"
        " AND mint <= 1700000001 AND maxt >= 1700000001"
    ).fetchall()
    assert found == [(1,)]


def test_refuses_a_table_that_is_not_empty() -> None:
    conn = _rtree()
    conn.execute("INSERT INTO r VALUES (1, 0, 1, 0, 1, 0, 1, 1)")
    with pytest.raises(ValueError, match="not empty"):
        bulk_load(conn, "r", np.array([2]), np.array([[0.0, 1, 0, 1, 0, 1]]), np.array([2]))
    with pytest.raises(ValueError, match="differ in length"):
        bulk_load(_rtree(), "r", np.array([2, 3]), np.array([[0.0, 1, 0, 1, 0, 1]]), np.array([2]))


def test_str_order_is_a_permutation_grouping_neighbours() -> None:
    rng = np.random.default_rng(0)
    centres = rng.uniform(0, 100, (5000, 2))
    order = str_order(centres, 50)
    assert sorted(order.tolist()) == list(range(5000))
    # nodes of 50 consecutive entries cover far less than the whole square on average
    spans = [np.ptp(centres[order[at : at + 50]], axis=0).prod() for at in range(0, 5000, 50)]
    assert np.mean(spans) < 100 * 100 / 20
