"""Maze layouts for the MiniGrid maze family: generated from task parameters, or hand-picked.

Pure numpy (no minigrid import), so layouts can be built, checked and plotted anywhere.

Contents:
    MazeLayout      -- walls, start, start direction and goal of one maze in a square frame.
    generate_maze   -- the layout of task parameters ``(size, wall_density, goal_distance)`` and a seed.
    level_params    -- the parameters a seeded level id stands for (uniform over the Box).
    HARD_MAZES      -- hand-drawn test layouts in the style of the UED papers' held-out mazes
                       (labyrinth, four rooms, zig-zag corridor, nine rooms, a perfect maze).
    shortest_path   -- BFS length from start to goal (``None``: unsolvable).
    flip_walls      -- a layout with some interior cells of its room flipped (wall <-> floor).
    edit_maze_task  -- ACCEL's edit for the maze family: add or remove walls (the family's
                       ``task_editor``; module section "Edits").

Why the generator looks like this: PLR / ACCEL / minimax train on mazes whose difficulty
comes from the room size, the number of walls and how far the goal is. Here those are
the three Box parameters. The same parameters and seed always give the same layout
(`numpy.random.SeedSequence` over the seed and the parameters quantised to 1e-9), so a
teacher's task plus the env's seeded draw is one reproducible level. A random layout may
be unsolvable (as in the papers' domain randomisation); `MazeLayout.solvable` says so.

Coordinates are ``(x, y)`` with ``walls[y, x]``, as MiniGrid indexes its grid.

Edits (ACCEL). ACCEL edits one *level*; a ``(size, wall_density, goal_distance)`` task is a
distribution of layouts (the env draws a seed per episode). With ``wall_edits: k`` the
``minigrid_maze`` task gains ``layout_seed`` (``-1``: drawn per episode as before; ``s``:
the one layout of seed ``s``) and ``k`` edit slots ``edit_0 ..`` (``-1``: unused; ``c``:
flip interior cell ``c`` of the room, counted row-major, modulo the room's cell count;
start and goal are never flipped). `edit_maze_task` is then "add or remove walls": it
fixes a layout (a random ``layout_seed`` for a distribution task) and writes a random cell
into a free slot (or overwrites a random slot when all are used), i.e. flips one wall per
edit. On the plain 3-dimensional space it makes the closest parameter change: each edit
adds or removes one wall's worth of ``wall_density`` (``1 /`` the room's free cells).

Example:
    >>> lay = generate_maze(7, 0.2, 1.0, seed=3)
    >>> lay.walls.shape, lay.size
    ((13, 13), 7)
    >>> generate_maze(7, 0.2, 1.0, seed=3) == lay
    True
    >>> shortest_path(HARD_MAZES["labyrinth"]) is not None
    True
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from openended.errors import TaskNotInSpace
from openended.tasks import Box, Task, TaskSpace

__all__ = [
    "FRAME",
    "MIN_SIZE",
    "MAX_WALL_DENSITY",
    "MazeLayout",
    "generate_maze",
    "level_params",
    "shortest_path",
    "layout_from_ascii",
    "HARD_MAZES",
    "flip_walls",
    "edit_maze_task",
]

#: Side of the default frame every maze is drawn in (outer walls included): 11x11 interior.
FRAME = 13
#: Smallest room side (outer walls included): a 3x3 interior.
MIN_SIZE = 5
#: Largest wall density the Box allows (more leaves almost every level unsolvable).
MAX_WALL_DENSITY = 0.6


@dataclass(frozen=True, eq=False)
class MazeLayout:
    """One maze: ``walls[y, x]`` over the whole frame (True = wall), start, direction, goal."""

    walls: np.ndarray
    start: tuple[int, int]
    start_dir: int  # MiniGrid's 0 = right, 1 = down, 2 = left, 3 = up
    goal: tuple[int, int]
    size: int  # side of the room inside the frame (outer walls included)
    name: str = ""

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, MazeLayout)
            and np.array_equal(self.walls, other.walls)
            and (self.start, self.start_dir, self.goal, self.size)
            == (other.start, other.start_dir, other.goal, other.size)
        )

    __hash__ = None  # type: ignore[assignment]  # mutable array inside: layouts are compared, not hashed

    @property
    def frame(self) -> int:
        """Side of the frame the layout is drawn in."""
        return int(self.walls.shape[0])

    @property
    def solvable(self) -> bool:
        """Whether the goal can be reached from the start."""
        return shortest_path(self) is not None


def _quantise(x: float) -> int:
    return int(round(float(x) * 1e9))


def generate_maze(size: float, wall_density: float, goal_distance: float, seed: int, frame: int = FRAME) -> MazeLayout:
    """The layout of one maze task: deterministic in the parameters and ``seed``.

    Args:
        size: room side, outer walls included (rounded; clipped to ``[MIN_SIZE, frame]``).
            Cells of the frame outside the room are walls.
        wall_density: fraction of the free interior cells (all but start and goal) made walls.
        goal_distance: wanted start-goal Manhattan distance as a fraction of the room's
            largest; the goal is the cell closest to it (ties broken at random).
        seed: the level seed (the env draws it from its own seeded generator per episode).
        frame: side of the square frame.
    """
    side = int(min(frame, max(MIN_SIZE, round(float(size)))))
    density = float(min(1.0, max(0.0, wall_density)))
    dist = float(min(1.0, max(0.0, goal_distance)))
    ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, side, _quantise(density), _quantise(dist)])
    rng = np.random.default_rng(ss)
    walls = np.ones((frame, frame), dtype=bool)
    walls[1 : side - 1, 1 : side - 1] = False
    ys, xs = np.nonzero(~walls)
    cells = np.stack([xs, ys], axis=1)  # (n, 2) interior cells, row-major order
    s = int(rng.integers(len(cells)))
    start = cells[s]
    manhattan = np.abs(cells - start).sum(axis=1)
    target = dist * 2 * (side - 3)
    gap = np.abs(manhattan - target).astype(float)
    gap[s] = np.inf  # the goal is never the start cell
    best = np.flatnonzero(gap == gap.min())
    g = int(best[rng.integers(len(best))])
    goal = cells[g]
    free = np.delete(np.arange(len(cells)), [s, g])
    k = int(round(density * len(free)))
    chosen = cells[rng.choice(free, size=k, replace=False)] if k else np.zeros((0, 2), dtype=np.int64)
    walls[chosen[:, 1], chosen[:, 0]] = True
    return MazeLayout(
        walls=walls,
        start=(int(start[0]), int(start[1])),
        start_dir=int(rng.integers(4)),
        goal=(int(goal[0]), int(goal[1])),
        size=side,
    )


def level_params(level: int, frame: int = FRAME) -> tuple[float, float, float]:
    """The ``(size, wall_density, goal_distance)`` a seeded level id stands for.

    Uniform over the maze Box (the domain-randomisation distribution PLR replays from);
    the level's layout is ``generate_maze(*level_params(level), seed=level)``.
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(level) & 0xFFFFFFFF, 0x4C56]))
    return (
        float(rng.uniform(MIN_SIZE, frame)),
        float(rng.uniform(0.0, MAX_WALL_DENSITY)),
        float(rng.uniform(0.0, 1.0)),
    )


