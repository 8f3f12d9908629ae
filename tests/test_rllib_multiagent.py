"""RLlib glue for PettingZoo task envs (`openended.runtime.rllib_multiagent`): the env creator
builds every registered multi-agent family, and `CurriculumMultiAgentEnv` hosts each episode
as one team outcome through its `EpisodeHost` (hooks, counters), all without starting Ray.
(The whole path under Ray: ``tests/test_run.py::test_multiagent_ppo_run_reports_one_outcome_per_episode``.)"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pettingzoo")
pytest.importorskip("mpe2")
pytest.importorskip("ray.rllib")

from support import HookRecorder, ScriptedClient, counter_delta

from openended.envs import make_env
from openended.envs.multiagent import MultiwalkerTaskEnv, SimpleSpreadTaskEnv, SimpleTagTaskEnv
from openended.errors import ConfigError
from openended.runtime.process_clients import EPISODE_COUNTERS
from openended.runtime.rllib_multiagent import CurriculumMultiAgentEnv, rllib_env_creator
from openended.tasks import Box

FAMILIES = {"multiwalker": MultiwalkerTaskEnv, "simple_spread": SimpleSpreadTaskEnv, "simple_tag": SimpleTagTaskEnv}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_registry_and_rllib_creator_build_the_family(family):
    env = make_env(family)
    env2 = rllib_env_creator(family)({"env_cache_size": 2})
    try:
        assert type(env) is FAMILIES[family] and type(env2) is FAMILIES[family]
        assert isinstance(env.task_space(), Box) and env2.config.env_cache_size == 2
    finally:
        env.close()
        env2.close()


def test_rllib_creator_refuses_unknown_and_single_agent_families():
    with pytest.raises(
        ConfigError,
        match=r"^rllib_env_creator: unknown multi-agent family 'pong'; choose one of "
        r"\['multiwalker', 'self_play', 'simple_spread', 'simple_tag'\]$",
    ):
        rllib_env_creator("pong")
    with pytest.raises(ConfigError, match=r"^rllib_env_creator: unknown multi-agent family 'toy'; choose one of"):
        rllib_env_creator("toy")
    assert rllib_env_creator("MPE-simple-spread").__name__ == "create_mpe_simple_spread"  # aliases work


def test_curriculum_multiagent_env_reports_one_team_outcome_per_episode():
    inner = make_env("simple_spread", max_cycles=4)
    space = inner.task_space()
    two, three = space.task([2, 0.5, -1]), space.task([3, 0.5, -1])
    client = ScriptedClient([two, three])
    env = CurriculumMultiAgentEnv(inner, "no_service", "mpe", student="team")
    env.host.client = client  # in-process: no service, no Ray
    rec = HookRecorder()
    env.host.add_hooks(rec)
    rng = np.random.default_rng(0)
    with counter_delta(EPISODE_COUNTERS) as delta:
        for task in (two, three):
            obs, _ = env.reset(seed=0)
            assert env.task == task and set(obs) == set(env.agents) and len(env.agents) == int(task.params[0])
            while True:
                acts = {a: int(rng.integers(env.action_spaces[a].n)) for a in env.agents}
                _, _, term, trunc, _ = env.step(acts)
                if term["__all__"] or trunc["__all__"]:
                    break
            assert (term["__all__"], trunc["__all__"]) == (False, True)  # MPE episodes end at max_cycles
        env.close()
    assert delta == {"resets": 2, "episodes_reported": 2, "abandoned_episodes": 0, "task_id_mismatches": 0}
    assert [o.task_id for o in client.reported] == [two.id, three.id]
    for o, n in zip(client.reported, (2, 3)):
        assert len(o.info["agent_returns"]) == n and o.length == 4 and o.student_id == "team"
        assert o.episode_return == pytest.approx(np.mean(list(o.info["agent_returns"].values())))
    assert [c[0] for c in rec.calls] == ["task_change", "episode_start", "episode_end"] * 2
