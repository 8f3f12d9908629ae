"""BipedalWalker task families: Stump Tracks, Hexagon Tracks and the upstream walker.

Contents:
    StumpTracksEnv      -- task = (stump_height, obstacle_spacing), default box [0,3] x [0,6].
    HexagonTracksEnv    -- task = 12 hexagon vertex offsets, default box [0,4]^12.
    ClassicBipedalEnv   -- gymnasium's BipedalWalker terrain, a one-task space (comparisons).
    ParametricBipedalEnv-- shared base: bodies, task bookkeeping, episode return, success.
    MASTERY_RETURN      -- 230: an episode (or test task) is mastered when its return exceeds it.
    STUMP_PARAM_NAMES   -- Stump Tracks' task dimensions.

Test sets, evaluation, the scripted gait and videos are in `openended.envs.bipedal_eval`.

Everything here is gymnasium's Box2D ``BipedalWalker``: the envs subclass it, reuse its
constants, fixtures, clouds, rendering and, for 4-joint bodies with upstream motors
(``classic``, ``short``), its ``step`` itself. What changes is built at ``reset``: the
terrain (``openended.envs.bipedal_terrain``) and the body (``openended.envs.bodies``).
So a step of Stump Tracks costs what a step of BipedalWalker-v3 costs
(``benchmarks/env_speed.py`` measures it).

Task contract (``openended.envs.base``): ``set_task`` validates now and applies at the
next ``reset``; ``info["task_id"]`` on every reset/step; at episode end (terminated or
truncated at ``max_episode_steps``) ``info["success"] = episode return > 230`` plus
``info["episode_return"]`` and ``info["episode_length"]``. The time limit is inside the
env (not a wrapper) so that the episode-end info exists for truncated episodes too.

Example:
    >>> env = StumpTracksEnv(body="short")
    >>> env.set_task([1.0, 3.0])          # validated now, used from the next reset
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape, info["task_id"] == env.current_task.id
    ((24,), True)
    >>> env.close()
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.envs.box2d import bipedal_walker as bw
from gymnasium.utils import EzPickle

from openended.envs.base import TaskEnvMixin
from openended.envs.bipedal_terrain import FINISH_X, GROUND_Y, TERRAIN_STEP, hexagon_polygons, stump_blocks
from openended.envs.bodies import BodySpec, build_body, get_body
from openended.errors import ConfigError
from openended.tasks import Box, Discrete, Task

__all__ = [
    "MASTERY_RETURN",
    "ParametricBipedalEnv",
    "StumpTracksEnv",
    "HexagonTracksEnv",
    "ClassicBipedalEnv",
    "STUMP_PARAM_NAMES",
]

MASTERY_RETURN: float = 230.0
"""A task is mastered when the episode return is strictly above this (teachDeepRL/TeachMyAgent)."""

STUMP_PARAM_NAMES: tuple[str, str] = ("stump_height", "obstacle_spacing")

_STUMP_COLORS = ((255, 255, 255), (153, 153, 153))  # upstream's obstacle colours
_GROUND_FILL = (102, 153, 76)


class _LidarCallback(bw.Box2D.b2.rayCastCallback):
    """Upstream's lidar callback: the nearest hit on the terrain category.

    Upstream defines it inside ``BipedalWalker.reset``; here it is built once per reset.
    """

    def ReportFixture(self, fixture: Any, point: Any, normal: Any, fraction: float) -> float:  # Box2D callback name
        if (fixture.filterData.categoryBits & 1) == 0:
            return -1
        self.p2 = point
        self.fraction = fraction
        return fraction


class _FeetContactDetector(bw.contactListener):
    """Upstream's contact logic for any number of legs.

    Hull contact ends the episode; every lower leg reports ground contact.
    """

    def __init__(self, env: ParametricBipedalEnv) -> None:
        bw.contactListener.__init__(self)
        self.env = env

    def BeginContact(self, contact: Any) -> None:  # Box2D callback name
        a, b = contact.fixtureA.body, contact.fixtureB.body
        env = self.env
        if env.hull == a or env.hull == b:
            env.game_over = True
        for foot in env._feet:
            if foot == a or foot == b:
                foot.ground_contact = True

    def EndContact(self, contact: Any) -> None:  # Box2D callback name
        a, b = contact.fixtureA.body, contact.fixtureB.body
        for foot in self.env._feet:
            if foot == a or foot == b:
                foot.ground_contact = False


class ParametricBipedalEnv(TaskEnvMixin, bw.BipedalWalker):
    """Shared machinery: a body, a task space, internal time limit, return and success.

    Subclasses set ``self._space`` (and ``self._default_task``) in ``__init__`` and
    implement ``_build_terrain(task)``, which creates the static bodies in ``self.world``
    and fills ``self.terrain`` and ``self.terrain_poly`` (what upstream renders).
    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": bw.FPS}

    def __init__(
        self, *, body: str | BodySpec = "classic", max_episode_steps: int = 2000, render_mode: str | None = None
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ConfigError(
                f"render_mode: must be one of {self.metadata['render_modes']} or None, got {render_mode!r}"
            )
        if not isinstance(max_episode_steps, int) or isinstance(max_episode_steps, bool) or max_episode_steps < 1:
            raise ConfigError(f"max_episode_steps: must be an integer >= 1, got {max_episode_steps!r}")
        bw.BipedalWalker.__init__(self, render_mode=render_mode, hardcore=False)
        self.body: BodySpec = get_body(body)
        self.body_name = body if isinstance(body, str) else "custom"
        self.max_episode_steps = max_episode_steps
        low, high = self.body.observation_bounds()
        self.observation_space = spaces.Box(low, high)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(self.body.action_dim,), dtype=np.float32)
        # Upstream-compatible bodies step through gymnasium's own code (bit-for-bit upstream).
        self._upstream_step = self.body.upstream_step_compatible
        self._zero_action = np.zeros(self.body.action_dim, dtype=np.float32)
        self._feet: tuple = ()
        self._fd_box = bw.fixtureDef(shape=bw.polygonShape(box=(1.0, 1.0)), friction=bw.FRICTION)
        self._elapsed = 0
        self._episode_return = 0.0
        self._task_id = ""

    # ------------------------------------------------------------------------ tasks
    def set_task(self, task: Task | Sequence[float] | np.ndarray) -> None:
        """Queue ``task`` for the next ``reset`` (validated now; never applied mid-episode).

        Accepts a `Task` of this env's space or raw parameters (``[height, spacing]``);
        a value outside the space raises `TaskNotInSpace` naming the parameter and range.
        """
        if isinstance(task, Task) and isinstance(self._space, Box):
            self._space.validate(task.params)  # a clearer message than check_task's for Box tasks
        super().set_task(task)  # raw parameters: the space builds (and validates) the task

    # ---------------------------------------------------------------------- terrain
    def _build_terrain(self, task: Task) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _build_flat_ground(self) -> Any:
        """Flat ground cut like upstream's: one edge fixture per terrain step.

        Why not one long edge: contacts differ. With a single edge, gymnasium's scripted
        gait stalls on every seed; with per-step edges it walks as on upstream's start pad.
        The edges are fixtures of one static body rather than 199 bodies: contacts are
        per fixture, so physics is unchanged, and reset is cheaper (pybox2d's body
        creation costs ~10 us of Python each).
        """
        ground = self.world.CreateStaticBody()
        ground.color1 = ground.color2 = (76, 230, 76)
        fd = self.fd_edge
        xs = (np.arange(bw.TERRAIN_LENGTH) * TERRAIN_STEP).tolist()
        self.terrain_poly = []
        for x0, x1 in zip(xs[:-1], xs[1:]):
            fd.shape.vertices = [(x0, GROUND_Y), (x1, GROUND_Y)]
            ground.CreateFixture(fd)
            self.terrain_poly.append(([(x0, GROUND_Y), (x1, GROUND_Y), (x1, 0.0), (x0, 0.0)], _GROUND_FILL))
        return ground

    def _build_obstacles(
        self, polygons: Iterable[Sequence[tuple[float, float]]] = (), boxes: np.ndarray | None = None
    ) -> Any:
        """All obstacles as fixtures (upstream's friction) of one static body.

        ``polygons``: convex vertex lists; ``boxes``: ``(x_left, x_right, height)`` rows
        standing on the ground, set through Box2D's C ``SetAsBox`` (3x cheaper than
        pybox2d's Python vertex setter; spacing ~0 tracks have a few hundred blocks).
        """
        body = self.world.CreateStaticBody()
        body.color1, body.color2 = _STUMP_COLORS
        fd = self.fd_polygon
        for poly in polygons:
            fd.shape.vertices = poly
            body.CreateFixture(fd)
        if boxes is not None and len(boxes):
            fd, shape = self._fd_box, self._fd_box.shape
            for x0, x1, h in boxes.tolist():
                shape.SetAsBox((x1 - x0) / 2, h / 2, ((x0 + x1) / 2, GROUND_Y + h / 2), 0.0)
                body.CreateFixture(fd)
        return body

    # ------------------------------------------------------------------------ reset
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode of the queued task (``options={"task": ...}`` queues one too).

        Mirrors ``BipedalWalker.reset`` step for step (terrain, clouds, hull, initial push,
        legs, lidar, one zero-action step), with the terrain and body swapped, so random
        draws come from ``self.np_random`` in a fixed order: same seed + task, same episode.
        """
        task = self._task_for_reset(options)
        gym.Env.reset(self, seed=seed)
        self._destroy()
        listener = bw.ContactDetector(self) if self._upstream_step else _FeetContactDetector(self)
        self.world.contactListener_bug_workaround = listener
        self.world.contactListener = self.world.contactListener_bug_workaround
        self.game_over = False
        self.prev_shaping = None
        self.scroll = 0.0
        self.lidar_render = 0

        self._build_terrain(task)
        self._generate_clouds()

        init_x = bw.TERRAIN_STEP * bw.TERRAIN_STARTPAD / 2
        init_y = bw.TERRAIN_HEIGHT + self.body.height
        self.hull, self.legs, self.joints = build_body(self.body, self.world, init_x, init_y)
        self.hull.ApplyForceToCenter((self.np_random.uniform(-bw.INITIAL_RANDOM, bw.INITIAL_RANDOM), 0), True)
        self._feet = tuple(self.legs[1::2])
        self.drawlist = self.terrain + self.legs + [self.hull]
        self.lidar = [_LidarCallback() for _ in range(10)]

        self._task_id = task.id
        obs = self._physics_step(self._zero_action)[0]
        self._elapsed = 0
        self._episode_return = 0.0
        if self.render_mode == "human":
            self.render()
        return obs, {"task_id": task.id}

    # ------------------------------------------------------------------------- step
    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """One physics step (upstream's), plus the task bookkeeping: return, time limit, success."""
        obs, reward, terminated, _, _ = self._physics_step(action)
        reward = float(reward)
        self._elapsed += 1
        self._episode_return += reward
        truncated = self._elapsed >= self.max_episode_steps and not terminated
        info: dict[str, Any] = {"task_id": self._task_id}
        if terminated or truncated:
            info["success"] = self._episode_return > MASTERY_RETURN
            info["episode_return"] = self._episode_return
            info["episode_length"] = self._elapsed
        return obs, reward, terminated, truncated, info

    def _physics_step(self, action: np.ndarray) -> tuple[np.ndarray, Any, bool, bool, dict]:
        if self._upstream_step:
            return bw.BipedalWalker.step(self, action)
        return self._generic_step(action)

    def _generic_step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        """``BipedalWalker.step`` for any number of leg pairs and any motor constants.

        Same operations in the same order as upstream, looped over joints; for the classic
        body it reproduces upstream's observations exactly (tested).
        """
        assert self.hull is not None, "call reset() before step()"
        spec = self.body
        joints = self.joints
        a = np.asarray(action)
        mag = np.clip(np.abs(a), 0, 1)
        sign = np.sign(a)
        torque = spec.motors_torque
        speeds = (spec.speed_hip, spec.speed_knee)
        for j, joint in enumerate(joints):
            joint.motorSpeed = float(speeds[j & 1] * sign[j])
            joint.maxMotorTorque = float(torque * mag[j])

        self.world.Step(1.0 / bw.FPS, 6 * 30, 2 * 30)

        hull = self.hull
        pos = hull.position
        vel = hull.linearVelocity
        for i, lidar in enumerate(self.lidar):
            lidar.fraction = 1.0
            lidar.p1 = pos
            lidar.p2 = (
                pos[0] + math.sin(1.5 * i / 10.0) * bw.LIDAR_RANGE,
                pos[1] - math.cos(1.5 * i / 10.0) * bw.LIDAR_RANGE,
            )
            self.world.RayCast(lidar, lidar.p1, lidar.p2)

        state = [
            hull.angle,
            2.0 * hull.angularVelocity / bw.FPS,
            0.3 * vel.x * (bw.VIEWPORT_W / bw.SCALE) / bw.FPS,
            0.3 * vel.y * (bw.VIEWPORT_H / bw.SCALE) / bw.FPS,
        ]
        legs = self.legs
        for k in range(0, len(joints), 2):
            hip, knee = joints[k], joints[k + 1]
            state += [
                hip.angle,
                hip.speed / spec.speed_hip,
                knee.angle + 1.0,
                knee.speed / spec.speed_knee,
                1.0 if legs[k + 1].ground_contact else 0.0,
            ]
        state += [lidar.fraction for lidar in self.lidar]

        self.scroll = pos.x - bw.VIEWPORT_W / bw.SCALE / 5
        shaping = 130 * pos[0] / bw.SCALE - 5.0 * abs(state[0])
        reward = 0.0 if self.prev_shaping is None else shaping - self.prev_shaping
        self.prev_shaping = shaping
        reward -= spec.joint_energy_cost * float(mag.sum())

        terminated = False
        if self.game_over or pos[0] < 0:
            reward = -100.0
            terminated = True
        if pos[0] > FINISH_X:
            terminated = True
        if self.render_mode == "human":
            self.render()
        return np.array(state, dtype=np.float32), reward, terminated, False, {}

    # ----------------------------------------------------------------------- render
    def render(self) -> np.ndarray | None:  # type: ignore[override]  # gymnasium's return type is an unbound TypeVar
        """Upstream's renderer; ``rgb_array`` works headless.

        Sets ``SDL_VIDEODRIVER=dummy`` only if unset, and only when rendering.
        """
        if self.render_mode is None:
            gym.logger.warn(
                f"{type(self).__name__}.render() called without a render_mode; "
                f"build the env with render_mode='rgb_array'"
            )
            return None
        if self.hull is None:
            raise gym.error.ResetNeeded("call reset() before render()")
        if self.render_mode == "rgb_array":
            os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        return bw.BipedalWalker.render(self)

    # ------------------------------------------------------------------ inspection
    @property
    def episode_return(self) -> float:
        """Return accumulated since the last reset."""
        return self._episode_return

    @property
    def elapsed_steps(self) -> int:
        """Steps taken since the last reset (the time limit counts them)."""
        return self._elapsed


def _range(name: str, value: Sequence[float]) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: must be a (low, high) pair of numbers, got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi < lo:
        raise ConfigError(f"{name}: must be finite with low <= high, got ({lo}, {hi})")
    return lo, hi


class StumpTracksEnv(ParametricBipedalEnv):
    """Stump Tracks (Portelas et al., CoRL 2019): walk over stumps of a given mean height and spacing.

    Task: ``(stump_height, obstacle_spacing)``. Each stump is ``max(0.05, N(height, 0.1))``
    terrain steps tall and one step wide; one starts every ``max(0.01, spacing)`` x-units
    after the start pad, on flat ground. Default box ``[0, 3] x [0, 6]``; TeachMyAgent's
    skill tests use ``height_range=(0, 9)`` ("mostly unfeasible") and ``(-3, 3)`` ("mostly
    feasible": negative means clip to 0.05, i.e. flat ground).

    Args:
        body: registered body name (``classic``, ``short``, ``quadruped``, ...) or a `BodySpec`.
        height_range: bounds of the mean stump height (terrain steps).
        spacing_range: bounds of the stump spacing (x-units).
        task: the task used until ``set_task`` is called; default is the easiest corner
            (lowest stumps, widest spacing), so a bare ``reset()`` gives a walkable track.
        max_episode_steps: time limit (teachDeepRL: 2000); ending there sets ``truncated``.
        render_mode: ``None``, ``"rgb_array"`` or ``"human"``.
    """

    def __init__(
        self,
        *,
        body: str | BodySpec = "classic",
        height_range: Sequence[float] = (0.0, 3.0),
        spacing_range: Sequence[float] = (0.0, 6.0),
        task: Sequence[float] | None = None,
        max_episode_steps: int = 2000,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(body=body, max_episode_steps=max_episode_steps, render_mode=render_mode)
        EzPickle.__init__(
            self,
            body=body,
            height_range=height_range,
            spacing_range=spacing_range,
            task=task,
            max_episode_steps=max_episode_steps,
            render_mode=render_mode,
        )
        h_lo, h_hi = _range("height_range", height_range)
        s_lo, s_hi = _range("spacing_range", spacing_range)
        self._space = Box([h_lo, s_lo], [h_hi, s_hi], names=list(STUMP_PARAM_NAMES), name="stump_tracks")
        self.stumps: np.ndarray = np.zeros((0, 3))
        """The current track's stumps, ``(x_left, x_right, height)`` rows (world units)."""
        self._default_task = self._space.task([h_lo, s_hi] if task is None else task, origin="default")

    def _build_terrain(self, task: Task) -> None:
        height, spacing = task.params
        self.stumps = stump_blocks(self.np_random, height, spacing)
        self.terrain = [self._build_flat_ground(), self._build_obstacles(boxes=self.stumps)]

    @property
    def obstacles(self) -> list[np.ndarray]:
        """The current track's stumps as ``(4, 2)`` vertex arrays (world units)."""
        return [
            np.array([(x0, GROUND_Y), (x1, GROUND_Y), (x1, GROUND_Y + h), (x0, GROUND_Y + h)])
            for x0, x1, h in self.stumps.tolist()
        ]


class HexagonTracksEnv(ParametricBipedalEnv):
    """Hexagon Tracks (Portelas et al., CoRL 2019): walk over obstacles of a parameterised shape.

    Task: 12 offsets ``(dx_0, dy_0, ..., dx_5, dy_5)`` of the 6 vertices of a hexagonal
    obstacle, in terrain steps, default box ``[0, 4]^12``; each obstacle perturbs them by
    ``N(0, 0.1)``. See `openended.envs.bipedal_terrain.hexagon_polygons` for the geometry.

    Args:
        body: registered body name or a `BodySpec`.
        offset_range: bounds of every offset (terrain steps).
        obstacle_spacing: distance between obstacle anchors (x-units); default 12 steps.
        task: the task used until ``set_task`` is called; default all zeros (small hexagons).
        max_episode_steps: time limit; ending there sets ``truncated``.
        render_mode: ``None``, ``"rgb_array"`` or ``"human"``.
    """

    PARAM_NAMES: tuple[str, ...] = tuple(f"v{i}_{axis}" for i in range(6) for axis in ("dx", "dy"))

    def __init__(
        self,
        *,
        body: str | BodySpec = "classic",
        offset_range: Sequence[float] = (0.0, 4.0),
        obstacle_spacing: float = 12 * TERRAIN_STEP,
        task: Sequence[float] | None = None,
        max_episode_steps: int = 2000,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(body=body, max_episode_steps=max_episode_steps, render_mode=render_mode)
        EzPickle.__init__(
            self,
            body=body,
            offset_range=offset_range,
            obstacle_spacing=obstacle_spacing,
            task=task,
            max_episode_steps=max_episode_steps,
            render_mode=render_mode,
        )
        lo, hi = _range("offset_range", offset_range)
        if not (isinstance(obstacle_spacing, (int, float)) and obstacle_spacing >= TERRAIN_STEP):
            raise ConfigError(
                f"obstacle_spacing: must be a number >= {TERRAIN_STEP:.4f} (one terrain step), got {obstacle_spacing!r}"
            )
        self.obstacle_spacing = float(obstacle_spacing)
        self.obstacles: list[np.ndarray] = []
        """The current track's obstacles as convex ``(k, 2)`` vertex arrays (world units)."""
        self._space = Box([lo] * 12, [hi] * 12, names=self.PARAM_NAMES, name="hexagon_tracks")
        self._default_task = self._space.task([lo] * 12 if task is None else task, origin="default")

    def _build_terrain(self, task: Task) -> None:
        self.obstacles = hexagon_polygons(self.np_random, task.array, spacing=self.obstacle_spacing)
        self.terrain = [self._build_flat_ground(), self._build_obstacles([p.tolist() for p in self.obstacles])]


class ClassicBipedalEnv(ParametricBipedalEnv):
    """gymnasium's BipedalWalker-v3 (or hardcore) terrain with one trivial task.

    For comparisons and benchmarks: the same terrain generator, reset order and step as
    ``gymnasium.make("BipedalWalker-v3")`` (with ``body="classic"`` a seeded episode is
    identical to upstream's, tested), wrapped in the task contract so that curricula and
    the runtime can treat it like any other family. ``body`` still selects an embodiment.
    """

    def __init__(
        self,
        *,
        body: str | BodySpec = "classic",
        hardcore: bool = False,
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        limit = (2000 if hardcore else 1600) if max_episode_steps is None else max_episode_steps
        super().__init__(body=body, max_episode_steps=limit, render_mode=render_mode)
        EzPickle.__init__(
            self, body=body, hardcore=hardcore, max_episode_steps=max_episode_steps, render_mode=render_mode
        )
        self.hardcore = bool(hardcore)
        value = "bipedal_walker_hardcore_v3" if hardcore else "bipedal_walker_v3"
        self._space = Discrete([value], name="bipedal_walker")
        self._default_task = self._space.task(value)

    def _build_terrain(self, task: Task) -> None:
        self._generate_terrain(self.hardcore)
