"""The episode host: how every env host in the runtime runs an episode on a teacher's task.

Contents:
    EpisodeHost     -- hosts the episodes of one env, a vector of envs, or a team (below).
    EpisodeHooks    -- the lifecycle callbacks a host fires (episode start/end, task change).
    EpisodeCounters -- resets, outcomes reported, abandoned episodes, task-id mismatches.
    TaskClient      -- what a host needs from a teacher client.
    task_setter     -- an env's ``set_task``, found through gymnasium wrappers.

Why one host: `EnvPoolCore`, RLlib's `CurriculumEnv` and `CurriculumMultiAgentEnv` all do
the same thing at an episode boundary, and they must agree to the letter, or a teacher is
told different things about the same kind of episode. For env slot ``i`` the host:

1. ``begin(i)``: counts the running episode as *abandoned* if it had steps but did not end
   (it gets no outcome), pops the next task from the client, gives it to the env with
   ``set_task`` (found through gymnasium wrappers; the task takes effect at this reset)
   and resets the env;
2. ``step(i, action)`` / ``step_team(i, actions)``: steps the env (returning exactly what
   the env returned) and tracks return and length; when the episode ends it calls
3. ``end(i, info, terminated)``: builds the `Outcome` (`openended.envs.base.episode_outcome`,
   the one place outcomes are made) with the id of the task the env *actually ran*
   (``info["task_id"]``; a disagreement with the task it was given is counted), the
   success the env reported, ``info["terminated"]``, and reports it to the client; it is
   also kept in ``last_outcome[i]``.

Teams: a slot whose env has ``episode_outcomes()`` (a task ``ParallelEnv``, or `TeamEnv`
around one) is one team: one outcome per team episode, aggregated by
`openended.envs.team.team_result` (mean agent return, success when every agent that
reports success succeeded, per-agent returns in ``info["agent_returns"]``, length = the
longest agent's). ``step_team`` steps a raw ``ParallelEnv`` (dict actions; the episode ends
when no agent is left); `TeamEnv` slots step with ``step`` like any gymnasium env.

Episode ids: by default each outcome is built with its client's next id
(``client.new_episode_id()``: the client's random 32-bit token, then a counter; 16 hex
digits), or left for the client to assign if it has no such method. With
``episode_id_prefix`` it gets ``f"{prefix}-{i}-{n}"`` instead (n counts slot ``i``'s
episodes). Either way the service de-duplicates by it, but a canonical id is what the
service's compiled paths take: a report of named ids costs it ~3x as much (EnvPools sent
named ids until 2026-12-07; docs/runtime.md, "Episode ids").

Hooks (`EpisodeHooks`; ``add_hooks``): for each slot, in this order,

* ``task_change(env_index, old_task, new_task)`` -- in ``begin``, after ``set_task``
  accepted a task whose id differs from the slot's previous one (``old_task`` is ``None``
  at the slot's first episode), before the reset;
* ``episode_start(env_index, task, obs, info, seed)`` -- in ``begin``, after the reset;
* ``transition(env_index, task, obs, action, reward, next_obs, done)`` -- in ``step``
  (gymnasium slots), after the env stepped and before ``episode_end``; opt-in: a host
  with no ``transition`` hook keeps no observations and costs nothing per step;
* ``episode_end(env_index, outcome, info)`` -- in ``end``, after the outcome was reported.

An abandoned episode gets no ``episode_end``; the next ``episode_start`` of its slot follows.
Hook objects are called in the order they were added. All arguments are keywords and a
hook must accept ``**kw``: later versions may pass more. Only the methods a hook object
defines are called; with no hooks the host costs one empty-list test per episode
boundary and nothing per step.

Example (in-process, no Ray)::

    host = EpisodeHost([make_env("toy")], LocalTeacherClient(core, "toy"))
    obs, info = host.begin(0, seed=0)
    obs, reward, terminated, truncated, info = host.step(0, action)
    if terminated or truncated:
        outcome = host.last_outcome[0]   # already reported to the client
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from openended.envs.base import INFO_SUCCESS, INFO_TASK_ID, episode_outcome
from openended.envs.team import team_result
from openended.errors import ConfigError
from openended.tasks import Outcome, Task

__all__ = ["EpisodeHost", "EpisodeHooks", "EpisodeCounters", "TaskClient", "task_setter", "HOOK_NAMES"]

#: The hook methods a host looks for on a hook object, in firing order within an episode.
HOOK_NAMES: tuple[str, ...] = ("task_change", "episode_start", "transition", "episode_end")


class TaskClient(Protocol):
    """What a host needs from a teacher client (`TeacherClient` / `LocalTeacherClient`)."""

    def next_task(self) -> Task:
        """The next task, from the client's local buffer (`TeacherClient.next_task`)."""
        ...

    def report(self, outcome: Outcome) -> None:
        """Queue ``outcome`` for the service (`TeacherClient.report`)."""
        ...

    def flush(self, wait: bool = False) -> None:
        """Send the queued outcomes now (`TeacherClient.flush`)."""
        ...

    def stats(self) -> dict:
        """The client's counters (`TeacherClient.stats`)."""
        ...

    def close(self) -> None:
        """Flush and release the client (`TeacherClient.close`)."""
        ...


