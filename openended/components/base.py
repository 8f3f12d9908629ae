"""The component contract: placement, requires / provides, lifecycle hooks, state.

A component is a plug-in for lifelong learning (a task-change detector, a replay buffer,
a regulariser, an evaluation schedule) that a run hosts without touching the framework.
Components never call each other: they publish events on the bus
(`openended.components.bus`) and share data through named stores
(`openended.components.stores`); a host (`openended.components.host`) calls their hooks.

Only the hooks a subclass overrides are called (`overridden_hooks`): a component that
overrides nothing costs nothing per episode, and only one that overrides
``on_transitions`` gets per-step traffic.

Hook order over a lifetime (each host fires the hooks of its placement)::

    on_lifetime_start
      on_block_start(block)                      train / evaluation, wake / sleep
        on_task_start(task, old_task)            the first task, and after every change
          on_episode_start(env_index, task, obs)
          on_transitions(batch)                  opt-in, batched
          on_episode_end(env_index, outcome)
        on_task_end(task, new_task)              before the next on_task_start
        on_sleep(budget)                         sleep blocks that allow learning only
      on_block_end(block)
    on_lifetime_end

>>> class Counter(Component):
...     def on_episode_end(self, *, outcome, **kw):
...         self.n = getattr(self, "n", 0) + 1
>>> Counter.overridden_hooks()
('on_episode_end',)
"""

from __future__ import annotations

import dataclasses
import enum
import time
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from openended.errors import RewardHidden
from openended.tasks import Outcome, Task

if TYPE_CHECKING:
    from openended.components.stores import StoreSpec

__all__ = [
    "Block",
    "Component",
    "ComponentConfig",
    "HOOKS",
    "HiddenOutcome",
    "Placement",
    "SleepBudget",
    "Transitions",
]


class Placement(enum.StrEnum):
    """Where a component runs: one host per placement."""

    DRIVER = "driver"  # the run loop: blocks, lifetime, evaluation schedules, checkpoints
    ENV_RUNNER = "env_runner"  # beside the envs: episodes, transitions (EnvPool, RLlib env runners)
    LEARNER = "learner"  # inside the learner: loss terms, sleep-phase updates
    ACTOR = "actor"  # a standalone process of its own
    CURRICULUM = "curriculum"  # proposes tasks: a teacher (`openended.components.teacher`)


#: The lifecycle hooks, in the order they first fire over a lifetime.
HOOKS: tuple[str, ...] = (
    "on_lifetime_start",
    "on_block_start",
    "on_task_start",
    "on_episode_start",
    "on_transitions",
    "on_episode_end",
    "on_task_end",
    "on_sleep",
    "on_block_end",
    "on_lifetime_end",
)
#: Learner-side extension points (called by the learner host, not lifecycle hooks).
LEARNER_METHODS: tuple[str, ...] = ("loss_term",)


@dataclasses.dataclass(frozen=True)
class Block:
    """One block of a lifetime: train or evaluation, wake or sleep.

    ``learning`` is whether the learner may update in it: evaluation blocks forbid it (and
    hide rewards from components), so sleep in them is skipped.
    """

    index: int
    kind: Literal["train", "evaluation"] = "train"
    subtype: Literal["wake", "sleep"] = "wake"
    task: Task | None = None  # the block's task where the scenario names one

    @property
    def learning(self) -> bool:
        """Whether learning (and so sleep) is allowed in this block."""
        return self.kind == "train"


@dataclasses.dataclass(frozen=True)
class SleepBudget:
    """How much a sleep phase may spend: gradient steps, seconds, or both (whichever ends first)."""

    steps: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if self.steps is None and self.seconds is None:
            raise ValueError("SleepBudget: give steps, seconds or both (an unbounded sleep never ends)")

    def deadline(self) -> float | None:
        """The monotonic time the sleep must end by (``None``: no time limit)."""
        return None if self.seconds is None else time.monotonic() + self.seconds

    def allows(self, steps_done: int, deadline: float | None) -> bool:
        """Whether one more step fits the budget."""
        if self.steps is not None and steps_done >= self.steps:
            return False
        return deadline is None or time.monotonic() < deadline


@dataclasses.dataclass
class Transitions:
    """A batch of env steps of one slot: arrays of equal length (``rewards`` is ``None`` when hidden)."""

    env_index: int
    task_id: str
    obs: list[Any]
    actions: list[Any]
    rewards: list[float] | None
    next_obs: list[Any]
    dones: list[bool]

    def __len__(self) -> int:
        return len(self.actions)


