"""Walker embodiments for the BipedalWalker family, and a registry users can extend.

Contents:
    BodySpec       -- the geometry, mass and motors of one walker (pixels, as upstream).
    register_body  -- add a named body (``register_body("long_legs", BodySpec(...))``).
    get_body       -- a registered body by name (unknown names answer "Did you mean ...?").
    list_bodies    -- registered names.
    build_body     -- create a body's Box2D hull, legs and joints in a world.

Built-in bodies (dimensions follow teachDeepRL's embodiments; the code is our own):

* ``classic``   -- gymnasium's BipedalWalker-v3 biped, built from gymnasium's own constants
  (hull polygon, 8x34 px legs, torque 80). Steps through gymnasium's ``BipedalWalker.step``.
* ``short``     -- the same biped with half-length legs (8x17 px): a weaker student.
* ``quadruped`` -- a 96 px hull carried by two leg pairs (front and back, 4 legs,
  8 joints) with longer 10x51 px legs and 300 torque: a stronger student with a bigger
  action space (8) and observation (34).

Why pixels: gymnasium's constants are in pixels divided by ``SCALE``; keeping specs in
the same unit makes a custom body directly comparable to the upstream numbers.

Why the energy cost is normalised (``energy_cost``): upstream charges
``0.00035 * MOTORS_TORQUE`` per unit of |action| per joint. Scaling that with torque and
joint count would make the quadruped pay ~7x the classic energy bill, so the shared
mastery threshold (return > 230) would mean different things per body. By default a body
pays the upstream per-step budget spread over its joints (``0.028 * 4 / n_joints``);
``classic`` and ``short`` therefore pay exactly upstream's cost.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium.envs.box2d import bipedal_walker as bw

from openended.errors import ConfigError
from openended.registry import normalize_name, unknown_name_error

__all__ = ["BodySpec", "register_body", "get_body", "list_bodies", "build_body", "UPSTREAM_ENERGY_COST"]

UPSTREAM_ENERGY_COST: float = 0.00035 * bw.MOTORS_TORQUE
"""Upstream's reward cost per unit of |action| per joint (4 joints)."""

_BODIES: dict[str, BodySpec] = {}


