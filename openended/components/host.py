"""Hosts: one per placement, ordering components and fanning hooks out to them.

Contents:
    plan_components -- checks requires / provides over all components (a missing provider
                       or a cycle is a `ConfigError` before anything starts) and returns
                       each placement's components in dependency order.
    ComponentHost   -- fans hooks out to the components of one placement (only to those
                       that override a hook), hides rewards in evaluation blocks, skips
                       sleep where the block forbids learning, keeps state for checkpoints,
                       and turns the episode host's callbacks into component hooks
                       (`ComponentHost.episode_hooks`).

Ordering: a component that provides a name runs before every component (of the same
placement) that requires it; otherwise the configured order is kept. A requirement met by
a component of another placement is fine (a store the driver provides, a topic the env
runners publish); one nobody provides is not.

Reward hiding: during an evaluation block a component's ``on_episode_end`` gets a
`HiddenOutcome` (reading its return or success raises `RewardHidden`) and no env ``info``,
and ``on_transitions`` batches have ``rewards=None``: evaluation measures what was learned,
it must not teach.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from openended.components.base import HOOKS, Block, Component, HiddenOutcome, Placement, SleepBudget, Transitions
from openended.components.bus import EventBus
from openended.components.stores import Stores
from openended.errors import ConfigError
from openended.tasks import Outcome, Task

__all__ = ["ComponentHost", "plan_components", "plan_indices"]


Plannable = Component | type[Component]


def _label(i: int, c: Plannable) -> str:
    cls = c if isinstance(c, type) else type(c)
    return f"components[{i}] ({cls.__name__})"


def plan_components(components: Sequence[Plannable]) -> dict[Placement, list[Any]]:
    """Each placement's components in dependency order; `ConfigError` on a missing provider or a cycle.

    Works on instances or on classes (the config check plans classes, before anything is built).
    """
    return {p: [components[i] for i in idx] for p, idx in plan_indices(components).items()}


def plan_indices(components: Sequence[Plannable]) -> dict[Placement, list[int]]:
    """`plan_components` as positions in ``components``."""
    providers: dict[str, list[int]] = {}
    for i, c in enumerate(components):
        for name in c.provides:
            providers.setdefault(name, []).append(i)
    for i, c in enumerate(components):
        for name in c.requires:
            if name not in providers:
                raise ConfigError(
                    f"{_label(i, c)} requires {name!r}, which no configured component provides; "
                    f"add a component that provides it (provided: {sorted(providers) or 'nothing'})"
                )
    out: dict[Placement, list[int]] = {}
    for placement in Placement:
        idx = [i for i, c in enumerate(components) if c.placement == placement]
        if idx:
            out[placement] = _topo_order(components, idx, providers)
    return out


def _topo_order(components: Sequence[Plannable], idx: list[int], providers: dict[str, list[int]]) -> list[int]:
    """``idx`` ordered so providers come first (stable: config order otherwise); a cycle is a `ConfigError`."""
    members = set(idx)
    deps = {
        i: sorted({p for n in components[i].requires for p in providers[n] if p in members and p != i}) for i in idx
    }
    order: list[int] = []
    state: dict[int, int] = {}  # 1 visiting, 2 done

    def visit(i: int, path: list[int]) -> None:
        if state.get(i) == 2:
            return
        if state.get(i) == 1:
            cycle = path[path.index(i) :] + [i]
            names = " -> ".join(_label(j, components[j]) for j in cycle)
            raise ConfigError(f"components: dependency cycle {names}; break it by removing one requires")
        state[i] = 1
        for d in deps[i]:
            visit(d, path + [i])
        state[i] = 2
        order.append(i)

    for i in idx:
        visit(i, [])
    return order


class ComponentHost:
    """Fans the lifecycle hooks out to the components of one placement (module doc).

    Args:
        components: this placement's components (``plan_components`` orders them).
        bus: the event bus (a fresh in-process one by default).
        stores: the named stores (empty by default).
        placement: names the host in messages.
    """

    def __init__(
        self,
        components: Iterable[Component],
        *,
        bus: EventBus | None = None,
        stores: Stores | None = None,
        placement: Placement | str = "local",
    ) -> None:
        self.components = list(components)
        self.bus = bus if bus is not None else EventBus()
        self.stores = stores if stores is not None else Stores()
        self.placement = placement
        for c in self.components:
            c.bus, c.stores = self.bus, self.stores
        self._calls: dict[str, list[Callable[..., Any]]] = {
            h: [getattr(c, h) for c in self.components if h in c.overridden_hooks()] for h in HOOKS + ("loss_term",)
        }
        self.block: Block | None = None
        self.sleeps_skipped = 0
        self.sleep_steps = 0
        self._batch = min(
            (c.transition_batch for c in self.components if "on_transitions" in c.overridden_hooks()), default=0
        )
        self._buffers: dict[int, _SlotBuffer] = {}

    def wants(self, hook: str) -> bool:
        """Whether any component overrides ``hook``."""
        return bool(self._calls.get(hook))

    @property
    def hiding(self) -> bool:
        """Whether rewards are hidden now (an evaluation block is running)."""
        return self.block is not None and self.block.kind == "evaluation"

    def _fire(self, hook: str, **kw: Any) -> None:
        for fn in self._calls[hook]:
            fn(**kw)

    # ------------------------------------------------------------------ lifetime / blocks / tasks
    def lifetime_start(self, **kw: Any) -> None:
        """Fire ``on_lifetime_start``."""
        self._fire("on_lifetime_start", **kw)

    def lifetime_end(self, **kw: Any) -> None:
        """Fire ``on_lifetime_end``."""
        self._fire("on_lifetime_end", **kw)

    def block_start(self, block: Block, **kw: Any) -> None:
        """Enter ``block`` (rewards hidden from now on if it is an evaluation block); fire ``on_block_start``."""
        self.block = block
        self._fire("on_block_start", block=block, **kw)

    def block_end(self, **kw: Any) -> None:
        """Fire ``on_block_end`` for the running block, then leave it."""
        if self.block is None:
            raise ConfigError(f"{self.placement} host: block_end without a block_start")
        self._fire("on_block_end", block=self.block, **kw)
        self.block = None

    def task_start(self, task: Task, old_task: Task | None = None, **kw: Any) -> None:
        """Fire ``on_task_start``."""
        self._fire("on_task_start", task=task, old_task=old_task, **kw)

    def task_end(self, task: Task, new_task: Task, **kw: Any) -> None:
        """Fire ``on_task_end``."""
        self._fire("on_task_end", task=task, new_task=new_task, **kw)

    def sleep(self, budget: SleepBudget, **kw: Any) -> int:
        """Run the components' sleep within ``budget``; skipped (0 steps) where the block forbids learning."""
        if self.block is not None and not self.block.learning:
            self.sleeps_skipped += 1
            return 0
        steps = 0
        for fn in self._calls["on_sleep"]:
            steps += int(fn(budget=budget, **kw) or 0)
        self.sleep_steps += steps
        return steps

    # ------------------------------------------------------------------ episodes
    def episode_start(self, env_index: int, task: Task, **kw: Any) -> None:
        """Fire ``on_episode_start``."""
        self._fire("on_episode_start", env_index=env_index, task=task, **kw)

    def episode_end(self, env_index: int, outcome: Outcome, **kw: Any) -> None:
        """Flush the slot's transitions, then fire ``on_episode_end`` (rewards hidden in evaluation blocks)."""
        if self._batch:
            self._flush(env_index)
        shown: Outcome | HiddenOutcome = outcome
        if self.hiding:
            shown = HiddenOutcome.of(outcome)
            kw.pop("info", None)  # the env's info may carry the reward too
        self._fire("on_episode_end", env_index=env_index, outcome=shown, **kw)

    def transition(
        self, env_index: int, task: Task, obs: Any, action: Any, reward: float, next_obs: Any, done: bool
    ) -> None:
        """Buffer one env step; ``on_transitions`` gets full batches (and the rest at episode end)."""
        buf = self._buffers.get(env_index)
        if buf is None or buf.task_id != task.id:
            if buf is not None:
                self._flush(env_index)
            buf = self._buffers[env_index] = _SlotBuffer(task.id)
        buf.add(obs, action, reward, next_obs, done)
        if len(buf.actions) >= self._batch:
            self._flush(env_index)

    def _flush(self, env_index: int) -> None:
        buf = self._buffers.get(env_index)
        if buf is None or not buf.actions:
            return
        batch = Transitions(
            env_index, buf.task_id, buf.obs, buf.actions, None if self.hiding else buf.rewards, buf.next_obs, buf.dones
        )
        self._buffers[env_index] = _SlotBuffer(buf.task_id)
        self._fire("on_transitions", batch=batch)

    # ------------------------------------------------------------------ learner
    def loss_terms(self, **kw: Any) -> list[Any]:
        """Every component's ``loss_term`` that is not ``None`` (learner placement)."""
        out = []
        for fn in self._calls["loss_term"]:
            term = fn(**kw)
            if term is not None:
                out.append(term)
        return out

    # ------------------------------------------------------------------ episode host adapter
    def episode_hooks(self) -> Any:
        """An `EpisodeHooks` object for `openended.runtime.episodes.EpisodeHost` (``None`` if no hook is wanted).

        Only the callbacks some component needs are defined, so an episode host with
        components that override nothing stays as cheap as one without.
        """
        wants_task = self.wants("on_task_start") or self.wants("on_task_end")
        wants_start = self.wants("on_episode_start")
        wants_end = self.wants("on_episode_end") or self._batch > 0
        if not (wants_task or wants_start or wants_end or self._batch):
            return None
        return _EpisodeAdapter(self, wants_task, wants_start, wants_end, self._batch > 0)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Each component's state, keyed by position and class (a config change is caught on load)."""
        return {f"{i}:{type(c).__name__}": c.state_dict() for i, c in enumerate(self.components)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned; a component that is not in it keeps its fresh state."""
        keys = {f"{i}:{type(c).__name__}": c for i, c in enumerate(self.components)}
        unknown = sorted(set(state) - set(keys))
        if unknown:
            raise ConfigError(
                f"{self.placement} components: the checkpoint has state for {unknown}, which the configured "
                f"components ({sorted(keys)}) do not match; resume with the components the run started with"
            )
        for key, c in keys.items():
            if key in state:
                c.load_state_dict(state[key])


@dataclasses.dataclass
class _SlotBuffer:
    task_id: str
    obs: list[Any] = dataclasses.field(default_factory=list)
    actions: list[Any] = dataclasses.field(default_factory=list)
    rewards: list[float] = dataclasses.field(default_factory=list)
    next_obs: list[Any] = dataclasses.field(default_factory=list)
    dones: list[bool] = dataclasses.field(default_factory=list)

    def add(self, obs: Any, action: Any, reward: float, next_obs: Any, done: bool) -> None:
        self.obs.append(obs)
        self.actions.append(action)
        self.rewards.append(float(reward))
        self.next_obs.append(next_obs)
        self.dones.append(bool(done))


class _EpisodeAdapter:
    """The episode host's callbacks, mapped to component hooks (only the wanted ones are defined)."""

    def __init__(self, host: ComponentHost, task: bool, start: bool, end: bool, steps: bool) -> None:
        self.host = host
        if task:
            self.task_change = self._task_change
        if start:
            self.episode_start = self._episode_start
        if end:
            self.episode_end = self._episode_end
        if steps:
            self.transition = self._transition

    def _task_change(self, *, env_index: int, old_task: Task | None, new_task: Task, **kw: Any) -> None:
        if old_task is not None:
            self.host.task_end(old_task, new_task, env_index=env_index)
        self.host.task_start(new_task, old_task, env_index=env_index)

    def _episode_start(self, *, env_index: int, task: Task, **kw: Any) -> None:
        self.host.episode_start(env_index, task, obs=kw.get("obs"))

    def _episode_end(self, *, env_index: int, outcome: Outcome, **kw: Any) -> None:
        self.host.episode_end(env_index, outcome, info=kw.get("info"))

    def _transition(
        self, *, env_index: int, task: Task, obs: Any, action: Any, reward: float, next_obs: Any, done: bool, **kw: Any
    ) -> None:
        self.host.transition(env_index, task, obs, action, reward, next_obs, done)
