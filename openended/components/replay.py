"""Experience replay with a sleep-phase consolidation step (CLEAR-style).

Two components that never call each other; they meet in the ``"replay"`` store:

* `ExperienceReplay` (env runner) provides the store and writes every training
  transition's observation into the running task's table (reservoir sampling by
  default, so old tasks stay represented however long a task runs). Evaluation blocks
  hide rewards, and it stores nothing from them. Its `store_specs` tell a run how to
  build the store once as a shared actor; then every host (env runners, learner) uses
  that one, and the run, not this component, saves its state.
* `SleepConsolidation` (learner) requires it. At a task's end it *remembers* the policy
  on that task: it draws observations of the finished task from the store and keeps them
  with the policy's logits on them (CLEAR's behaviour targets). In a sleep phase it takes
  gradient steps within the budget on a 50/50 mix of replayed memories (KL from the
  remembered logits to the policy's: CLEAR's policy-cloning term) and new experience
  (KL from the logits at sleep start: the new task's behaviour is kept while the old one
  is restored). The sleep is skipped in blocks where learning is forbidden (the host).

CLEAR (Rolnick et al., 2019) mixes new and replayed experience with V-trace plus
behaviour-cloning terms during training; this component applies the cloning terms in a
separate sleep phase, the L2M "wake / sleep" form of the same idea.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from openended.components.base import Component, ComponentConfig, Placement, SleepBudget, Transitions
from openended.components.stores import ReplayStore, StoreSpec
from openended.components.torch_policy import as_obs_tensor, policy_logits
from openended.tasks import Task

__all__ = ["ExperienceReplay", "SleepConsolidation"]

STORE = "replay"


class ExperienceReplayConfig(ComponentConfig):
    """The store's size and policy."""

    capacity: int = Field(2000, ge=1, description="Observations kept per task.")
    policy: Literal["fifo", "reservoir"] = Field("reservoir", description="Which observations a full table keeps.")
    seed: int = Field(0, description="Reservoir seed.")


