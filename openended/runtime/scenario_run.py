"""A lifelong scenario in ``openended run``: blocks of training and evaluation, l2logger logs.

The experiment's ``scenario:`` section (`openended.metrics.scenario.ScenarioConfig`) is the
curriculum of a lifelong run. `ScenarioRun` walks its blocks between the run's training
iterations:

* a **learning block** on task A: the run's teacher is the ``scenario`` teacher; the driver
  tells it (``control("set_tasks")``) to issue A only, drops the tasks the env runners had
  buffered, tells the learner components the task changed, and trains iterations until
  the block has at least its episodes. The learner components hear of the task change when
  the block ends (before the evaluation and sleep after it), so a memory of the task taken at
  its end (sleep consolidation) is there for the sleep phase. Every training episode is read back from the run's
  event log and written as one l2logger row of the block.
* an **evaluation block**: deterministic episodes of every task of the block on their own
  envs (not the training env runners), with the same env seeds in every evaluation block;
  nothing learns from them. One row per episode. Driver components see it as an
  evaluation block (rewards hidden, sleep skipped).
* a **sleep phase**: the learner components' sleep (e.g. sleep consolidation), with the
  block's step budget (``scenario.sleep_steps``; 0 = 10 seconds of sleep).

RLlib samples ``complete_episodes`` in a scenario run, so no episode runs across two
iterations, hence across two blocks. A learning block is *at least* its episodes: the
iteration that reaches them finishes its batch (``metrics.jsonl`` and the log say how many).

Logs go to ``RUN_DIR/l2logs/<name>-<time>/`` (what ``openended metrics RUN_DIR`` reads).
The scenario's position and the log's episode count are part of every checkpoint set, so
``--resume`` cuts the log back to the set and goes on from the same block.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from openended.errors import ConfigError
from openended.metrics.hooks import task_params
from openended.metrics.l2log import EpisodeLogger
from openended.metrics.scenario import Block, ScenarioConfig, build_blocks
from openended.runtime.checkpoints import CheckpointSet, SetWriter
from openended.runtime.eventlog import decode_outcome, iter_events
from openended.tasks import Discrete, Task, TaskSpace

__all__ = ["ScenarioRun", "ScenarioDriver", "scenario_task_values", "LOG_DIR"]

#: Where a run's l2logger scenario directory lives, under the run directory.
LOG_DIR = "l2logs"
MEMBER = ("scenario", "scenario.json")
#: The sleep budget when ``scenario.sleep_steps`` is 0.
DEFAULT_SLEEP_S = 10.0


class ScenarioDriver(Protocol):
    """What `ScenarioRun` needs from the student's driver (`RLlibDriver` has it)."""

    def control_teacher(self, method: str, **kwargs: Any) -> Any:
        """Call a ``CONTROLS`` method of this student's teacher in the service."""
        ...

    def discard_task_buffers(self) -> int:
        """Drop every env runner's buffered tasks."""
        ...

    def flush_outcomes(self) -> None:
        """Make every env runner's finished episodes reach the service (and its log)."""
        ...

    def evaluate_on(self, tasks: list[Task], episodes_per_task: int, seed: int) -> dict:
        """Deterministic held-out episodes of ``tasks`` (result with ``episodes``)."""
        ...

    def learner_task_change(self, old: Task | None, new: Task) -> None:
        """Tell the learner components the training task changed."""
        ...

    def learner_sleep(self, steps: int | None, seconds: float | None) -> int:
        """The learner components' sleep phase; the steps taken."""
        ...


def scenario_task_values(cfg: ScenarioConfig, space: TaskSpace, family: str = "") -> dict[str, Any]:
    """Scenario task name -> value of the family's `Discrete` task space (names are the values as text).

    Raises:
        ConfigError: the space is not Discrete, or a name is not one of its values (the
            message names ``scenario.tasks[i]`` and shows some of the values).
    """
    if not isinstance(space, Discrete):
        raise ConfigError(
            f"scenario: needs a family with a Discrete task space (its values are the task names); "
            f"{family or 'the env family'} has {space!r}"
        )
    by_text = {str(v): v for v in space.values}
    out: dict[str, Any] = {}
    for i, name in enumerate(cfg.tasks):
        if name not in by_text:
            some = ", ".join(list(by_text)[:8]) + (", ..." if len(by_text) > 8 else "")
            raise ConfigError(f"scenario.tasks[{i}]: {name!r} is not a task of {family or 'the family'} ({some})")
        out[name] = by_text[name]
    return out