_MOVES = ((1, 0), (0, 1), (-1, 0), (0, -1))


def shortest_path(layout: MazeLayout) -> int | None:
    """Steps of the shortest start-to-goal path (moves only, no turns), or ``None`` if unsolvable."""
    walls, (sx, sy), goal = layout.walls, layout.start, layout.goal
    seen = np.zeros_like(walls)
    seen[sy, sx] = True
    queue: deque[tuple[int, int, int]] = deque([(sx, sy, 0)])
    while queue:
        x, y, d = queue.popleft()
        if (x, y) == goal:
            return d
        for dx, dy in _MOVES:
            nx, ny = x + dx, y + dy
            if 0 <= ny < walls.shape[0] and 0 <= nx < walls.shape[1] and not walls[ny, nx] and not seen[ny, nx]:
                seen[ny, nx] = True
                queue.append((nx, ny, d + 1))
    return None


def flip_walls(layout: MazeLayout, cells: Iterable[int]) -> MazeLayout:
    """``layout`` with interior cells of its room flipped (wall <-> floor); start and goal stay floor.

    Cell ``c`` is ``c mod (size-2)^2`` of the room's interior counted row-major, so any
    non-negative index names a cell of any room size; a cell flipped twice is back.
    """
    inner = layout.size - 2
    walls = layout.walls.copy()
    for c in cells:
        i = int(c) % (inner * inner)
        x, y = 1 + i % inner, 1 + i // inner
        if (x, y) not in (layout.start, layout.goal):
            walls[y, x] = not walls[y, x]
    return MazeLayout(walls, layout.start, layout.start_dir, layout.goal, layout.size, layout.name)


def edit_maze_task(task: Task, space: TaskSpace, rng: np.random.Generator, n_edits: int) -> Task:
    """ACCEL's edit of a ``minigrid_maze`` task: ``n_edits`` walls added or removed (module doc, "Edits").

    Pure numpy and env-agnostic for the teacher: ACCEL calls it as ``editor``; the maze
    family names it as its ``task_editor``, so experiments fill it in.
    """
    if not isinstance(space, Box) or space.names[:3] != ("size", "wall_density", "goal_distance"):
        raise TaskNotInSpace(f"edit_maze_task: edits minigrid_maze tasks, not tasks of {space!r}")
    x = task.array.copy()
    names = list(space.names)
    side = int(min(space.high[0], max(MIN_SIZE, round(float(x[0])))))
    if "layout_seed" not in names:
        free = max((side - 2) ** 2 - 2, 1)
        steps = rng.choice([-1.0, 1.0], size=n_edits).sum()
        x[1] += steps / free
        return space.task(space.clip(x), parent_ids=(task.id,), origin="edited")
    seed_i = names.index("layout_seed")
    if x[seed_i] < -0.5:  # a distribution of layouts: fix one first
        x[seed_i] = float(rng.integers(0, int(space.high[seed_i]) + 1))
    slots = [i for i, n in enumerate(names) if n.startswith("edit_")]
    if not slots:
        raise TaskNotInSpace(f"edit_maze_task: {space!r} has a layout_seed but no edit_* slots")
    cells = int(space.high[slots[0]]) + 1
    for _ in range(n_edits):
        empty = [i for i in slots if x[i] < -0.5]
        slot = empty[0] if empty else slots[int(rng.integers(len(slots)))]
        x[slot] = float(rng.integers(0, cells))
    return space.task(space.clip(x), parent_ids=(task.id,), origin="edited")


