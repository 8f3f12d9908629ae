"""Lifelong scenarios: the sequence of learning and evaluation blocks a run goes through.

Why: the lifelong metrics (`openended.metrics.lifelong`) are only defined on a run made of
blocks — learning blocks on one task, evaluation blocks on every task with learning off —
so the scenario is data the run follows and the log records, not something a host invents.
`ScenarioConfig` is the experiment's ``scenario:`` section; `build_blocks` turns it into
the exact block list, the same on every call (a permuted order comes from ``seed``).

The L2M scenario types, as this project builds them (``A``, ``B``, ``C`` = tasks in the
order given; ``E`` = an evaluation block over all tasks):

* ``condensed``: each task trained once, in one block: ``E A E B E C E``.
* ``dispersed``: each task's training split into ``repetitions`` shorter blocks, cycled:
  ``E A E B E C E A E B E C E`` (same total per task as condensed).
* ``alternating``: the first task alternates with each of the others, every block full
  length, the cycle repeated ``repetitions`` times: ``E A E B E A E C E``.
* ``permuted``: each repetition trains every task once in a fresh random order drawn
  from ``seed``.
* ``ste``: a single-task expert run: one task trained alone (``E A E``) — the reference
  that relative performance and sample efficiency compare against.
* ``custom``: the blocks exactly as listed in ``blocks``.

>>> cfg = ScenarioConfig(type="condensed", tasks=["a", "b"], train_episodes=4, eval_episodes=2)
>>> [(b.block_type, b.tasks) for b in build_blocks(cfg)]
[('test', ('a', 'b')), ('train', ('a',)), ('test', ('a', 'b')), ('train', ('b',)), ('test', ('a', 'b'))]
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from openended.errors import ConfigError

__all__ = [
    "ScenarioType",
    "BlockSpec",
    "ScenarioConfig",
    "Block",
    "build_blocks",
    "ste_configs",
    "EpisodeSlot",
    "episode_slots",
    "TASK_NAME_PATTERN",
]

ScenarioType = Literal["condensed", "dispersed", "alternating", "permuted", "ste", "custom"]

#: What l2logger accepts in a worker id, also required of task names so they survive the
#: log's lower-casing and ``label_variant`` split without surprises.
TASK_NAME_PATTERN = re.compile(r"[0-9a-zA-Z_\-.]+")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BlockSpec(_Model):
    """One block of a ``custom`` scenario."""

    type: Literal["train", "test"] = Field(description="train = learning allowed; test = evaluation, learning off")
    tasks: list[str] = Field(min_length=1, description="tasks of the block (one for a learning block)")
    episodes: int = Field(gt=0, description="episodes per task in this block")
    subtype: Literal["wake", "sleep"] = "wake"

    @model_validator(mode="after")
    def _one_task_to_learn(self) -> BlockSpec:
        if self.type == "train" and len(self.tasks) != 1:
            raise ValueError(f"a learning (train) block has exactly one task, got {len(self.tasks)}")
        return self


class ScenarioConfig(_Model):
    """The ``scenario:`` section of an experiment: which blocks, over which tasks, how long."""

    type: ScenarioType = "condensed"
    tasks: list[str] = Field(min_length=1, description="task names, in training order (label or label_variant)")
    train_episodes: int = Field(100, gt=0, description="episodes of training per task over the whole scenario")
    eval_episodes: int = Field(10, gt=0, description="episodes per task in each evaluation block")
    repetitions: int = Field(
        1, gt=0, description="dispersed: blocks per task; alternating / permuted: cycles of the sequence"
    )
    evaluate: Literal["between_blocks", "end", "none"] = Field(
        "between_blocks", description="evaluation blocks before, between and after learning blocks / only at the end"
    )
    sleep: bool = Field(False, description="after each learning block, a sleep phase and a sleep evaluation block")
    sleep_steps: int = Field(0, ge=0, description="budget of the sleep phase in learner steps (0 = component decides)")
    seed: int = Field(0, ge=0, description="draws the permuted orders")
    eval_seed: int = Field(0, ge=0, description="first env seed of evaluation episodes (the same in every block)")
    complexity: Literal["1-low", "2-intermediate", "3-high"] = "1-low"
    difficulty: Literal["1-easy", "2-medium", "3-hard"] = "2-medium"
    blocks: list[BlockSpec] = Field(default_factory=list, description="custom: the blocks, in order")

    @field_validator("tasks")
    @classmethod
    def _task_names(cls, v: list[str]) -> list[str]:
        for i, name in enumerate(v):
            if not TASK_NAME_PATTERN.fullmatch(name):
                raise ValueError(f"tasks[{i}]={name!r}: use letters, digits, '_', '-', '.' only")
        lowered = [n.lower() for n in v]
        dupes = sorted({n for n in lowered if lowered.count(n) > 1})
        if dupes:
            raise ValueError(f"task names must differ (case-insensitively, as the log stores them): {dupes}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> ScenarioConfig:
        if self.type == "ste" and len(self.tasks) != 1:
            raise ValueError(f"an ste scenario trains one task, got {len(self.tasks)}; use ste_configs() for several")
        if self.type == "alternating" and len(self.tasks) < 2:
            raise ValueError("an alternating scenario needs at least 2 tasks")
        if self.type == "dispersed" and self.train_episodes < self.repetitions:
            raise ValueError(
                f"dispersed: train_episodes={self.train_episodes} cannot be split into repetitions={self.repetitions}"
                " blocks of at least one episode"
            )
        if self.type == "custom":
            if not self.blocks:
                raise ValueError("a custom scenario lists its blocks under 'blocks'")
            known = set(self.tasks)
            for i, b in enumerate(self.blocks):
                unknown = [t for t in b.tasks if t not in known]
                if unknown:
                    raise ValueError(f"blocks[{i}].tasks: {unknown} not in tasks {self.tasks}")
        elif self.blocks:
            raise ValueError(f"'blocks' is only read by type: custom (type is {self.type!r})")
        return self


@dataclass(frozen=True)
class Block:
    """One block of a scenario, as the hosts run it and the log records it.

    ``block_type`` is l2logger's ``train`` (learning allowed) or ``test`` (evaluation:
    learning off, rewards hidden from components); ``subtype`` is ``wake`` or ``sleep``.
    A sleep-phase block (``train`` / ``sleep``) runs no episodes: its budget is
    ``sleep_steps``. ``episodes`` is per task.
    """

    num: int
    block_type: Literal["train", "test"]
    tasks: tuple[str, ...]
    episodes: int
    subtype: Literal["wake", "sleep"] = "wake"
    eval_seed: int | None = None
    sleep_steps: int = 0

    @property
    def learning_allowed(self) -> bool:
        """Whether learners and components may learn during the block."""
        return self.block_type == "train"

    @property
    def is_sleep_phase(self) -> bool:
        """A consolidation phase: no episodes, only a sleep budget."""
        return self.block_type == "train" and self.subtype == "sleep"

    def episode_seeds(self) -> list[int] | None:
        """Env seeds of an evaluation block's episodes per task (the same in every evaluation block)."""
        if self.eval_seed is None:
            return None
        return [self.eval_seed + i for i in range(self.episodes)]