class ScenarioRun:
    """Follows the scenario's blocks between training iterations (module doc)."""

    def __init__(
        self,
        cfg: ScenarioConfig,
        space: TaskSpace,
        run_dir: Path,
        events_path: Path,
        driver: ScenarioDriver,
        name: str,
        family: str = "",
        eval_block: Callable[[Callable[[], dict]], dict] | None = None,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.blocks = build_blocks(cfg)
        self.values = scenario_task_values(cfg, space, family)
        assert isinstance(space, Discrete)
        self.tasks = {name: space.task(v, origin="scenario") for name, v in self.values.items()}
        self.names_by_id = {t.id: name for name, t in self.tasks.items()}
        self.run_dir = Path(run_dir)
        self.events_path = Path(events_path)
        self.driver = driver
        self.name = name
        self.eval_block = eval_block or (lambda fn: fn())
        self.say = say or (lambda line: print(f"openended: {line}", file=sys.stderr, flush=True))
        self.index = 0  # the block being run
        self.block_episodes = 0  # episodes logged in the current learning block
        self.active: int | None = None  # the learning block whose task the teacher issues now
        self.last_trained: str | None = None  # the task the learner components were last told of
        self.stray_episodes = 0  # outcomes of tasks outside the running block (not logged)
        self.log_offset = 0
        self.logger: EpisodeLogger | None = None

    # ------------------------------------------------------------------ start / resume
    def start(self, checkpoint: CheckpointSet | None) -> None:
        """Open the log (new, or cut back to ``checkpoint``) and run the blocks before the first learning one."""
        self.log_offset = self.events_path.stat().st_size if self.events_path.exists() else 0
        state = self._saved_state(checkpoint)
        log_root = self.run_dir / LOG_DIR
        if state is not None:
            self.index = int(state["index"])
            self.block_episodes = int(state["block_episodes"])
            self.last_trained = state["last_trained"]
            self.stray_episodes = int(state["stray_episodes"])
            self.logger = EpisodeLogger.resume(self.run_dir / state["log_dir"], next_exp_num=int(state["exp_num"]))
            self.say(f"scenario: resumed at block {self.index} ({self.block_episodes} episodes into it)")
        else:
            earlier = sorted(log_root.glob("*/scenario_info.json"))
            if earlier:  # a killed run before its first checkpoint: its rows are superseded
                self.logger = EpisodeLogger.resume(earlier[0].parent, next_exp_num=0)
            else:
                self.logger = EpisodeLogger.create(log_root, self.name, self.cfg)
        self._advance()

    def _saved_state(self, checkpoint: CheckpointSet | None) -> dict | None:
        if checkpoint is None or not checkpoint.has(MEMBER[0]):
            return None
        with open(checkpoint.member(MEMBER[0]), encoding="utf-8") as f:
            state: dict = json.load(f)
        return state

    # ------------------------------------------------------------------ iterations
    @property
    def finished(self) -> bool:
        """Every block has run."""
        return self.index >= len(self.blocks)

    @property
    def block(self) -> Block | None:
        """The block being run (a learning block between iterations), ``None`` at the end."""
        return None if self.finished else self.blocks[self.index]

    def after_iteration(self) -> dict:
        """Log the iteration's training episodes; finish the block (and run the blocks after it) once it is full.

        Returns what the metrics row records under ``scenario``.
        """
        block = self.block
        assert block is not None and block.block_type == "train", "after_iteration: no learning block is running"
        self.driver.flush_outcomes()
        logged = self._log_training_episodes(block)
        self.block_episodes += logged
        row = {
            "block": block.num,
            "task": block.tasks[0],
            "block_episodes": self.block_episodes,
            "block_target": block.episodes,
            "logged": logged,
        }
        if self.block_episodes >= block.episodes:
            self.say(f"scenario: block {block.num} (train {block.tasks[0]}) done, {self.block_episodes} episodes")
            self.index += 1
            self.block_episodes = 0
            # The task ends with its block, before the evaluation and sleep that follow: a
            # component that remembers the policy on a finished task (sleep consolidation)
            # remembers it as trained, and its sleep phase can use that memory.
            following = self._next_training_task()
            if following is not None:
                self._tell_learner(following)
            self._advance()
        row["finished"] = self.finished
        return row

    def _advance(self) -> None:
        """Run evaluation blocks and sleep phases up to the next learning block, then set its task."""
        while not self.finished:
            block = self.blocks[self.index]
            if block.block_type == "test":
                self._evaluate(block)
            elif block.is_sleep_phase:
                self._sleep(block)
            else:
                self._enter_training(block)
                return
            self.index += 1
        assert self.logger is not None
        self.logger.close()

    def _enter_training(self, block: Block) -> None:
        task_name = block.tasks[0]
        if self.active == block.num:
            return
        self.driver.control_teacher("set_tasks", values=[self.values[task_name]])
        dropped = self.driver.discard_task_buffers()
        self._tell_learner(task_name)
        self.active = block.num
        self.say(
            f"scenario: block {block.num}: train on {task_name} "
            f"({block.episodes} episodes; {dropped} buffered tasks dropped)"
        )

    def _tell_learner(self, task_name: str) -> None:
        """``on_task_end`` (of the last task) / ``on_task_start`` on the learner components, once per change."""
        if task_name == self.last_trained:
            return
        old = self.tasks[self.last_trained] if self.last_trained is not None else None
        self.driver.learner_task_change(old, self.tasks[task_name])
        self.last_trained = task_name

    def _next_training_task(self) -> str | None:
        """The task of the next learning block after the current position (``None``: no more)."""
        for block in self.blocks[self.index :]:
            if block.block_type == "train" and not block.is_sleep_phase:
                return block.tasks[0]
        return None

    def _log_training_episodes(self, block: Block) -> int:
        assert self.logger is not None
        logged = 0
        for entry in iter_events(self.events_path, self.log_offset):
            self.log_offset = entry.end
            if entry.event.get("ev") != "outcome":
                continue
            _, outcomes = decode_outcome(entry.event)
            for o in outcomes:
                name = self.names_by_id.get(o.task_id)
                if name is None or name not in block.tasks:
                    self.stray_episodes += 1
                    continue
                self.logger.episode(
                    block,
                    name,
                    o.episode_return,
                    success=o.success,
                    length=o.length,
                    task_params=task_params(self.tasks[name]),
                )
                logged += 1
        return logged

    def _evaluate(self, block: Block) -> None:
        assert self.logger is not None
        tasks = [self.tasks[name] for name in block.tasks]
        self.say(f"scenario: block {block.num}: evaluating {len(tasks)} tasks x {block.episodes} episodes")
        result = self.eval_block(lambda: self.driver.evaluate_on(tasks, block.episodes, self.cfg.eval_seed))
        by_task: dict[str, list] = {name: [] for name in block.tasks}
        for task, ret, success, length, _cut in result["episodes"]:
            by_task[self.names_by_id[task.id]].append((ret, success, length))
        for name, episodes in by_task.items():  # rows grouped by task: one regime each
            for ret, success, length in episodes:
                self.logger.episode(
                    block, name, ret, success=success, length=length, task_params=task_params(self.tasks[name])
                )

    def _sleep(self, block: Block) -> None:
        steps = block.sleep_steps or None
        taken = self.driver.learner_sleep(steps, None if steps else DEFAULT_SLEEP_S)
        self.say(f"scenario: block {block.num}: sleep phase, {taken} learner steps")

    # ------------------------------------------------------------------ checkpoints
    def save(self, ckpt: SetWriter) -> None:
        """The scenario's position and the log's episode count, as checkpoint member ``scenario``."""
        assert self.logger is not None
        state = {
            "index": self.index,
            "block_episodes": self.block_episodes,
            "last_trained": self.last_trained,
            "stray_episodes": self.stray_episodes,
            "exp_num": self.logger.exp_num,
            "log_dir": str(self.logger.writer.scenario_dir.relative_to(self.run_dir)),
        }
        with open(ckpt.reserve(*MEMBER), "w", encoding="utf-8") as f:
            json.dump(state, f)

    def summary(self) -> dict:
        """For the run's summary: where the log is and how far the scenario got."""
        assert self.logger is not None
        return {
            "log_dir": str(self.logger.writer.scenario_dir),
            "blocks_done": self.index,
            "blocks": len(self.blocks),
            "episodes_logged": self.logger.exp_num,
            "stray_episodes": self.stray_episodes,
        }