def layout_from_ascii(rows: list[str], name: str, start_dir: int = 0, frame: int | None = None) -> MazeLayout:
    """A layout from text: ``#`` wall, ``.`` floor, ``S`` start, ``G`` goal (drawn top-left in the frame)."""
    side = len(rows)
    if any(len(r) != side for r in rows):
        raise ValueError(f"maze {name!r}: rows must form a square, got lengths {[len(r) for r in rows]}")
    frame = side if frame is None else frame
    walls = np.ones((frame, frame), dtype=bool)
    start = goal = None
    for y, row in enumerate(rows):
        for x, ch in enumerate(row):
            walls[y, x] = ch == "#"
            if ch == "S":
                start = (x, y)
            elif ch == "G":
                goal = (x, y)
    if start is None or goal is None:
        raise ValueError(f"maze {name!r}: needs one S and one G")
    return MazeLayout(walls=walls, start=start, start_dir=start_dir, goal=goal, size=side, name=name)


def _perfect_maze(frame: int, seed: int) -> MazeLayout:
    """A perfect maze (one path between any two cells) by randomised depth-first search, fixed seed."""
    rng = np.random.default_rng(seed)
    walls = np.ones((frame, frame), dtype=bool)
    cells = range(1, frame - 1, 2)
    stack = [(1, 1)]
    walls[1, 1] = False
    while stack:
        x, y = stack[-1]
        options = [
            (x + 2 * dx, y + 2 * dy, dx, dy)
            for dx, dy in _MOVES
            if x + 2 * dx in cells and y + 2 * dy in cells and walls[y + 2 * dy, x + 2 * dx]
        ]
        if not options:
            stack.pop()
            continue
        nx, ny, dx, dy = options[int(rng.integers(len(options)))]
        walls[y + dy, x + dx] = walls[ny, nx] = False
        stack.append((nx, ny))
    last = cells[-1]
    return MazeLayout(walls=walls, start=(1, 1), start_dir=0, goal=(last, last), size=frame, name="perfect_maze")


_ASCII: dict[str, tuple[list[str], int]] = {
    # A spiral: the goal sits in the centre, the only way in winds around all four sides.
    "labyrinth": (
        [
            "#############",
            "#S..........#",
            "###########.#",
            "#.........#.#",
            "#.#######.#.#",
            "#.#.....#.#.#",
            "#.#.###.#.#.#",
            "#.#.#G..#.#.#",
            "#.#.#####.#.#",
            "#.#.......#.#",
            "#.#########.#",
            "#...........#",
            "#############",
        ],
        0,
    ),
    # Four rooms with one-cell doors; start and goal in opposite rooms.
    "four_rooms": (
        [
            "#############",
            "#S....#.....#",
            "#.....#.....#",
            "#...........#",
            "#.....#.....#",
            "#.....#.....#",
            "###.#####.###",
            "#.....#.....#",
            "#.....#.....#",
            "#...........#",
            "#.....#....G#",
            "#.....#.....#",
            "#############",
        ],
        0,
    ),
    # A zig-zag corridor: every wall row is open at the opposite end from the last.
    "zigzag": (
        [
            "#############",
            "#S..........#",
            "###########.#",
            "#...........#",
            "#.###########",
            "#...........#",
            "###########.#",
            "#...........#",
            "#.###########",
            "#...........#",
            "###########.#",
            "#G..........#",
            "#############",
        ],
        0,
    ),
    # Nine small rooms (SixteenRooms' idea at 11x11): doors in random-looking places.
    "nine_rooms": (
        [
            "#############",
            "#S..#...#...#",
            "#...#.......#",
            "#.......#...#",
            "##.######.###",
            "#...#...#...#",
            "#...#.......#",
            "#.......#...#",
            "######.####.#",
            "#...#...#...#",
            "#.......#...#",
            "#...#.....G.#",
            "#############",
        ],
        1,
    ),
}


def _hard_mazes() -> dict[str, MazeLayout]:
    mazes = {name: layout_from_ascii(rows, name, start_dir=d) for name, (rows, d) in _ASCII.items()}
    mazes["perfect_maze"] = _perfect_maze(FRAME, seed=2021)
    return mazes


#: Hand-picked held-out mazes (13x13 frames), never in the training distribution's easy corner.
HARD_MAZES: dict[str, MazeLayout] = _hard_mazes()
