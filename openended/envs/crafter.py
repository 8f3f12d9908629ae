"""Crafter as a text-task env: achievements, counts, compositions, synonyms, impossible dummies.

Reference: OMNI (Zhang et al., ICLR 2024; ``jennyzzt/omni`` ``envs/env_{tr,trc,trs}_uni.py``)
for the task sets; Crafter (Hafner 2021, ``crafter`` 1.8.3) for the world.

Contents:
    ACHIEVEMENTS / OMNI_ACHIEVEMENTS -- Crafter's 22 achievements / the 15 OMNI keeps.
    PREREQUISITES       -- the achievement dependency graph (from Crafter's ``data.yaml``).
    SYNONYMS            -- 5 synonyms per verb (OMNI's ``trs`` setting).
    CrafterTaskSpec / parse_crafter_task -- the task grammar (pure Python, no crafter import).
    validate_crafter_task -- the feasibility validator WebRL uses.
    crafter_task_set    -- ``"tr"`` (105), ``"trc"`` (210), ``"trs"`` (630) + impossible dummies.
    bow_task_encoding   -- a bag-of-words task vector (OMNI encodes tasks this way, not as text).
    CrafterTaskEnv      -- the gymnasium env.

Task grammar (text is data: parsed with string operations only, never evaluated)::

    task      := component ( " and " component )*     # all within one episode, any order
               | component ( " then " component )*    # in this order
               | "dummy_task_" digits                 # impossible by construction
    component := verb "_" object [ "_" count ]        # count >= 1; "_1" is written without suffix
    verb      := collect | make | place | eat | defeat | wake  (or a synonym, e.g. gather, craft, put)

Examples: ``collect_wood``, ``collect_wood_3``, ``harvest_wood_3``,
``collect_wood then place_table``, ``make_wood_pickaxe and collect_drink_2``.

Success is read from Crafter's achievement counters (they count every event, unlike the
inventory, which caps at 9): a component ``(a, k)`` is done once ``a``'s counter rose by
``k`` since the episode start (``and``) or since the previous component finished
(``then``). The episode ends on success (terminated), on death (terminated, no success)
or after ``max_episode_steps`` (truncated). Why one task per episode: OMNI re-draws the
task on success or after 300 steps; one episode per task keeps ``Outcome`` per task.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from typing_extensions import override

from openended.envs.base import TaskEnvMixin
from openended.envs.dummy_tasks import dummy_tasks
from openended.errors import ConfigError, TaskNotInSpace
from openended.tasks import Discrete, Task, TextSpace

__all__ = [
    "ACHIEVEMENTS",
    "OMNI_ACHIEVEMENTS",
    "PREREQUISITES",
    "SYNONYMS",
    "CrafterTaskSpec",
    "parse_crafter_task",
    "validate_crafter_task",
    "crafter_task_set",
    "bow_task_encoding",
    "task_text",
    "CrafterTaskEnv",
]

ACHIEVEMENTS: tuple[str, ...] = (
    "collect_coal",
    "collect_diamond",
    "collect_drink",
    "collect_iron",
    "collect_sapling",
    "collect_stone",
    "collect_wood",
    "defeat_skeleton",
    "defeat_zombie",
    "eat_cow",
    "eat_plant",
    "make_iron_pickaxe",
    "make_iron_sword",
    "make_stone_pickaxe",
    "make_stone_sword",
    "make_wood_pickaxe",
    "make_wood_sword",
    "place_furnace",
    "place_plant",
    "place_stone",
    "place_table",
    "wake_up",
)
#: The 15 achievements OMNI's modified Crafter keeps (``crafter/data.yaml`` in jennyzzt/omni).
OMNI_ACHIEVEMENTS: tuple[str, ...] = (
    "collect_coal",
    "collect_diamond",
    "collect_drink",
    "collect_iron",
    "collect_stone",
    "collect_wood",
    "make_iron_pickaxe",
    "make_iron_sword",
    "make_stone_pickaxe",
    "make_stone_sword",
    "make_wood_pickaxe",
    "make_wood_sword",
    "place_furnace",
    "place_stone",
    "place_table",
)
#: Direct prerequisites (what must be achievable first), read off Crafter's data.yaml:
#: stone/coal need a wood pickaxe, iron a stone pickaxe, diamonds an iron pickaxe, making
#: needs a nearby table (and a furnace for iron tools), placing consumes the material.
PREREQUISITES: dict[str, tuple[str, ...]] = {
    "collect_wood": (),
    "collect_drink": (),
    "collect_sapling": (),
    "wake_up": (),
    "eat_cow": (),
    "defeat_zombie": (),
    "defeat_skeleton": (),
    "place_table": ("collect_wood",),
    "make_wood_pickaxe": ("place_table",),
    "make_wood_sword": ("place_table",),
    "collect_stone": ("make_wood_pickaxe",),
    "collect_coal": ("make_wood_pickaxe",),
    "place_stone": ("collect_stone",),
    "place_furnace": ("collect_stone", "place_table"),
    "make_stone_pickaxe": ("collect_stone", "place_table"),
    "make_stone_sword": ("collect_stone", "place_table"),
    "collect_iron": ("make_stone_pickaxe",),
    "make_iron_pickaxe": ("collect_iron", "collect_coal", "place_furnace"),
    "make_iron_sword": ("collect_iron", "collect_coal", "place_furnace"),
    "collect_diamond": ("make_iron_pickaxe",),
    "place_plant": ("collect_sapling",),
    "eat_plant": ("place_plant",),
}
VERBS: tuple[str, ...] = ("collect", "make", "place", "eat", "defeat", "wake")
#: Five synonyms per verb, as in OMNI's ``trs`` setting (``envs/env_utils.py`` SYNONYMS;
#: "acquire" is listed for both collect and make there, and parses as either).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "collect": ("gather", "harvest", "procure", "acquire", "amass"),
    "make": ("craft", "acquire", "build", "construct", "create"),
    "place": ("put", "deploy", "install", "putdown", "position"),
}
_VERB_OF: dict[str, tuple[str, ...]] = {v: (v,) for v in VERBS}
for _v, _syns in SYNONYMS.items():
    for _s in _syns:
        _VERB_OF[_s] = _VERB_OF.get(_s, ()) + (_v,)
_DUMMY = re.compile(r"^dummy_task_(\d{1,9})$")
_COUNT = re.compile(r"^(.*?)_(\d{1,9})$")
_CONNECTORS = (" then ", " and ")
MAX_TEXT = 512


@dataclass(frozen=True, slots=True)
class CrafterTaskSpec:
    """A parsed task.

    ``components`` are ``(achievement, count)`` with canonical names; ``verbs`` the surface
    verbs as written (synonyms kept, for grounding).
    """

    components: tuple[tuple[str, int], ...] = ()
    ordered: bool = False
    impossible: bool = False
    dummy_index: int = -1
    verbs: tuple[str, ...] = ()

    @property
    def achievements(self) -> tuple[str, ...]:
        """The canonical achievement names, in task order."""
        return tuple(a for a, _ in self.components)

    def text(self, canonical: bool = False) -> str:
        """Back to text (canonical verbs when asked): ``parse(spec.text()) == spec``."""
        if self.impossible:
            return f"dummy_task_{self.dummy_index:04d}"
        parts = []
        for (a, k), v in zip(self.components, self.verbs or (None,) * len(self.components)):
            verb, obj = a.split("_", 1)
            word = verb if canonical or v is None else v
            parts.append(f"{word}_{obj}" + (f"_{k}" if k != 1 else ""))
        return (" then " if self.ordered else " and ").join(parts)


def task_text(achievement: str, count: int = 1, verb: str | None = None) -> str:
    """``("collect_wood", 3)`` -> ``"collect_wood_3"`` (``verb`` swaps in a synonym)."""
    v, obj = achievement.split("_", 1)
    return f"{verb or v}_{obj}" + (f"_{count}" if count != 1 else "")


def _parse_component(s: str) -> tuple[str, int, str] | None:
    s = "_".join(s.split())
    count = 1
    m = _COUNT.match(s)
    if m and m.group(1):
        s, count = m.group(1), int(m.group(2))
        if count < 1:
            return None
    verb, _, obj = s.partition("_")
    if not obj:
        return None
    for canon in _VERB_OF.get(verb, ()):
        ach = f"{canon}_{obj}"
        if ach in PREREQUISITES:
            return ach, count, verb
    return None


def parse_crafter_task(text: str) -> CrafterTaskSpec | None:
    """Parse a task text; ``None`` when it is not in the grammar (never raises, never evals)."""
    if not isinstance(text, str) or not text or len(text) > MAX_TEXT:
        return None
    s = " ".join(text.strip().lower().split())
    m = _DUMMY.match(s)
    if m:
        return CrafterTaskSpec(impossible=True, dummy_index=int(m.group(1)))
    ordered = " then " in s
    if ordered and " and " in s:
        return None
    parts = s.split(" then " if ordered else " and ")
    comps, verbs = [], []
    for p in parts:
        c = _parse_component(p)
        if c is None:
            return None
        comps.append((c[0], c[1]))
        verbs.append(c[2])
    return CrafterTaskSpec(tuple(comps), ordered and len(comps) > 1, False, -1, tuple(verbs))


def validate_crafter_task(
    text: str,
    *,
    achievements: Sequence[str] = ACHIEVEMENTS,
    max_count: int = 20,
    max_components: int = 3,
    allow_impossible: bool = False,
) -> tuple[bool, str]:
    """Is this a feasible Crafter task? Returns ``(ok, reason)``; the reason says what failed.

    Checks: parses in the grammar; every achievement is one of ``achievements``; counts in
    ``1..max_count``; at most ``max_components`` components, none repeated; dummies are
    impossible (rejected unless ``allow_impossible``).
    """
    spec = parse_crafter_task(text)
    if spec is None:
        return False, "not in the Crafter task grammar"
    if spec.impossible:
        return (True, "impossible dummy (allowed)") if allow_impossible else (False, "impossible dummy task")
    allowed = set(achievements)
    if len(spec.components) > max_components:
        return False, f"{len(spec.components)} components, more than {max_components}"
    if len(set(spec.achievements)) != len(spec.achievements):
        return False, "repeats an achievement (use a count instead)"
    for a, k in spec.components:
        if a not in allowed:
            return False, f"achievement {a!r} is not in this task set's achievements"
        if not 1 <= k <= max_count:
            return False, f"count {k} for {a!r} is outside 1..{max_count}"
    return True, "ok"


def crafter_task_set(
    name: Literal["tr", "trc", "trs"] = "tr", impossible: int = 1023, achievements: Sequence[str] = OMNI_ACHIEVEMENTS
) -> list[str]:
    """OMNI's task settings as texts, real tasks first, then ``impossible`` dummies.

    * ``tr``  -- repetitive: collect tasks with counts 1-10, the others 1-5 (6x10 + 9x5 = 105).
    * ``trc`` -- ``tr`` plus every unordered pair of base achievements, ``"A and B"`` (+105).
    * ``trs`` -- every ``tr`` task written with its verb and each of 5 synonyms (105 x 6 = 630).
    """
    if name not in ("tr", "trc", "trs"):
        raise ConfigError(f"env.crafter.task_set: must be one of 'tr', 'trc', 'trs', got {name!r}")
    dummies = dummy_tasks(impossible, "env.crafter.impossible")  # bounded before anything is built
    rep = [(a, k) for a in achievements for k in range(1, (10 if a.startswith("collect_") else 5) + 1)]
    texts = [task_text(a, k) for a, k in rep]
    if name == "trc":
        texts += [f"{task_text(a)} and {task_text(b)}" for a, b in itertools.combinations(achievements, 2)]
    elif name == "trs":
        texts = []
        for a, k in rep:
            verb = a.split("_", 1)[0]
            texts += [task_text(a, k, v) for v in (verb, *SYNONYMS.get(verb, ()))]
    return texts + dummies


_BOW_DIM = len(ACHIEVEMENTS) + 2 + 11


def bow_task_encoding(text: str) -> np.ndarray:
    """Bag-of-words task vector (float32, dim 35); unparseable text gives zeros.

    Per-achievement ``min(count, 20) / 10``, an ordered flag, an impossible flag and 11 bits
    of the dummy index.

    Why not raw text: a policy needs a fixed-size task input; OMNI feeds exactly this
    kind of vector (achievement words plus dummy bits). A learned text embedding can be
    injected instead (``task_embed_fn``).
    """
    v = np.zeros(_BOW_DIM, dtype=np.float32)
    spec = parse_crafter_task(text)
    if spec is None:
        return v
    if spec.impossible:
        v[len(ACHIEVEMENTS) + 1] = 1.0
        bits = [(spec.dummy_index >> b) & 1 for b in range(11)]
        v[len(ACHIEVEMENTS) + 2 :] = bits
        return v
    for a, k in spec.components:
        v[ACHIEVEMENTS.index(a)] += min(k, 20) / 10.0  # bounded: counts above 20 read as 20
    v[len(ACHIEVEMENTS)] = float(spec.ordered)
    return v


# --------------------------------------------------------------------------------- env


def _int_pair(field: str, value: Any, minimum: int) -> tuple[int, int]:
    """``value`` as two ints, each >= ``minimum``; a `ConfigError` naming ``env.crafter.<field>`` otherwise."""
    items = list(value) if isinstance(value, (list, tuple, np.ndarray)) else []
    if len(items) != 2 or not all(_is_integral(v) for v in items):
        raise ConfigError(f"env.crafter.{field}: must be two integers like [64, 64], got {value!r}")
    pair = (int(items[0]), int(items[1]))
    if min(pair) < minimum:
        raise ConfigError(f"env.crafter.{field}: each value must be >= {minimum} (less crashes Crafter), got {value!r}")
    return pair


def _is_integral(v: Any) -> bool:
    if isinstance(v, (bool, np.bool_)):
        return False
    if isinstance(v, (int, np.integer)):
        return True
    return isinstance(v, (float, np.floating)) and bool(np.isfinite(v)) and float(v).is_integer()


class CrafterTaskEnv(TaskEnvMixin, gym.Env):
    """Crafter with one text task per episode; ``set_task`` applies at the next reset.

    Observation: ``{"image": uint8 (H, W, 3), "task": task index | task vector}``.
    Actions: Crafter's 17 discrete actions. Reward: 1 on success (``reward="sparse"``) or
    the rise in completed task units (``"progress"``, sums to 1 on success).

    Args:
        task_set: ``"tr"``, ``"trc"`` or ``"trs"`` (OMNI's settings).
        impossible: number of impossible dummy tasks appended (OMNI: 1,023).
        tasks: explicit task texts instead of a named set.
        space: ``"discrete"`` (the listed tasks only) or ``"text"`` (any task in the grammar;
            WebRL-generated tasks), seeded with the listed tasks.
        area, view, size: Crafter world area, view grid and image size. ``area=(32, 32)``
            resets ~4x faster than the default (64, 64).
        max_episode_steps: step limit per task episode (OMNI re-draws after 300 steps).
        task_obs: ``"index"`` (Discrete only), ``"bow"``, or ``"auto"`` (index for discrete,
            bow for text); ignored when ``task_embed_fn`` is given.
        task_embed_fn, task_embed_dim: ``text -> vector`` for the task observation.
        reward: ``"sparse"`` or ``"progress"``.
        seed: Crafter world seed used until ``reset(seed=...)`` gives one.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        task_set: Literal["tr", "trc", "trs"] = "tr",
        impossible: int = 1023,
        tasks: Sequence[str] | None = None,
        space: Literal["discrete", "text"] = "discrete",
        area: Sequence[int] = (64, 64),
        view: Sequence[int] = (9, 9),
        size: Sequence[int] = (64, 64),
        max_episode_steps: int = 300,
        task_obs: Literal["auto", "index", "bow"] = "auto",
        task_embed_fn: Callable[[str], np.ndarray] | None = None,
        task_embed_dim: int | None = None,
        reward: Literal["sparse", "progress"] = "sparse",
        seed: int = 0,
        render_mode: str | None = None,
    ) -> None:
        import crafter  # lazy: the family loads only on use

        texts = list(tasks) if tasks is not None else crafter_task_set(task_set, impossible)
        bad = [t for t in texts if parse_crafter_task(t) is None]
        if bad:
            raise ConfigError(f"env.crafter.tasks: {len(bad)} task(s) not in the Crafter grammar, e.g. {bad[0][:60]!r}")
        area, view, size = _int_pair("area", area, 1), _int_pair("view", view, 1), _int_pair("size", size, 32)
        inventory_rows = math.ceil(len(crafter.constants.items) / view[0])
        if view[1] <= inventory_rows:
            raise ConfigError(
                f"env.crafter.view: {view[0]} columns need {inventory_rows} inventory rows below a local view of at "
                f"least one row: the second value must be > {inventory_rows}, got {view[1]} (default (9, 9))"
            )
        if max_episode_steps < 1:
            raise ConfigError(f"env.crafter.max_episode_steps: must be >= 1, got {max_episode_steps}")
        if reward not in ("sparse", "progress"):
            raise ConfigError(f"env.crafter.reward: must be 'sparse' or 'progress', got {reward!r}")
        if space == "discrete":
            self._space = Discrete(texts, name="crafter")
        elif space == "text":
            self._space = TextSpace(texts, max_length=MAX_TEXT, name="crafter")
        else:
            raise ConfigError(f"env.crafter.space: must be 'discrete' or 'text', got {space!r}")
        self._default_task = (
            self._space.task(texts[0]) if space == "discrete" else self._space.task(texts[0], origin="seed")
        )
        self.render_mode = render_mode
        self._max_steps = int(max_episode_steps)
        self._reward_mode = reward
        self._env = crafter.Env(area=area, view=view, size=size, reward=False, length=None, seed=int(seed))
        if task_embed_fn is not None:
            if task_embed_dim is None:
                task_embed_dim = int(np.asarray(task_embed_fn(texts[0])).reshape(-1).size)
            self._encode: Callable[[str], Any] = lambda t: np.asarray(task_embed_fn(t), dtype=np.float32).reshape(-1)
            task_space: spaces.Space = spaces.Box(-np.inf, np.inf, (int(task_embed_dim),), np.float32)
        else:
            mode = task_obs if task_obs != "auto" else ("index" if space == "discrete" else "bow")
            if mode == "index":
                disc = self._space
                if not isinstance(disc, Discrete):  # space='text'
                    raise ConfigError("env.crafter.task_obs: 'index' needs space='discrete'; use 'bow' for text")
                self._encode = lambda t: np.int64(disc.index(t))
                task_space = spaces.Discrete(disc.n)
            elif mode == "bow":
                self._encode = bow_task_encoding
                task_space = spaces.Box(0.0, 2.0, (_BOW_DIM,), np.float32)
            else:
                raise ConfigError(f"env.crafter.task_obs: must be 'auto', 'index' or 'bow', got {task_obs!r}")
        self.observation_space = spaces.Dict(
            {
                # Crafter renders (size[0], size[1]) then transposes: rows = size[1].
                "image": spaces.Box(0, 255, (int(size[1]), int(size[0]), 3), np.uint8),
                "task": task_space,
            }
        )
        self.action_space = spaces.Discrete(len(crafter.constants.actions))
        self._spec: CrafterTaskSpec | None = None
        self._task_value: Any = None
        self._steps = 0
        self._stage = 0
        self._base: dict[str, int] = {}
        self._done_units = 0

    # --------------------------------------------------------------- task plumbing
    def set_task(self, task: Task) -> None:
        """Queue ``task`` for the next reset; it must parse in the Crafter grammar."""
        super().set_task(task)
        if parse_crafter_task(task.text or "") is None:
            self._pending_task = None
            raise TaskNotInSpace(
                f"CrafterTaskEnv: task text {(task.text or '')[:60]!r} is not in the Crafter "
                "task grammar (e.g. 'collect_wood_3', 'collect_wood then place_table')"
            )

    def _obs(self, image: np.ndarray) -> dict:
        return {"image": image, "task": self._task_value}

    def _units(self) -> int:
        return sum(k for _, k in self._spec.components) if self._spec and not self._spec.impossible else 0

    def _progress(self, counters: dict[str, int]) -> tuple[int, bool]:
        """(completed units, success) from the achievement counters."""
        spec = self._spec
        if spec is None or spec.impossible:
            return 0, False
        if not spec.ordered:
            done = sum(min(counters.get(a, 0) - self._base.get(a, 0), k) for a, k in spec.components)
            return done, done >= self._units()
        # ordered: advance through the stages; a stage's baseline is set when it starts
        while self._stage < len(spec.components):
            a, k = spec.components[self._stage]
            if counters.get(a, 0) - self._base.get(a, 0) >= k:
                self._stage += 1
                if self._stage < len(spec.components):
                    nxt = spec.components[self._stage][0]
                    self._base[nxt] = counters.get(nxt, 0)
            else:
                break
        done = sum(k for _, k in spec.components[: self._stage])
        if self._stage < len(spec.components):
            a, k = spec.components[self._stage]
            done += max(0, min(counters.get(a, 0) - self._base.get(a, 0), k))
        return done, self._stage >= len(spec.components)

    # ------------------------------------------------------------------- gym API
    @override
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        task = self._task_for_reset(options)
        if seed is not None:
            # Crafter seeds world i from hash((seed, episode)): restart the episode count so
            # reset(seed=s) is reproducible, as gymnasium requires.
            self._env._seed = int(seed)
            self._env._episode = 0
        image = self._env.reset()
        self._spec = parse_crafter_task(task.text or "")
        self._task_value = self._encode(task.text or "")
        self._steps = 0
        self._stage = 0
        counters = dict(self._env._player.achievements)
        self._base = counters  # a new player starts at zero; kept general
        self._done_units = 0
        return self._obs(image), {"task_id": task.id, "task": task.text}

    @override
    def step(self, action: Any) -> tuple[dict, float, bool, bool, dict]:
        if self._spec is None:
            raise gym.error.ResetNeeded("CrafterTaskEnv: call reset() before step()")
        image, _, dead, info = self._env.step(int(action))
        self._steps += 1
        done_units, success = self._progress(info["achievements"])
        if self._reward_mode == "sparse":
            reward = 1.0 if success else 0.0
        else:
            total = max(self._units(), 1)
            reward = (done_units - self._done_units) / total
        self._done_units = done_units
        terminated = bool(success or dead)
        truncated = bool(not terminated and self._steps >= self._max_steps)
        out = {
            "task_id": self._current_task.id if self._current_task else None,
            "achievements": info["achievements"],
            "inventory": info["inventory"],
            "progress": done_units / max(self._units(), 1),
        }
        if terminated or truncated:
            out["success"] = bool(success)
        return self._obs(image), float(reward), terminated, truncated, out

    @override
    def render(self) -> np.ndarray | None:  # type: ignore[override]  # gymnasium's return type is an unbound TypeVar
        if self.render_mode == "rgb_array":
            return self._env.render()
        return None

    def close(self) -> None:
        """Crafter holds no external resources; nothing to release."""
