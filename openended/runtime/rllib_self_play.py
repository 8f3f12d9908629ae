"""Self-play in RLlib's multi-agent PPO: frozen snapshots of the learner are the opponent pool.

The pieces (the env side is `openended.envs.multiagent.self_play`, Ray-free):

* The **task** of each episode is an opponent slot (``opponent_3``), drawn per episode by
  the self-play teacher (`openended.teachers.self_play`, FSP / PFSP) in the teacher service;
  `CurriculumMultiAgentEnv` pops it at each reset as for any multi-agent family.
* The **opponent** of a slot is a frozen snapshot of the learner's RLModule: one file per
  slot in a directory every env runner reads (``<dir>/<slot>.pkl``: the module spec and its
  weights). `snapshot_opponents` is the env's opponent loader: it builds the module from
  the file (once per slot and env, then cached) and acts the opponent's agents with it, so
  RLlib trains one policy and never sees the opponent's agents.
* **Checkpoints join the pool**: `SelfPlaySnapshots.start` writes the initial learner under
  every slot before training (the initial pool's members included); the teacher adds the next slot to its pool every
  ``add_every`` outcomes (its own config). `SelfPlaySnapshots.write` (call it after each
  ``algo.train()``) saves the learner's current weights to every slot *not yet in the
  pool*, so the slot that joins next holds the learner as of the last iteration before
  it joined, and a slot in the pool is never written again (frozen). The pool is read
  from the teacher's stats (``latest_opponent``) in the service.
* **Outcomes per opponent**: each episode's `Outcome` names its slot's task and has
  ``success`` = the learner won, so PFSP's per-opponent win rates are counted from them.

Where the driver decides when a checkpoint joins (every N iterations rather than N
outcomes; teacher ``add_every: null``), `SelfPlaySnapshots.add` saves the learner under
the next slot, then adds that slot through the service's control call (``add_opponent``
is in the teacher's ``CONTROLS``). Resuming: ``add_every`` joins are replayed from the
event log with the outcomes; control calls are not logged by the service, so a join made
by ``add`` after the last teacher checkpoint is lost when the service restarts.

Race, stated: the teacher may add a slot between the driver's read of the pool and its
write of that slot (milliseconds); the slot then holds the weights of the next iteration
instead, and a runner that loaded it in between keeps the older ones. Both are learner
checkpoints one iteration apart.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from openended.envs.multiagent.self_play import OpponentLoader, OpponentPolicy
from openended.errors import ConfigError

__all__ = [
    "SelfPlaySnapshots",
    "self_play_config",
    "snapshot_opponents",
    "snapshot_path",
    "learner_snapshot",
    "write_snapshots",
]

SUFFIX = ".pkl"


def snapshot_path(directory: str | os.PathLike, slot: str) -> Path:
    """The snapshot file of ``slot`` in ``directory``."""
    return Path(directory) / f"{slot}{SUFFIX}"


def self_play_config(config: Any) -> Any:
    """An RLlib config for self-play: one shared policy (``"shared"``), and no env check at build.

    Why no check: RLlib's env check resets an env while the algorithm is built, before its
    module exists, so before `SelfPlaySnapshots.start` can have saved the opponents that
    reset would load. Env runners otherwise reset at their first sample.
    """
    from openended.runtime.rllib_multiagent import shared_policy_config

    return shared_policy_config(config).environment(disable_env_checking=True)


def learner_snapshot(algo: Any, module_id: str = "shared") -> dict[str, Any]:
    """``{"spec", "state"}`` of the learner's current ``module_id`` (the weights the learner trains)."""
    module = algo.get_module(module_id)
    if module is None:
        raise ConfigError(f"self-play: the algorithm has no module {module_id!r} (the learner's policy id)")
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    spec = RLModuleSpec.from_module(module)
    spec.inference_only = False  # the learner's state has every component (value head included)
    state = algo.learner_group.get_weights(module_ids=[module_id])[module_id]
    return {"spec": spec, "state": state}


