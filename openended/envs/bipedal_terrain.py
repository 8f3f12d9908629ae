"""Obstacle geometry for Stump Tracks and Hexagon Tracks (pure numpy, no Box2D).

Contents:
    stump_blocks       -- Stump Tracks: rectangles (x_left, x_right, height) on flat ground.
    hexagon_polygons   -- Hexagon Tracks: convex polygons from 12 vertex-offset parameters.
    convex_hull        -- counter-clockwise hull of a few 2-D points (what Box2D accepts).
    TRACK_START_X, FINISH_X, GROUND_Y, TERRAIN_STEP -- track layout, in world units.

Why a separate module: geometry is a pure function of (task, rng), so it is cheap to test
and to inspect without building a physics world, and every random draw comes from the
``np.random.Generator`` the env passes in (the env's seeded ``np_random``), so the same
seed and task give the same track.

Written from the task definitions of Portelas et al. (2019) (stump height ~
``max(0.05, N(mean, 0.1))`` steps, one step wide, one stump every ``max(0.01, spacing)``
x-units; hexagon vertices offset by parameters perturbed with ``N(., 0.1)``); the code is
our own, not teachDeepRL's.
"""

from __future__ import annotations

import numpy as np
from gymnasium.envs.box2d import bipedal_walker as bw

from openended.errors import ConfigError

__all__ = [
    "TERRAIN_STEP",
    "GROUND_Y",
    "TRACK_START_X",
    "FINISH_X",
    "TRACK_END_X",
    "STUMP_CELLS",
    "HEXAGON_BASE",
    "HEXAGON_X_DIRECTION",
    "stump_blocks",
    "hexagon_polygons",
    "convex_hull",
]

TERRAIN_STEP: float = bw.TERRAIN_STEP
"""One terrain step (14 px / 30 = 0.467 world units): the unit of stump heights and hexagon offsets."""
GROUND_Y: float = bw.TERRAIN_HEIGHT
"""Height of the flat ground (upstream's mean ground height)."""
TRACK_START_X: float = bw.TERRAIN_STARTPAD * bw.TERRAIN_STEP
"""First obstacle position: the end of upstream's 20-step start pad (the walker starts at half of it)."""
FINISH_X: float = (bw.TERRAIN_LENGTH - bw.TERRAIN_GRASS) * bw.TERRAIN_STEP
"""Upstream ends the episode (success path) when the hull passes this x."""
TRACK_END_X: float = bw.TERRAIN_LENGTH * bw.TERRAIN_STEP
"""Right end of the ground."""

STUMP_CELLS: int = 8
"""Overlapping stumps are merged on a grid of ``TERRAIN_STEP / STUMP_CELLS`` (about 1.75 px)."""

# Flat-bottomed unit hexagon (in terrain steps, relative to its anchor on the ground),
# counter-clockwise from the bottom-left vertex.
HEXAGON_BASE: np.ndarray = np.array([(-0.5, 0.0), (0.5, 0.0), (1.0, 0.5), (0.5, 1.0), (-0.5, 1.0), (-1.0, 0.5)])
HEXAGON_BASE.setflags(write=False)
# Which way each vertex's x offset pushes it: outward, away from the anchor.
HEXAGON_X_DIRECTION: np.ndarray = np.array([-1.0, 1.0, 1.0, 1.0, -1.0, -1.0])
HEXAGON_X_DIRECTION.setflags(write=False)


