"""The episode host (`openended.runtime.episodes`): one env, a vector (EnvPoolCore) and a team
run their episodes through it; the outcome names the task the env actually ran; abandoned
episodes are counted; lifecycle hooks fire in the documented order with the documented
arguments; the in-process pool imports without Ray."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from support import SPACE, CountEnv, EndsOnly, HookRecorder, ScriptedClient, episode_length

from openended.errors import ConfigError
from openended.runtime.envpool import EnvPoolCore
from openended.runtime.episodes import EpisodeCounters, EpisodeHost
from openended.tasks import Outcome, Task


def tasks(*levels: float) -> list[Task]:
    return [SPACE.task([lv]) for lv in levels]


def run_episode(host: EpisodeHost, i: int = 0) -> Outcome:
    host.begin(i)
    while True:
        _, _, term, trunc, _ = host.step(i, np.zeros(1, np.float32))
        if term or trunc:
            outcome = host.last_outcome[i]
            assert outcome is not None and host.client.reported[-1] is outcome  # type: ignore[union-attr]
            return outcome


# --------------------------------------------------------------------------- one env
def test_single_env_hooks_fire_in_order_and_outcomes_carry_the_task_run():
    a, b = tasks(0.2, 0.8)
    client = ScriptedClient([a, a, b])
    host = EpisodeHost([CountEnv()], client, student="s", episode_id_prefix="p")
    rec, ends = HookRecorder(), EndsOnly()
    host.add_hooks(rec, ends)
    outs = [run_episode(host) for _ in range(3)]
    assert rec.calls == [
        ("task_change", 0, None, a.id),
        ("episode_start", 0, a.id),
        ("episode_end", 0, a.id),
        ("episode_start", 0, a.id),  # same task again: no task_change
        ("episode_end", 0, a.id),
        ("task_change", 0, a.id, b.id),
        ("episode_start", 0, b.id),
        ("episode_end", 0, b.id),
    ]
    assert ends.outcomes == outs == client.reported  # hooks see what the teacher got, after it got it
    for o, t in zip(outs, [a, a, b]):
        n = episode_length(t.params[0])
        assert (o.task_id, o.length, o.student_id) == (t.id, n, "s")
        assert o.episode_return == pytest.approx(n * t.params[0])
        assert o.success is (t.params[0] > 0.5) and o.info == {"terminated": False}
    assert [o.episode_id for o in outs] == ["p-0-0", "p-0-1", "p-0-2"]
    assert host.counters == EpisodeCounters(resets=3, episodes_reported=3)


def test_abandoned_episodes_are_counted_and_get_no_outcome():
    client = ScriptedClient(tasks(0.9))
    host = EpisodeHost([CountEnv()], client)  # no prefix: ids are left to the client
    ends = EndsOnly()
    host.add_hooks(ends)
    host.begin(0)
    host.begin(0)  # no step yet: nothing abandoned
    host.step(0, np.zeros(1, np.float32))
    host.begin(0)  # one step in: abandoned
    out = run_episode(host)
    assert host.counters.abandoned_episodes == 1 and host.counters.resets == 4
    assert client.reported == ends.outcomes == [out] and out.episode_id is None
    assert out.length == episode_length(0.9)  # the abandoned step is not in the next episode


class RunsAnotherTask(CountEnv):
    """Reports a task id other than the one it was given (an env that ignored set_task)."""

    def step(self, action: Any):
        obs, r, term, trunc, info = super().step(action)
        return obs, r, term, trunc, {**info, "task_id": "0123456789abcdef"}


def test_outcome_names_the_task_the_env_reported_and_counts_the_mismatch():
    client = ScriptedClient(tasks(0.3))
    host = EpisodeHost([RunsAnotherTask()], client)
    assert run_episode(host).task_id == "0123456789abcdef"
    assert host.counters.task_id_mismatches == 1


class PaysFloat32(CountEnv):
    """1,000-step episodes paying ``np.float32(0.1)`` a step (procgen-style float32 rewards)."""

    def step(self, action: Any):
        self._t += 1
        return np.zeros(2, np.float32), np.float32(0.1), False, self._t >= 1000, {"task_id": self._current_task.id}


def test_returns_are_summed_in_float64_whatever_the_reward_dtype():
    out = run_episode(EpisodeHost([PaysFloat32()], ScriptedClient(tasks(0.5))))
    exact = sum(float(np.float32(0.1)) for _ in range(1000))
    assert out.length == 1000 and out.episode_return == pytest.approx(exact, abs=1e-9)
    assert abs(float(np.float32(0.0) + sum(np.float32(0.1) for _ in range(1000))) - exact) > 1e-6  # float32 would not


def test_hosts_need_a_task_env_a_client_and_hooks_that_hook():
    import gymnasium as gym

    with pytest.raises(ConfigError, match=r"^CurriculumEnv: env .* has no set_task\(task\)"):
        EpisodeHost([gym.make("CartPole-v1")], ScriptedClient(tasks(0.1)), owner="CurriculumEnv")
    with pytest.raises(ConfigError, match="give a teacher client or a connect"):
        EpisodeHost([CountEnv()])
    host = EpisodeHost([CountEnv()], ScriptedClient(tasks(0.1)))
    with pytest.raises(ConfigError, match="defines none of task_change, episode_start, transition, episode_end"):
        host.add_hooks(object())


def test_connect_builds_the_client_at_the_first_reset():
    made: list[ScriptedClient] = []

    def connect() -> ScriptedClient:
        made.append(ScriptedClient(tasks(0.4)))
        return made[-1]

    host = EpisodeHost([CountEnv()], connect=connect)
    assert made == []
    run_episode(host)
    run_episode(host)
    assert len(made) == 1 and len(made[0].reported) == 2


class NumberingClient(ScriptedClient):
    """A scripted client that also hands out episode ids (as `TeacherClient.new_episode_id` does)."""

    def __init__(self, tasks: list[Task]) -> None:
        super().__init__(tasks)
        self.ids_given: list[str] = []

    def new_episode_id(self) -> str:
        self.ids_given.append(f"{len(self.ids_given):016x}")
        return self.ids_given[-1]


# ------------------------------------------------------------------------ a vector
def test_vector_hooks_per_env_index_in_order_with_the_clients_episode_ids():
    client = NumberingClient(tasks(0.0, 0.5, 0.9, 0.5))
    pool = EnvPoolCore(CountEnv, {}, 3, client, steps_per_call=20, seed=0, pool_id="pool")
    rec = HookRecorder()
    pool.host.add_hooks(rec)
    pool.step()
    pool.close()
    assert pool.total_episodes == len(client.reported) > 3
    for i in range(3):
        mine = [c for c in rec.calls if c[1] == i]
        starts = [c for c in mine if c[0] == "episode_start"]
        assert starts and mine[0][0] == "task_change"
        running = None
        for c in mine:
            if c[0] == "task_change":
                assert running is None and c[2] != c[3]  # between episodes, and only on a new task
            elif c[0] == "episode_start":
                assert running is None
                running = c[2]
            else:
                assert c[2] == running  # the outcome names the task its episode started on
                running = None
        ends = [c for c in mine if c[0] == "episode_end"]
        assert ends
    # each outcome was built with the id the client handed out for it, in episode-end order
    assert [o.episode_id for o in client.reported] == client.ids_given


def test_a_pool_on_a_real_client_sends_canonical_episode_ids_the_service_takes_as_a_column():
    """Env pools' outcomes carry the client's 16-hex-digit ids (token + counter), built into
    each outcome once, and their infos go as columns: the forms the service takes fastest."""
    from openended.runtime.client import LocalTeacherClient
    from openended.runtime.codec import encode_outcomes
    from openended.runtime.core import TeacherServiceCore
    from openended.runtime.info_columns import InfoColumns

    core = TeacherServiceCore()
    core.add_curriculum("c", "random", SPACE)
    client = LocalTeacherClient(core, "c", flush_every=1_000_000)  # keep the outbox to inspect it
    pool = EnvPoolCore(CountEnv, {}, 3, client, steps_per_call=40, seed=0)
    pool.step()
    outbox = list(client._outbox)
    last = [o for o in pool.host.last_outcome if o is not None]
    assert last and all(any(o is x for x in outbox) for o in last)  # reported as built: no copy to add an id
    ids = [o.episode_id for o in outbox]
    assert len(set(ids)) == len(ids) and all(len(i) == 16 and i.startswith(client.token) for i in ids)
    batch = encode_outcomes(outbox)
    assert isinstance(batch.episode_ids, np.ndarray)  # the uint64 column, not a list
    assert isinstance(batch.infos, InfoColumns) and batch.infos.keys == ("terminated",)  # not 1 dict per row
    assert pool.stats()["client"]["episode_id_token"] == client.token
    pool.close()
    counters = core.snapshot()["curricula"]["c"]["counters"]
    assert counters["outcomes_accepted"] == len(ids) and counters["outcomes_without_episode_id"] == 0


def test_no_hooks_means_no_hook_calls_on_the_hot_path():
    pool = EnvPoolCore(CountEnv, {}, 2, ScriptedClient(tasks(0.2, 0.7)), steps_per_call=10)
    pool.step()
    h = pool.host
    assert h.hooks == [] and (h._on_start, h._on_end, h._on_task_change) == ([], [], [])
    pool.close()


# ------------------------------------------------------------------------- a team
def test_team_episode_is_one_outcome_aggregated_over_agents_with_hooks():
    pytest.importorskip("mpe2")
    from openended.envs import make_env

    env = make_env("simple_spread", max_cycles=5)
    space = env.task_space()
    two, three = space.task([2, 0.5, -1]), space.task([3, 0.5, 1])
    client = ScriptedClient([two, three])
    host = EpisodeHost([env], client, student="team")
    rec = HookRecorder()
    host.add_hooks(rec)
    rng = np.random.default_rng(0)
    outs = []
    for _ in range(2):
        host.begin(0, seed=1)
        while env.agents:
            acts = {a: int(rng.integers(env.action_space(a).n)) for a in env.agents}
            host.step_team(0, acts)
        out = host.last_outcome[0]
        agents = env.episode_outcomes()
        assert out.info["agent_returns"] == {o.student_id: o.episode_return for o in agents}
        assert out.episode_return == pytest.approx(np.mean([o.episode_return for o in agents]))
        assert out.length == 5 and out.student_id == "team" and out.info["terminated"] is False
        known = [o.success for o in agents]
        assert out.success is all(known)
        outs.append(out)
    env.close()
    assert [o.task_id for o in outs] == [two.id, three.id] and client.reported == outs
    assert [len(o.info["agent_returns"]) for o in outs] == [2, 3]
    assert rec.calls == [
        ("task_change", 0, None, two.id),
        ("episode_start", 0, two.id),
        ("episode_end", 0, two.id),
        ("task_change", 0, two.id, three.id),
        ("episode_start", 0, three.id),
        ("episode_end", 0, three.id),
    ]


def test_pool_of_teams_reports_the_team_aggregate():
    pytest.importorskip("mpe2")
    from openended.envs import make_env

    space = make_env("simple_spread").task_space()
    client = ScriptedClient([space.task([2, 0.5, -1]), space.task([4, 0.5, -1])])
    n_agents = {t.id: int(t.params[0]) for t in client._tasks}
    pool = EnvPoolCore("simple_spread", {"max_cycles": 5}, 2, client, steps_per_call=12, seed=0)
    ends = EndsOnly()
    pool.host.add_hooks(ends)
    pool.step()
    pool.close()
    assert len(ends.outcomes) == pool.total_episodes == 4  # 2 envs x 12 steps / 5-step episodes
    for o in ends.outcomes:
        returns = list(o.info["agent_returns"].values())
        assert o.episode_return == pytest.approx(np.mean(returns)) and o.length == 5
        assert len(returns) == n_agents[o.task_id]


# --------------------------------------------------------------------- Ray-free core
def test_envpool_core_and_episode_host_import_and_run_without_ray():
    code = (
        "import sys\n"
        "from openended.runtime.envpool import EnvPoolCore\n"
        "from openended.runtime.client import LocalTeacherClient\n"
        "from openended.runtime.service import TeacherServiceCore\n"
        "from openended.tasks import Box\n"
        "core = TeacherServiceCore()\n"
        "core.add_curriculum('toy', 'random', Box([0, 0], [1, 1]), config={'seed': 0})\n"
        "pool = EnvPoolCore('toy', {}, 2, LocalTeacherClient(core, 'toy'), steps_per_call=5)\n"
        "assert pool.step()['episodes'] == 10\n"
        "pool.close()\n"
        "loaded = sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.'))\n"
        "assert not loaded, loaded\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