def write_snapshots(directory: str | os.PathLike, slots: Sequence[str], snapshot: Mapping[str, Any]) -> None:
    """Write one snapshot under every slot in ``slots``, each file replaced atomically.

    The bytes are written once and hard-linked under each slot's name, so a reader sees
    a slot's old file or its new one, never a partial one.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(dict(snapshot), f, protocol=pickle.HIGHEST_PROTOCOL)
        for slot in slots:
            link = f"{tmp}.{slot}"
            os.link(tmp, link)
            os.replace(link, snapshot_path(d, slot))
    finally:
        os.unlink(tmp)


def snapshot_opponents(action_spaces: Mapping[str, Any], directory: str, deterministic: bool = False) -> OpponentLoader:
    """The env's opponent loader: each slot's policy is the RLModule saved in ``<directory>/<slot>.pkl``.

    ``SelfPlayTaskEnv(opponent="openended.runtime.rllib_self_play:snapshot_opponents",
    opponent_config={"directory": ...})``. Actions are sampled from the module's inference
    distribution (``deterministic``: its mode).
    """
    del action_spaces  # the module knows its action space

    def load(slot: str) -> OpponentPolicy:
        path = snapshot_path(directory, slot)
        try:
            with path.open("rb") as f:
                snap = pickle.load(f)
        except FileNotFoundError:
            raise ConfigError(
                f"self-play: opponent {slot!r} has no snapshot at {path}; write the learner's snapshot "
                "(SelfPlaySnapshots.write) before the teacher can draw the slot"
            ) from None
        return _module_policy(snap, deterministic)

    return load


def _module_policy(snap: Mapping[str, Any], deterministic: bool) -> OpponentPolicy:
    import torch
    from ray.rllib.core.columns import Columns

    module = snap["spec"].build()
    module.set_state(snap["state"])
    module.eval()
    dist_cls = module.get_inference_action_dist_cls()

    def act(obs: Mapping[str, Any]) -> dict[str, Any]:
        agents = list(obs)
        batch = torch.as_tensor(np.stack([np.asarray(obs[a], dtype=np.float32) for a in agents]))
        with torch.no_grad():
            out = module.forward_inference({Columns.OBS: batch})
            dist = dist_cls.from_logits(out[Columns.ACTION_DIST_INPUTS])
            if deterministic:
                dist = dist.to_deterministic()
            actions = dist.sample().numpy()
        return {a: actions[i] for i, a in enumerate(agents)}

    return act


class SelfPlaySnapshots:
    """The driver's side: keep the snapshot files of the slots not yet in the pool current.

    ``service`` is the teacher service's actor handle; ``curriculum`` / ``student`` name the
    self-play teacher in it. ``slots`` are the env's task values in order.
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        slots: Sequence[str],
        service: Any,
        curriculum: str,
        student: str = "default",
        module_id: str = "shared",
    ) -> None:
        self.directory = Path(directory)
        self.slots = list(slots)
        self.service = service
        self.curriculum = curriculum
        self.student = student
        self.module_id = module_id
        self.writes = 0

    def joined(self) -> int:
        """How many slots (in order) have joined the pool so far (0 before the teacher exists)."""
        stats = self._stats()
        if stats is None:
            return 0
        return self.slots.index(stats["latest_opponent"]) + 1

    def _stats(self) -> dict | None:
        """The self-play teacher's stats in the service (``None`` before its first use)."""
        import ray

        snap = ray.get(self.service.snapshot.remote())
        cur = snap["curricula"].get(self.curriculum)
        if cur is None:
            raise ConfigError(f"self-play: the service hosts no curriculum {self.curriculum!r}")
        students = cur["students"]
        stats = students.get(self.student, students.get("*"))  # "*": the teacher of a shared curriculum
        return stats if stats is not None and "latest_opponent" in stats else None

    def add(self, algo: Any) -> str:
        """A driver-decided join: save the learner under the next slot, then add it to the pool.

        For runs that add a checkpoint every N iterations (teacher ``add_every: null``):
        the file is written before the teacher can draw the slot, so there is no race. The
        pool grows through the service's control call (``add_opponent`` is in the
        teacher's ``CONTROLS``). Returns the slot. Call it once the teacher exists (after
        the first iteration).
        """
        import ray

        if self._stats() is None:
            raise ConfigError(
                f"self-play: curriculum {self.curriculum!r} has no teacher for {self.student!r} yet; "
                "call add() after the first training iteration"
            )
        joined = self.joined()
        if joined >= len(self.slots):
            raise ConfigError(f"self-play: all {len(self.slots)} opponent slots have joined; raise the env's slots")
        slot = self.slots[joined]
        write_snapshots(self.directory, [slot], learner_snapshot(algo, self.module_id))
        self.writes += 1
        ray.get(self.service.control.remote(self.curriculum, self.student, "add_opponent", {"value": slot}))
        return slot

    def start(self, algo: Any) -> None:
        """Save the initial learner under every slot (the initial pool included): call before training."""
        write_snapshots(self.directory, self.slots, learner_snapshot(algo, self.module_id))
        self.writes += 1

    def write(self, algo: Any) -> list[str]:
        """Save the learner's current weights under every slot not yet in the pool; returns those slots."""
        pending = self.slots[self.joined() :]
        if pending:
            write_snapshots(self.directory, pending, learner_snapshot(algo, self.module_id))
            self.writes += 1
        return pending
