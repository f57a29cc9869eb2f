"""Bulk building of SQLite R*Tree indexes: a packed tree written straight into the rtree's shadow tables.

SQLite's ``rtree`` module only inserts one entry at a time (choose a leaf, split full nodes): about 9 µs per box for
a 3-D tree, the largest single cost of a million-item load. With every box known in advance a tree can instead be
packed, as GDAL does for GeoPackage spatial indexes: entries sorted by Sort-Tile-Recursive (Leutenegger et al.,
1997) into full leaves, those leaves' boxes packed the same way into the level above, up to one root; then the nodes
are written in the format of SQLite's ``rtree.c`` (documented in its header comment):

- ``<name>_node(nodeno, data)``: one blob per node, the node size of the table (that of its root, ``nodeno`` 1):
  2 bytes, the tree's depth (root only), 2 bytes, the number of cells, then the cells: a 64-bit rowid (an entry's id
  in a leaf, a child's ``nodeno`` above) and, per dimension, the minimum and maximum as 32-bit floats, all
  big-endian;
- ``<name>_rowid(rowid, nodeno, a0...)``: each entry's leaf, and its auxiliary columns;
- ``<name>_parent(nodeno, parentnode)``: each node's parent but the root's.

The coordinates are rounded outwards to 32-bit floats (minimum down, maximum up), as ``rtree`` itself stores them,
so a box never shrinks. The result is an ordinary R*Tree: SQLite queries, inserts into and deletes from it as usual,
and ``rtreecheck()`` verifies it (the tests do). Packed nodes are full, so the first inserts afterwards split some.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass

import numpy as np

_ROOT = 1
_ROWS_PER_CALL = 65_536


def outward_float32(low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``low`` rounded down and ``high`` rounded up to 32-bit floats (what ``rtree`` stores for a REAL box)."""
    low32, high32 = low.astype(np.float32), high.astype(np.float32)
    low32 = np.where(low32.astype(np.float64) > low, np.nextafter(low32, np.float32(-np.inf)), low32)
    high32 = np.where(high32.astype(np.float64) < high, np.nextafter(high32, np.float32(np.inf)), high32)
    return low32, high32


def str_order(centres: np.ndarray, capacity: int) -> np.ndarray:
    """The Sort-Tile-Recursive order of points (``centres``: n x d) for nodes of ``capacity`` entries.

    Sorted along the first axis, cut into slabs of whole nodes; each slab sorted along the next axis and cut again;
    the last axis orders the entries within the finest tiles. Consecutive runs of ``capacity`` entries of the order
    are the nodes."""
    count, dims = centres.shape
    nodes = math.ceil(count / capacity)
    slabs = max(1, math.ceil(nodes ** (1 / dims)))

    def order(index: np.ndarray, axis: int) -> np.ndarray:
        ranked = index[np.argsort(centres[index, axis], kind="stable")]
        if axis == dims - 1:
            return ranked
        # slabs hold a whole number of nodes: slabs ** (dims - axis - 1) of them each
        per_slab = capacity * slabs ** (dims - axis - 1)
        if ranked.size <= per_slab:
            return order(ranked, axis + 1)
        return np.concatenate([order(ranked[at : at + per_slab], axis + 1) for at in range(0, ranked.size, per_slab)])

    return order(np.arange(count), 0)


def _cells(ids: np.ndarray, boxes: np.ndarray, capacity: int, node_bytes: int, depth: int | None) -> np.ndarray:
    """Node blobs (one row of ``node_bytes`` each) for consecutive runs of ``capacity`` cells."""
    count, coordinates = boxes.shape
    nodes = math.ceil(count / capacity)
    cell = np.dtype([("id", ">i8"), ("box", ">f4", (coordinates,))])
    cells = np.zeros(nodes * capacity, cell)
    cells["id"][:count] = ids
    cells["box"][:count] = boxes
    blobs = np.zeros((nodes, node_bytes), np.uint8)
    blobs[:, 4 : 4 + capacity * cell.itemsize] = cells.view(np.uint8).reshape(nodes, capacity * cell.itemsize)
    filled = np.full(nodes, capacity, ">u2")
    filled[-1] = count - (nodes - 1) * capacity
    blobs[:, 2:4] = filled.view(np.uint8).reshape(nodes, 2)
    if depth is not None:  # the root: the tree's depth in front
        blobs[0, 0:2] = np.array([depth], ">u2").view(np.uint8)
    return blobs


def _node_boxes(boxes: np.ndarray, capacity: int) -> np.ndarray:
    """The box of each run of ``capacity`` boxes (columns: min, max per dimension)."""
    count, coordinates = boxes.shape
    nodes = math.ceil(count / capacity)
    padded = np.empty((nodes * capacity, coordinates), boxes.dtype)
    padded[:count] = boxes
    padded[count:] = boxes[-1]  # repeat the last box: neutral for min and max
    runs = padded.reshape(nodes, capacity, coordinates)
    out = np.empty((nodes, coordinates), boxes.dtype)
    out[:, 0::2] = runs[:, :, 0::2].min(axis=1)
    out[:, 1::2] = runs[:, :, 1::2].max(axis=1)
    return out


@dataclass(frozen=True)
class PackedTree:
    """The rows of an rtree's shadow tables for a set of entries (``pack``), ready to be written (``write``)."""

    nodes: list[tuple[int, bytes]]  # (nodeno, data)
    parents: list[tuple[int, int]]  # (nodeno, parentnode)
    entries: np.ndarray  # n x 3 int64: rowid, leaf nodeno, auxiliary column; sorted by rowid