def _training_order(cfg: ScenarioConfig) -> list[tuple[str, int]]:
    """The learning blocks as (task, episodes), in order."""
    tasks, n = cfg.tasks, cfg.train_episodes
    if cfg.type in ("condensed", "ste"):
        return [(t, n) for t in tasks]
    if cfg.type == "dispersed":
        # Split n into `repetitions` parts differing by at most one (earlier parts larger).
        parts = [n // cfg.repetitions + (1 if i < n % cfg.repetitions else 0) for i in range(cfg.repetitions)]
        return [(t, p) for p in parts for t in tasks]
    if cfg.type == "alternating":
        first, others = tasks[0], tasks[1:]
        cycle = [x for other in others for x in ((first, n), (other, n))]
        return cycle * cfg.repetitions
    if cfg.type == "permuted":
        rng = np.random.default_rng(cfg.seed)
        return [(tasks[int(i)], n) for _ in range(cfg.repetitions) for i in rng.permutation(len(tasks))]
    raise ConfigError(f"scenario.type: no training order for {cfg.type!r}")  # pragma: no cover - custom handled above


def build_blocks(cfg: ScenarioConfig) -> list[Block]:
    """The scenario's blocks in order, numbered from 0 (the log's ``block_num``)."""
    blocks: list[Block] = []

    def add(
        block_type: Literal["train", "test"],
        tasks: tuple[str, ...],
        episodes: int,
        subtype: Literal["wake", "sleep"] = "wake",
        eval_seed: int | None = None,
        sleep_steps: int = 0,
    ) -> None:
        blocks.append(Block(len(blocks), block_type, tasks, episodes, subtype, eval_seed, sleep_steps))

    def evaluation(subtype: Literal["wake", "sleep"] = "wake") -> None:
        add("test", tuple(cfg.tasks), cfg.eval_episodes, subtype=subtype, eval_seed=cfg.eval_seed)

    if cfg.type == "custom":
        for spec in cfg.blocks:
            seed = cfg.eval_seed if spec.type == "test" else None
            add(spec.type, tuple(spec.tasks), spec.episodes, subtype=spec.subtype, eval_seed=seed)
        return blocks
    between = cfg.evaluate == "between_blocks"
    if between:
        evaluation()
    for task, episodes in _training_order(cfg):
        add("train", (task,), episodes)
        if between:
            evaluation()
        if cfg.sleep:
            add("train", (task,), 0, subtype="sleep", sleep_steps=cfg.sleep_steps)
            if between:
                evaluation("sleep")
    if cfg.evaluate == "end":
        evaluation("sleep" if cfg.sleep else "wake")
    return blocks


def ste_configs(cfg: ScenarioConfig) -> list[ScenarioConfig]:
    """One single-task-expert scenario per task of ``cfg``: same lengths, each task trained alone.

    The experts see the same total training per task as the lifelong run, in one block.
    """
    total = {t: 0 for t in cfg.tasks}
    if cfg.type == "custom":
        for b in cfg.blocks:
            if b.type == "train" and b.subtype == "wake":
                total[b.tasks[0]] += b.episodes
    else:
        for t, n in _training_order(cfg):
            total[t] += n
    return [
        cfg.model_copy(
            update={"type": "ste", "tasks": [t], "train_episodes": max(n, 1), "repetitions": 1, "blocks": []}
        )
        for t, n in total.items()
    ]


@dataclass(frozen=True)
class EpisodeSlot:
    """One episode the scenario asks for: ``exp_num`` is its position over the whole scenario."""

    exp_num: int
    block: Block
    task: str
    index: int
    seed: int | None


def episode_slots(blocks: Sequence[Block], start: int = 0) -> Iterator[EpisodeSlot]:
    """Every episode of the scenario in order (blocks, then tasks, then episodes), from ``start``.

    Why: a host that follows a scenario asks this for its next episode, and a resumed run
    passes the number of episodes already logged as ``start`` to continue where it stopped;
    ``exp_num`` is then the log's experience number. Evaluation episodes carry their fixed
    env seed. Sleep phases have no episodes (the host runs them between the blocks).

    >>> blocks = build_blocks(ScenarioConfig(tasks=["a", "b"], train_episodes=2, eval_episodes=1))
    >>> [(s.exp_num, s.block.num, s.task, s.seed) for s in episode_slots(blocks, start=3)][:3]
    [(3, 1, 'a', None), (4, 2, 'a', 0), (5, 2, 'b', 0)]
    """
    if start < 0:
        raise ConfigError(f"start: a number of episodes already run (>= 0), got {start}")
    exp = 0
    for block in blocks:
        seeds = block.episode_seeds()
        for task in block.tasks:
            if exp + block.episodes <= start:
                exp += block.episodes
                continue
            for i in range(block.episodes):
                if exp >= start:
                    yield EpisodeSlot(exp, block, task, i, seeds[i] if seeds is not None else None)
                exp += 1