class EpisodeHooks(Protocol):
    """Lifecycle callbacks of an `EpisodeHost` (module doc: when each fires).

    A hook object defines any subset of these methods; the host calls only those it has.
    Arguments are keyword-only and may grow: accept ``**kw``.
    """

    def task_change(self, *, env_index: int, old_task: Task | None, new_task: Task, **kw: Any) -> None:
        """Slot ``env_index`` moves to a task with another id (``old_task`` is ``None`` at its first episode)."""
        ...

    def episode_start(self, *, env_index: int, task: Task, **kw: Any) -> None:
        """Slot ``env_index`` was reset on ``task`` (``obs``, ``info`` and ``seed`` come in ``kw``)."""
        ...

    def episode_end(self, *, env_index: int, outcome: Outcome, **kw: Any) -> None:
        """Slot ``env_index``'s episode ended and ``outcome`` was reported (the env's last ``info`` in ``kw``)."""
        ...


@dataclasses.dataclass
class EpisodeCounters:
    """Episode-boundary counters; several hosts may share one (RLlib: one per process)."""

    resets: int = 0
    episodes_reported: int = 0
    abandoned_episodes: int = 0
    task_id_mismatches: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters by name (for metrics rows and ``stats()``)."""
        return dataclasses.asdict(self)


def _find_attr(env: Any, name: str) -> Any:
    """``env.name``, else the same attribute through gymnasium wrappers, else ``None``."""
    fn = getattr(env, name, None)
    if fn is None and hasattr(env, "get_wrapper_attr"):
        try:
            fn = env.get_wrapper_attr(name)
        except AttributeError:
            fn = None
    return fn


def task_setter(env: Any, owner: str = "episode host") -> Callable[[Task], None]:
    """The env's ``set_task`` (through any gymnasium wrappers), or a `ConfigError` naming ``owner``."""
    fn = _find_attr(env, "set_task")
    if not callable(fn):
        raise ConfigError(
            f"{owner}: env {env!r} has no set_task(task); it needs a task env (see openended.envs.base.TaskEnvMixin)"
        )
    return fn