def node_size(conn: sqlite3.Connection, table: str) -> int:
    """The node size, in bytes, of the rtree ``table`` (that of its root node)."""
    row = conn.execute(f'SELECT length(data) FROM "{table}_node" WHERE nodeno = {_ROOT}').fetchone()
    if row is None:
        raise ValueError(f"rtree bulk load: {table} has no root node")
    return int(row[0])


def pack(ids: np.ndarray, boxes: np.ndarray, aux: np.ndarray, node_bytes: int) -> PackedTree:
    """The packed tree of entries ``ids`` (int64), ``boxes`` (n x 2d float64: min, max per dimension, in the
    table's column order) and one auxiliary column ``aux`` (int64), for nodes of ``node_bytes``.

    Pure numpy (it releases the GIL in its sorts): it can run in a thread while the database does other work."""
    count = ids.shape[0]
    if boxes.shape[0] != count or aux.shape[0] != count:
        raise ValueError("rtree bulk load: ids, boxes and aux differ in length")
    coordinates = boxes.shape[1]
    capacity = (node_bytes - 4) // (8 + 4 * coordinates)
    if capacity < 2:
        raise ValueError(f"rtree bulk load: nodes of {node_bytes} bytes hold {capacity} cells")
    if count == 0:
        return PackedTree([], [], np.empty((0, 3), np.int64))
    low, high = outward_float32(boxes[:, 0::2], boxes[:, 1::2])
    rounded = np.empty((count, coordinates), np.float32)
    rounded[:, 0::2], rounded[:, 1::2] = low, high

    # leaves, then each level above, until one node holds them all
    order = str_order((low + high) / 2, capacity)
    level_ids, level_boxes = ids[order], rounded[order]
    levels: list[tuple[np.ndarray, np.ndarray]] = []  # per level, bottom up: (cell ids, cell boxes) in node order
    parents_of: list[np.ndarray] = []  # per level above the leaves: child node index -> this level's node index
    while True:
        levels.append((level_ids, level_boxes))
        nodes = math.ceil(level_ids.shape[0] / capacity)
        if nodes == 1:
            break
        node_boxes = _node_boxes(level_boxes, capacity)
        up = str_order((node_boxes[:, 0::2] + node_boxes[:, 1::2]) / 2, capacity)
        parent = np.empty(nodes, np.int64)
        parent[up] = np.arange(nodes) // capacity
        parents_of.append(parent)
        level_ids, level_boxes = up, node_boxes[up]  # child node indexes, replaced by node numbers below

    # node numbers: the root 1, then each level below in order
    depth = len(levels) - 1
    first: list[int] = [0] * len(levels)  # node number of the first node of each level
    number = _ROOT
    for level in range(depth, -1, -1):
        first[level] = number
        number += math.ceil(levels[level][0].shape[0] / capacity)

    node_rows: list[tuple[int, bytes]] = []
    parent_rows: list[tuple[int, int]] = []
    for level, (cell_ids, cell_boxes) in enumerate(levels):
        if level > 0:
            cell_ids = cell_ids + first[level - 1]  # child node indexes -> node numbers
        blobs = _cells(cell_ids, cell_boxes, capacity, node_bytes, depth if level == depth else None)
        numbers = range(first[level], first[level] + blobs.shape[0])
        node_rows.extend(zip(numbers, (blob.tobytes() for blob in blobs), strict=True))
        if level < depth:
            parent_rows.extend(zip(numbers, (parents_of[level] + first[level + 1]).tolist(), strict=True))
    leaf = np.empty(count, np.int64)
    leaf[order] = np.arange(count) // capacity + first[0]
    by_id = np.argsort(ids, kind="stable")
    return PackedTree(node_rows, parent_rows, np.stack([ids[by_id], leaf[by_id], aux[by_id]], axis=1))


def write(conn: sqlite3.Connection, table: str, tree: PackedTree) -> None:
    """Write a packed tree into the empty rtree ``table``, in the caller's transaction (``ValueError`` when the
    table is not empty or its nodes are not the size the tree was packed for)."""
    if not tree.nodes:
        return
    if conn.execute(f'SELECT 1 FROM "{table}_rowid" LIMIT 1').fetchone() is not None:
        raise ValueError(f"rtree bulk load: {table} is not empty")
    if len(tree.nodes[0][1]) != node_size(conn, table):
        raise ValueError(f"rtree bulk load: {table}'s nodes are not {len(tree.nodes[0][1])} bytes")
    conn.execute(f'DELETE FROM "{table}_node"')
    conn.execute(f'DELETE FROM "{table}_parent"')
    conn.executemany(f'INSERT INTO "{table}_node" (nodeno, data) VALUES (?, ?)', tree.nodes)
    conn.executemany(f'INSERT INTO "{table}_parent" (nodeno, parentnode) VALUES (?, ?)', tree.parents)
    for start in range(0, tree.entries.shape[0], _ROWS_PER_CALL):  # Python ints for a slice at a time
        rows = tree.entries[start : start + _ROWS_PER_CALL].tolist()
        conn.executemany(f'INSERT INTO "{table}_rowid" (rowid, nodeno, a0) VALUES (?, ?, ?)', rows)


def bulk_load(conn: sqlite3.Connection, table: str, ids: np.ndarray, boxes: np.ndarray, aux: np.ndarray) -> None:
    """``pack`` then ``write``: fill the empty rtree ``table`` in the caller's transaction."""
    write(conn, table, pack(ids, boxes, aux, node_size(conn, table)))