class ExperienceReplay(Component):
    """Writes training observations into the per-task ``"replay"`` store (module doc)."""

    placement = Placement.ENV_RUNNER
    provides: ClassVar[tuple[str, ...]] = (STORE,)
    Config = ExperienceReplayConfig
    transition_batch: ClassVar[int] = 64

    @classmethod
    def store_specs(cls, config: Any) -> tuple[StoreSpec, ...]:
        """The ``"replay"`` store: a `ReplayStore` with the config's capacity, policy and seed."""
        return (
            StoreSpec(STORE, ReplayStore, {"capacity": config.capacity, "policy": config.policy, "seed": config.seed}),
        )

    def __init__(self, config: Any = None, *, store: Any = None) -> None:
        super().__init__(config)
        self.store = store if store is not None else self.store_specs(self.config)[0].build()
        self._own = self.store

    @property
    def owns_store(self) -> bool:
        """Whether the store is this component's own, so its state is saved here.

        ``False`` when the host registered another store as ``"replay"`` (a run's shared
        store actor): its owner, the run (`openended.runtime.component_run.RunComponents`),
        saves it once instead of every env runner saving a copy.
        """
        registered = self.stores is not None and STORE in self.stores
        return not registered or self.stores.get(STORE) is self._own

    def on_lifetime_start(self, **kw: Any) -> None:
        """Register the store (an earlier registration, e.g. a shared store actor, wins)."""
        self.store = self.stores.add(STORE, self.store)

    def on_transitions(self, *, batch: Transitions, **kw: Any) -> None:
        """Store the batch's observations under its task (not in evaluation blocks: rewards are hidden there)."""
        if batch.rewards is None:
            return
        self.store.add(batch.task_id, [np.asarray(o, dtype=np.float32).tolist() for o in batch.obs])

    def state_dict(self) -> dict[str, Any]:
        """The store's tables if it owns the store (`owns_store`); ``{}`` for a shared one."""
        return {"store": self.store.state_dict()} if self.owns_store else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the store if it owns it (a shared store is restored by its owner)."""
        if "store" in state and self.owns_store:
            self._own.load_state_dict(state["store"])


class SleepConsolidationConfig(ComponentConfig):
    """Sleep-phase training."""

    memory_per_task: int = Field(256, ge=1, description="Observations remembered with their logits per finished task.")
    batch_size: int = Field(64, ge=2, description="Observations per sleep step (half replayed, half new).")
    lr: float = Field(3e-3, gt=0, description="Adam learning rate of the sleep steps.")
    seed: int = Field(0, description="Sampling seed.")


class SleepConsolidation(Component):
    """Policy cloning on replayed memories during sleep (module doc)."""

    placement = Placement.LEARNER
    requires: ClassVar[tuple[str, ...]] = (STORE,)
    Config = SleepConsolidationConfig

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self.memories: dict[str, tuple[list[Any], list[Any]]] = {}  # task id -> (obs, logits)
        self.current: str | None = None
        self._rng = np.random.default_rng(self.config.seed)
        self._opt: torch.optim.Optimizer | None = None
        self.steps = 0

    def on_task_start(self, *, task: Task, **kw: Any) -> None:
        """Track the running task (its experience is the "new" half of a sleep batch)."""
        self.current = task.id

    def on_task_end(self, *, task: Task, new_task: Task, **kw: Any) -> None:
        """Remember the policy on the finished task: replayed observations and the policy's logits on them."""
        module = kw.get("module")
        if module is None:
            return
        obs = self.stores.get(STORE).sample(self.config.memory_per_task, task_id=task.id)
        if not obs:
            return
        with torch.no_grad():
            logits = policy_logits(module, as_obs_tensor(obs))
        self.memories[task.id] = (obs, logits.tolist())

    def on_sleep(self, *, budget: SleepBudget, **kw: Any) -> int:
        """Cloning steps within ``budget`` (``module`` in ``kw``); returns the steps taken."""
        module = kw.get("module")
        if module is None or not self.memories:
            return 0
        if self._opt is None:
            self._opt = torch.optim.Adam(module.parameters(), lr=self.config.lr)
        half = self.config.batch_size // 2
        store = self.stores.get(STORE)
        new_obs = store.sample(4 * half, task_id=self.current) if self.current else []
        new_t = as_obs_tensor(new_obs) if new_obs else None
        with torch.no_grad():
            new_target = policy_logits(module, new_t) if new_t is not None else None
        mem_obs = torch.cat([as_obs_tensor(o) for o, _ in self.memories.values()])
        mem_logits = torch.cat([torch.as_tensor(lg, dtype=torch.float32) for _, lg in self.memories.values()])
        deadline = budget.deadline()
        taken = 0
        while budget.allows(taken, deadline):
            idx = torch.as_tensor(self._rng.integers(len(mem_obs), size=half))
            loss = _kl(mem_logits[idx], policy_logits(module, mem_obs[idx]))
            if new_t is not None and new_target is not None:
                jdx = torch.as_tensor(self._rng.integers(len(new_t), size=half))
                loss = loss + _kl(new_target[jdx], policy_logits(module, new_t[jdx]))
            self._opt.zero_grad()
            loss.backward()
            self._opt.step()
            taken += 1
        self.steps += taken
        return taken

    def state_dict(self) -> dict[str, Any]:
        """The memories (observations and logits per task) and the step count."""
        return {
            "memories": {k: [o, lg] for k, (o, lg) in self.memories.items()},
            "current": self.current,
            "steps": self.steps,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""
        self.memories = {k: (v[0], v[1]) for k, v in state["memories"].items()}
        self.current = state["current"]
        self.steps = int(state["steps"])


def _kl(target_logits: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """KL(target || policy) for categorical logits, batch mean."""
    p = F.log_softmax(target_logits, dim=-1)
    q = F.log_softmax(logits, dim=-1)
    return (p.exp() * (p - q)).sum(-1).mean()