def stump_blocks(
    rng: np.random.Generator,
    mean_height: float,
    spacing: float,
    *,
    x_start: float = TRACK_START_X,
    x_end: float = FINISH_X,
    height_sd: float = 0.1,
    min_height: float = 0.05,
) -> np.ndarray:
    """Stumps of one track as an ``(n, 3)`` array of ``(x_left, x_right, height)`` (world units).

    A stump starts every ``max(0.01, spacing)`` x-units from ``x_start``; each is one
    ``TERRAIN_STEP`` wide and ``max(min_height, N(mean_height, height_sd))`` steps tall.

    When the period is shorter than a stump's width the stumps overlap. Their union is
    then returned as its upper envelope on a ``TERRAIN_STEP / STUMP_CELLS`` grid (stump
    starts snap to the grid, at most ~0.9 px), run-length merged: with spacing 0.01 that is
    a few hundred blocks instead of ~8,000 overlapping bodies, which keeps ``reset`` cheap
    and avoids stacks of redundant contacts. Non-overlapping stumps are returned exactly.
    """
    period = max(0.01, float(spacing))
    width = TERRAIN_STEP
    n = int(np.floor((x_end - width - x_start) / period)) + 1 if x_end - width >= x_start else 0
    if n <= 0:
        return np.zeros((0, 3))
    heights = np.maximum(min_height, rng.normal(mean_height, height_sd, size=n)) * TERRAIN_STEP
    starts = x_start + period * np.arange(n)
    if period >= width:
        return np.column_stack([starts, starts + width, heights])
    # Overlapping: per-cell maximum of the stumps covering each grid cell.
    cell = width / STUMP_CELLS
    first = np.rint((starts - x_start) / cell).astype(np.int64)  # non-decreasing
    group_starts = np.flatnonzero(np.r_[True, first[1:] != first[:-1]])
    start_max = np.maximum.reduceat(heights, group_starts)
    n_cells = int(first[-1]) + STUMP_CELLS
    begins = np.zeros(n_cells + STUMP_CELLS - 1)  # padded so every cell has a full window
    begins[first[group_starts] + STUMP_CELLS - 1] = start_max
    cover = np.lib.stride_tricks.sliding_window_view(begins, STUMP_CELLS).max(axis=1)[:n_cells]
    change = np.flatnonzero(np.r_[True, cover[1:] != cover[:-1]])
    ends = np.r_[change[1:], n_cells]
    h = cover[change]
    keep = h > 0
    left = x_start + cell * change[keep]
    right = x_start + cell * ends[keep]
    return np.column_stack([left, right, h[keep]])


def convex_hull(points: np.ndarray) -> np.ndarray:
    """Counter-clockwise convex hull (Andrew's monotone chain) of a few 2-D points.

    Box2D polygons must be convex with at most 8 vertices; computing the hull here lets
    the caller check the area first (Box2D raises on degenerate polygons).
    """
    pts = sorted(set(map(tuple, np.asarray(points, dtype=np.float64).tolist())))
    if len(pts) <= 2:
        return np.asarray(pts, dtype=np.float64).reshape(-1, 2)

    def cross(o: tuple, a: tuple, b: tuple) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[tuple] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list[tuple] = []
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return np.asarray(lower[:-1] + upper[:-1], dtype=np.float64)


def _polygon_area(poly: np.ndarray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def hexagon_polygons(
    rng: np.random.Generator,
    params: np.ndarray,
    *,
    spacing: float,
    x_start: float = TRACK_START_X,
    x_end: float = FINISH_X,
    offset_sd: float = 0.1,
) -> list[np.ndarray]:
    """Obstacles of one Hexagon track: a list of convex ``(k, 2)`` vertex arrays (world units).

    ``params`` holds 12 offsets, ``(dx_i, dy_i)`` for the 6 vertices of a flat-bottomed
    unit hexagon (``HEXAGON_BASE``, in terrain steps): ``dx_i`` pushes vertex ``i``
    outward horizontally, ``dy_i`` lifts it. The convex hull of the moved vertices is then
    dropped so its lowest vertex rests on the ground (obstacles never float). Every
    obstacle draws its own ``N(params, offset_sd)`` offsets, so obstacles of one task share
    a shape family but differ. One obstacle is anchored every ``spacing`` x-units from
    ``x_start``.

    Unlike teachDeepRL (where 2 of the 12 numbers had no effect), every parameter moves a
    vertex relative to the others; only lifting all six by the same amount is a no-op.
    """
    p = np.asarray(params, dtype=np.float64).reshape(6, 2)
    if spacing <= 0:
        raise ConfigError(f"hexagon_polygons: spacing must be > 0, got {spacing}")
    anchors = np.arange(x_start, x_end, spacing)
    out: list[np.ndarray] = []
    noise = rng.normal(0.0, offset_sd, size=(anchors.size, 6, 2))
    for anchor, eps in zip(anchors, noise):
        off = p + eps
        verts = HEXAGON_BASE + np.column_stack([HEXAGON_X_DIRECTION * off[:, 0], off[:, 1]])
        verts[:, 1] -= verts[:, 1].min()
        world = np.column_stack([anchor + verts[:, 0] * TERRAIN_STEP, GROUND_Y + verts[:, 1] * TERRAIN_STEP])
        hull = convex_hull(world)
        if len(hull) >= 3 and _polygon_area(hull) > 1e-4:  # true unless noise collapses the hexagon
            out.append(hull)
    return out