@dataclass(frozen=True)
class BodySpec:
    """Geometry and motors of a walker. Lengths are in pixels (divided by ``SCALE`` = 30).

    A body has one or more *leg pairs*; each pair is two legs (upper + lower segment, a
    hip and a knee joint) hanging from the hull at ``leg_anchors_x``. Observation per leg
    is upstream's (hip angle, hip speed, knee angle + 1, knee speed, foot contact).
    """

    hull_poly: tuple[tuple[float, float], ...] = tuple((float(x), float(y)) for x, y in bw.HULL_POLY)
    """Hull polygon vertices (px), convex, counter-clockwise as upstream."""
    hull_density: float = 5.0
    """Hull density; a heavier hull needs more torque to carry."""
    leg_w: float = bw.LEG_W * bw.SCALE
    """Upper leg width (px); the lower leg is ``lower_w_ratio`` as wide."""
    leg_h: float = bw.LEG_H * bw.SCALE
    """Length of each leg segment (px); the walker stands about ``2 * leg_h`` tall."""
    lower_w_ratio: float = 0.8
    """Lower-leg width relative to the upper leg (upstream: 0.8)."""
    leg_density: float = 1.0
    """Leg density."""
    leg_down: float = bw.LEG_DOWN * bw.SCALE
    """Vertical offset (px) of the hip anchor below the hull centre (upstream: -8)."""
    leg_anchors_x: tuple[float, ...] = (0.0,)
    """Horizontal hip positions (px) on the hull, one per leg pair, back to front."""
    motors_torque: float = float(bw.MOTORS_TORQUE)
    """Maximum motor torque at |action| = 1."""
    speed_hip: float = float(bw.SPEED_HIP)
    """Hip motor speed at |action| > 0 (rad/s)."""
    speed_knee: float = float(bw.SPEED_KNEE)
    """Knee motor speed at |action| > 0 (rad/s)."""
    hip_limits: tuple[float, float] = (-0.8, 1.1)
    """Hip joint angle limits (rad)."""
    knee_limits: tuple[float, float] = (-1.6, -0.1)
    """Knee joint angle limits (rad)."""
    energy_cost: float | None = None
    """Reward cost per unit |action| per joint; ``None`` = ``UPSTREAM_ENERGY_COST * 4 / n_joints``."""
    description: str = ""
    """One line for docs and ``list_bodies``."""

    def __post_init__(self) -> None:
        # Normalise sequences to tuples of floats: specs are hashable (fixture cache) and compare by value.
        object.__setattr__(self, "hull_poly", tuple((float(x), float(y)) for x, y in self.hull_poly))
        object.__setattr__(self, "leg_anchors_x", tuple(float(x) for x in self.leg_anchors_x))
        object.__setattr__(self, "hip_limits", tuple(float(x) for x in self.hip_limits))
        object.__setattr__(self, "knee_limits", tuple(float(x) for x in self.knee_limits))
        if len(self.hull_poly) < 3 or len(self.hull_poly) > 8:
            raise ConfigError(f"BodySpec.hull_poly: needs 3 to 8 vertices (Box2D limit), got {len(self.hull_poly)}")
        for name in (
            "hull_density",
            "leg_w",
            "leg_h",
            "lower_w_ratio",
            "leg_density",
            "motors_torque",
            "speed_hip",
            "speed_knee",
        ):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ConfigError(f"BodySpec.{name}: must be a finite number > 0, got {v!r}")
        if not self.leg_anchors_x:
            raise ConfigError("BodySpec.leg_anchors_x: needs at least one leg pair, got ()")
        if self.energy_cost is not None and not (math.isfinite(self.energy_cost) and self.energy_cost >= 0):
            raise ConfigError(f"BodySpec.energy_cost: must be >= 0 or None, got {self.energy_cost!r}")

    # ------------------------------------------------------------------ derived sizes
    @property
    def n_legs(self) -> int:
        """Legs (two per leg pair)."""
        return 2 * len(self.leg_anchors_x)

    @property
    def n_joints(self) -> int:
        """Joints: a hip and a knee per leg."""
        return 2 * self.n_legs

    @property
    def action_dim(self) -> int:
        """One motor action per joint."""
        return self.n_joints

    @property
    def obs_dim(self) -> int:
        """Hull (4) + 5 per leg + 10 lidar rays."""
        return 4 + 5 * self.n_legs + 10

    @property
    def joint_energy_cost(self) -> float:
        """Reward cost per unit |action| per joint: ``energy_cost``, or upstream's spread over the joints."""
        return UPSTREAM_ENERGY_COST * 4 / self.n_joints if self.energy_cost is None else float(self.energy_cost)

    @property
    def upstream_step_compatible(self) -> bool:
        """Whether gymnasium's own ``BipedalWalker.step`` computes exactly this body's step.

        Upstream hard-codes 4 joints, torque 80, its motor speeds and its energy cost; a
        body matching those steps through the upstream code path (no extra per-step cost).
        """
        return (
            self.n_joints == 4
            and self.motors_torque == bw.MOTORS_TORQUE
            and self.speed_hip == bw.SPEED_HIP
            and self.speed_knee == bw.SPEED_KNEE
            and self.joint_energy_cost == UPSTREAM_ENERGY_COST
        )

    @property
    def height(self) -> float:
        """Standing height of the hip above the feet (world units), used to place the body."""
        return 2 * self.leg_h / bw.SCALE

    def observation_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Observation ``low``/``high`` arrays laid out as upstream, repeated per leg."""
        hull_lo, hull_hi = [-math.pi, -5.0, -5.0, -5.0], [math.pi, 5.0, 5.0, 5.0]
        leg_lo, leg_hi = [-math.pi, -5.0, -math.pi, -5.0, -0.0], [math.pi, 5.0, math.pi, 5.0, 5.0]
        low = np.array(hull_lo + leg_lo * self.n_legs + [-1.0] * 10, dtype=np.float32)
        high = np.array(hull_hi + leg_hi * self.n_legs + [1.0] * 10, dtype=np.float32)
        return low, high

    def fixtures(self) -> tuple[Any, Any, Any]:
        """(hull, upper leg, lower leg) fixture defs, built once per spec.

        A spec with upstream's geometry gets gymnasium's own module-level fixture defs,
        so the classic body is upstream's body object for object.
        """
        return _fixture_defs(self)


@functools.lru_cache(maxsize=64)
def _fixture_defs(spec: BodySpec) -> tuple[Any, Any, Any]:
    if (
        spec.hull_poly == tuple(tuple(p) for p in bw.HULL_POLY)
        and spec.hull_density == 5.0
        and spec.leg_w == bw.LEG_W * bw.SCALE
        and spec.leg_h == bw.LEG_H * bw.SCALE
        and spec.lower_w_ratio == 0.8
        and spec.leg_density == 1.0
    ):
        return bw.HULL_FD, bw.LEG_FD, bw.LOWER_FD
    s = bw.SCALE
    hull = bw.fixtureDef(
        shape=bw.polygonShape(vertices=[(x / s, y / s) for x, y in spec.hull_poly]),
        density=spec.hull_density,
        friction=0.1,
        categoryBits=0x0020,
        maskBits=0x001,
        restitution=0.0,
    )
    w, h = spec.leg_w / s, spec.leg_h / s
    upper = bw.fixtureDef(
        shape=bw.polygonShape(box=(w / 2, h / 2)),
        density=spec.leg_density,
        restitution=0.0,
        categoryBits=0x0020,
        maskBits=0x001,
    )
    lower = bw.fixtureDef(
        shape=bw.polygonShape(box=(spec.lower_w_ratio * w / 2, h / 2)),
        density=spec.leg_density,
        restitution=0.0,
        categoryBits=0x0020,
        maskBits=0x001,
    )
    return hull, upper, lower


def build_body(spec: BodySpec, world: Any, init_x: float, init_y: float) -> tuple[Any, list[Any], list[Any]]:
    """Create the hull, legs and joints of ``spec`` at ``(init_x, init_y)``.

    Returns ``(hull, legs, joints)`` in upstream's order: per leg, the upper segment then
    the lower one (``legs[2k + 1]`` is the foot segment that reports ground contact), and
    per leg the hip joint then the knee joint. The leg-building loop mirrors gymnasium's
    ``BipedalWalker.reset`` for one pair and repeats it per anchor.
    """
    s = bw.SCALE
    hull_fd, upper_fd, lower_fd = spec.fixtures()
    leg_h, leg_down = spec.leg_h / s, spec.leg_down / s
    hull = world.CreateDynamicBody(position=(init_x, init_y), fixtures=hull_fd)
    hull.color1 = (127, 51, 229)
    hull.color2 = (76, 76, 127)
    legs: list[Any] = []
    joints: list[Any] = []
    for anchor_px in spec.leg_anchors_x:
        ax = anchor_px / s
        for i in (-1, +1):
            leg = world.CreateDynamicBody(
                position=(init_x + ax, init_y - leg_h / 2 - leg_down), angle=(i * 0.05), fixtures=upper_fd
            )
            leg.color1 = (153 - i * 25, 76 - i * 25, 127 - i * 25)
            leg.color2 = (102 - i * 25, 51 - i * 25, 76 - i * 25)
            rjd = bw.revoluteJointDef(
                bodyA=hull,
                bodyB=leg,
                localAnchorA=(ax, leg_down),
                localAnchorB=(0, leg_h / 2),
                enableMotor=True,
                enableLimit=True,
                maxMotorTorque=spec.motors_torque,
                motorSpeed=i,
                lowerAngle=spec.hip_limits[0],
                upperAngle=spec.hip_limits[1],
            )
            legs.append(leg)
            joints.append(world.CreateJoint(rjd))
            lower = world.CreateDynamicBody(
                position=(init_x + ax, init_y - leg_h * 3 / 2 - leg_down), angle=(i * 0.05), fixtures=lower_fd
            )
            lower.color1 = (153 - i * 25, 76 - i * 25, 127 - i * 25)
            lower.color2 = (102 - i * 25, 51 - i * 25, 76 - i * 25)
            rjd = bw.revoluteJointDef(
                bodyA=leg,
                bodyB=lower,
                localAnchorA=(0, -leg_h / 2),
                localAnchorB=(0, leg_h / 2),
                enableMotor=True,
                enableLimit=True,
                maxMotorTorque=spec.motors_torque,
                motorSpeed=1,
                lowerAngle=spec.knee_limits[0],
                upperAngle=spec.knee_limits[1],
            )
            lower.ground_contact = False
            legs.append(lower)
            joints.append(world.CreateJoint(rjd))
    return hull, legs, joints


# ------------------------------------------------------------------------- registry
def register_body(name: str, spec: BodySpec, *, overwrite: bool = False) -> None:
    """Register ``spec`` under ``name`` (case-insensitive; ``-`` equals ``_``)."""
    if not isinstance(spec, BodySpec):
        raise ConfigError(f"register_body({name!r}): spec must be a BodySpec, got {type(spec).__name__}")
    key = normalize_name(name)
    if key in _BODIES and not overwrite and _BODIES[key] != spec:
        raise ConfigError(f"body {key!r} is already registered; pass overwrite=True to replace it")
    _BODIES[key] = spec


def get_body(body: str | BodySpec) -> BodySpec:
    """A `BodySpec` by registered name (or the spec itself, passed through)."""
    if isinstance(body, BodySpec):
        return body
    key = normalize_name(body)
    if key not in _BODIES:
        raise unknown_name_error("body", body, list(_BODIES))
    return _BODIES[key]


def list_bodies() -> list[str]:
    """Registered body names, sorted."""
    return sorted(_BODIES)


# Upstream's hull outline stretched from 64 to 96 px wide (nose kept at the front).
_QUADRUPED_HULL = ((-48.0, 9.0), (20.0, 9.0), (48.0, 1.0), (48.0, -8.0), (-48.0, -8.0))


register_body("classic", BodySpec(description="gymnasium BipedalWalker-v3 biped (legs 8x34 px, torque 80)"))
register_body("short", BodySpec(leg_h=17.0, description="classic biped with half-length legs (8x17 px)"))
register_body(
    "quadruped",
    BodySpec(
        hull_poly=_QUADRUPED_HULL,
        hull_density=6.0,
        leg_w=10.0,
        leg_h=51.0,
        leg_anchors_x=(-34.0, 34.0),
        motors_torque=300.0,
        description="96 px hull on 2 leg pairs (legs 10x51 px, torque 300, 8 joints)",
    ),
)