class EpisodeHost:
    """Runs the episodes of ``envs`` (one slot each) on tasks from one teacher client (module doc).

    Args:
        envs: task envs, gymnasium or PettingZoo parallel (``set_task`` applied at the next reset).
        client: the teacher client; ``None`` until ``connect`` provides one at the first ``begin``.
        student: the student id written into every `Outcome`.
        episode_id_prefix: outcomes get ``f"{prefix}-{i}-{n}"`` ids (readable, but ~3x the service's
            report cost); ``None`` (default): the client's canonical ids.
        counters: where to count (shared between hosts if given; a fresh one otherwise).
        connect: builds the client on first use (RLlib: inside the EnvRunner process).
        owner: names the host in error messages (``"envpool"``, ``"CurriculumEnv"``).
    """

    def __init__(
        self,
        envs: Sequence[Any],
        client: TaskClient | None = None,
        *,
        student: str = "default",
        episode_id_prefix: str | None = None,
        counters: EpisodeCounters | None = None,
        connect: Callable[[], TaskClient] | None = None,
        owner: str = "episode host",
    ) -> None:
        if client is None and connect is None:
            raise ConfigError(f"{owner}: give a teacher client or a connect() that builds one")
        self.envs = list(envs)
        self.client = client
        self.student = student
        self.episode_id_prefix = episode_id_prefix
        self.counters = counters if counters is not None else EpisodeCounters()
        self._connect = connect
        n = len(self.envs)
        self._set_task = [task_setter(e, owner) for e in self.envs]
        team = [_find_attr(e, "episode_outcomes") for e in self.envs]
        self._team_outcomes: list[Callable[[], list[Outcome]] | None] = [f if callable(f) else None for f in team]
        #: The task of each slot's running (or last) episode.
        self.tasks: list[Task | None] = [None] * n
        #: Return and length of each slot's running episode (team slots: steps only).
        self.returns: list[float] = [0.0] * n
        self.lengths: list[int] = [0] * n
        #: The `Outcome` of each slot's last finished episode (``None`` before its first ends).
        self.last_outcome: list[Outcome | None] = [None] * n
        self._open = [False] * n
        self._episode_no = [0] * n
        self._on_task_change: list[Callable[..., Any]] = []
        self._on_start: list[Callable[..., Any]] = []
        self._on_end: list[Callable[..., Any]] = []
        self._on_step: list[Callable[..., Any]] = []
        self._last_obs: list[Any] = [None] * n
        self.hooks: list[Any] = []

    # ---------------------------------------------------------------------- hooks
    def add_hooks(self, *hooks: Any) -> None:
        """Register hook objects (`EpisodeHooks`: any subset of its methods); fired in the order added."""
        for h in hooks:
            found = {name: fn for name in HOOK_NAMES if callable(fn := getattr(h, name, None))}
            if not found:
                raise ConfigError(f"add_hooks: {h!r} defines none of {', '.join(HOOK_NAMES)}")
            self.hooks.append(h)
            if "task_change" in found:
                self._on_task_change.append(found["task_change"])
            if "episode_start" in found:
                self._on_start.append(found["episode_start"])
            if "episode_end" in found:
                self._on_end.append(found["episode_end"])
            if "transition" in found:
                self._on_step.append(found["transition"])

    # ------------------------------------------------------------------- episodes
    def begin(self, i: int, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, Any]:
        """Start slot ``i``'s next episode on the client's next task; returns the env's ``reset``."""
        if self._open[i] and self.lengths[i] > 0:
            self.counters.abandoned_episodes += 1  # reset before the episode ended: no outcome
        client = self.client
        if client is None:
            assert self._connect is not None, "__init__ requires a client or a connect()"
            client = self.client = self._connect()
        task = client.next_task()
        self._set_task[i](task)
        old = self.tasks[i]
        if self._on_task_change and (old is None or old.id != task.id):
            for fn in self._on_task_change:
                fn(env_index=i, old_task=old, new_task=task)
        obs, info = self.envs[i].reset(seed=seed, options=options)
        self.tasks[i] = task
        self.returns[i] = 0.0
        self.lengths[i] = 0
        self._open[i] = True
        self.counters.resets += 1
        if self._on_start:
            for fn in self._on_start:
                fn(env_index=i, task=task, obs=obs, info=info, seed=seed)
        if self._on_step:
            self._last_obs[i] = obs
        return obs, info

    def step(self, i: int, action: Any) -> tuple[Any, Any, bool, bool, Any]:
        """Step gymnasium slot ``i``; returns the env's own ``step`` result.

        When it ends the episode, the episode's `Outcome` is in ``last_outcome[i]`` (reported
        already).
        """
        result = self.envs[i].step(action)
        self.returns[i] += float(result[1])  # float64 sums, whatever dtype the env pays in
        self.lengths[i] += 1
        if self._on_step:
            task, done = self.tasks[i], bool(result[2] or result[3])
            for fn in self._on_step:
                fn(
                    env_index=i,
                    task=task,
                    obs=self._last_obs[i],
                    action=action,
                    reward=result[1],
                    next_obs=result[0],
                    done=done,
                )
            self._last_obs[i] = result[0]
        if result[2] or result[3]:
            self.end(i, result[4], bool(result[2]))
        return result

    def step_team(self, i: int, actions: Mapping[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        """Step a PettingZoo parallel slot; returns the env's own ``step`` result.

        The episode ends when no agent is left; its `Outcome` is then in ``last_outcome[i]``.
        """
        env = self.envs[i]
        result = env.step(actions)
        self.lengths[i] += 1
        if not env.agents:
            self.end(i, result[4], any(result[2].values()))
        return result

    def end(self, i: int, info: Any, terminated: bool) -> Outcome:
        """Close slot ``i``'s episode: build its `Outcome`, report it, fire ``episode_end``."""
        task = self.tasks[i]
        if task is None:
            raise ConfigError(f"episode host: slot {i} ended an episode it never began (call begin first)")
        extra: dict[str, Any] = {"terminated": bool(terminated)}
        team_outcomes = self._team_outcomes[i]
        if team_outcomes is not None:
            team = team_result(team_outcomes())
            task_id, ret, length, success = team.task_id, team.episode_return, team.length, team.success
            extra["agent_returns"] = team.agent_returns
        else:
            ret, length = self.returns[i], self.lengths[i]
            if isinstance(info, Mapping):
                task_id, success = info.get(INFO_TASK_ID, task.id), info.get(INFO_SUCCESS)
            else:
                task_id, success = task.id, None
        if task_id != task.id:
            self.counters.task_id_mismatches += 1
        client = self.client
        assert client is not None, "begin() connected the client"
        episode_id: str | None
        if self.episode_id_prefix is not None:
            episode_id = f"{self.episode_id_prefix}-{i}-{self._episode_no[i]}"
        else:
            new_id = getattr(client, "new_episode_id", None)
            episode_id = new_id() if new_id is not None else None
        self._episode_no[i] += 1
        outcome = episode_outcome(task, ret, length, success, self.student, episode_id, task_id=str(task_id), **extra)
        self._open[i] = False
        self.last_outcome[i] = outcome
        client.report(outcome)
        self.counters.episodes_reported += 1
        if self._on_end:
            for fn in self._on_end:
                fn(env_index=i, outcome=outcome, info=info)
        return outcome