@dataclasses.dataclass(frozen=True)
class HiddenOutcome:
    """An `Outcome` with its reward hidden: what components get in evaluation blocks.

    Reading ``episode_return`` or ``success`` raises `RewardHidden`, so a component that
    would learn from an evaluation episode fails loudly instead of silently cheating.
    """

    task_id: str
    length: int | None
    student_id: str
    episode_id: str | None
    t: float

    @classmethod
    def of(cls, outcome: Outcome) -> HiddenOutcome:
        """``outcome`` without its return and success."""
        return cls(outcome.task_id, outcome.length, outcome.student_id, outcome.episode_id, outcome.t)

    @property
    def episode_return(self) -> float:
        """Hidden: raises `RewardHidden`."""
        raise RewardHidden(f"episode_return of task {self.task_id} is hidden during an evaluation block")

    @property
    def success(self) -> bool | None:
        """Hidden: raises `RewardHidden`."""
        raise RewardHidden(f"success of task {self.task_id} is hidden during an evaluation block")


class ComponentConfig(BaseModel):
    """Base of component configs: unknown fields are errors (a typo must not pass silently)."""

    model_config = ConfigDict(extra="forbid")


class Component:
    """Base class of every lifelong-learning component (module doc: hooks and their order).

    Subclasses set the class attributes and override any subset of the hooks; every hook
    takes keyword arguments only and must accept ``**kw`` (hosts may pass more later).

    Attributes:
        placement: which host runs it.
        requires: names other components must provide (a store or a topic), e.g. ``"replay"``.
        provides: names this component provides to others.
        Config: its pydantic config model (``extra="forbid"``).
        transition_batch: ``on_transitions`` batch length (only if it overrides that hook).
        bus: the event bus, set by the host before ``on_lifetime_start``.
        stores: the named stores, set by the host before ``on_lifetime_start``.
        store_specs: the stores it provides and how to build them (shared ones: `StoreSpec`).
    """

    placement: ClassVar[Placement] = Placement.DRIVER
    requires: ClassVar[tuple[str, ...]] = ()
    provides: ClassVar[tuple[str, ...]] = ()
    Config: ClassVar[type[ComponentConfig]] = ComponentConfig
    transition_batch: ClassVar[int] = 256

    def __init__(self, config: ComponentConfig | dict[str, Any] | None = None) -> None:
        if not isinstance(config, ComponentConfig):
            config = self.Config.model_validate(config or {})
        self.config: Any = config
        self.bus: Any = None
        self.stores: Any = None

    @classmethod
    def overridden_hooks(cls) -> tuple[str, ...]:
        """The hooks (and learner methods) this class overrides: the only ones a host calls."""
        names = HOOKS + LEARNER_METHODS
        return tuple(n for n in names if getattr(cls, n, None) is not getattr(Component, n, None))

    @classmethod
    def store_specs(cls, config: Any) -> tuple[StoreSpec, ...]:
        """The stores this component provides, built from its validated ``config``.

        Each name must be in ``provides``. A run shares such a store across processes
        where components of other placements (or several hosts) use it: it builds one
        actor from the spec and every host registers it before ``on_lifetime_start``.
        """
        return ()

    # ------------------------------------------------------------------ lifecycle hooks
    def on_lifetime_start(self, **kw: Any) -> None:
        """The run starts (or resumes: ``resumed=True`` in ``kw``)."""

    def on_block_start(self, *, block: Block, **kw: Any) -> None:
        """A block starts."""

    def on_task_start(self, *, task: Task, old_task: Task | None, **kw: Any) -> None:
        """A task starts (``old_task`` is ``None`` for the first); ``env_index`` in ``kw`` on env runners."""

    def on_episode_start(self, *, env_index: int, task: Task, **kw: Any) -> None:
        """An episode starts (``obs`` in ``kw``)."""

    def on_transitions(self, *, batch: Transitions, **kw: Any) -> None:
        """A batch of env steps (opt-in: override to receive them)."""

    def on_episode_end(self, *, env_index: int, outcome: Outcome | HiddenOutcome, **kw: Any) -> None:
        """An episode ended (in evaluation blocks ``outcome`` is a `HiddenOutcome`)."""

    def on_task_end(self, *, task: Task, new_task: Task, **kw: Any) -> None:
        """The running task ends: ``new_task`` starts next."""

    def on_sleep(self, *, budget: SleepBudget, **kw: Any) -> int:
        """A sleep phase: consolidate within ``budget``; return the steps taken."""
        return 0

    def on_block_end(self, *, block: Block, **kw: Any) -> None:
        """A block ends."""

    def on_lifetime_end(self, **kw: Any) -> None:
        """The run ends."""

    # ------------------------------------------------------------------ learner
    def loss_term(self, *, module: Any, batch: Any, fwd_out: Any, **kw: Any) -> Any:
        """An extra loss term (learner placement): a scalar tensor added to the algorithm's loss, or ``None``."""
        return None

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """JSON-able state to checkpoint (``{}``: nothing to keep)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""
