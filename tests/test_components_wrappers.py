"""RLlib's single- and multi-agent wrappers host env-runner components through their
episode host (no Ray: in-process clients): the hooks fire per episode, one team episode is
one episode for components, and closing the env ends the components' block and lifetime."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ray.rllib")

from support import SPACE, CountEnv, ScriptedClient, counter_delta
from test_components import Recorder

from openended.components import Placement
from openended.envs.registry import make_env
from openended.runtime.process_clients import EPISODE_COUNTERS
from openended.runtime.rllib import CurriculumEnv
from openended.runtime.rllib_multiagent import CurriculumMultiAgentEnv


@pytest.fixture(autouse=True)
def _restore_process_counters():
    """These envs count into the process-wide counters later RLlib tests read as totals: put them back."""
    with counter_delta(EPISODE_COUNTERS):
        yield


class RunnerRecorder(Recorder):
    placement = Placement.ENV_RUNNER


SPEC = [{"class": f"{__name__}:RunnerRecorder"}, {"class": "noop"}, {"class": "ewc"}]  # ewc: a learner component


def test_curriculum_env_hosts_env_runner_components():
    a, b = SPACE.task([0.2]), SPACE.task([0.9])
    env = CurriculumEnv(CountEnv(), "no_service", "c", components=SPEC)
    env.host.client = ScriptedClient([a, b])
    assert [type(c).__name__ for c in env.components.components] == ["RunnerRecorder", "NoOpComponent"]
    for _ in range(2):
        env.reset()
        while True:
            *_, term, trunc, _ = env.step(np.zeros(1, np.float32))
            if term or trunc:
                break
    env.close()
    calls = [c[0] for c in env.components.components[0].calls]
    assert calls[:3] == ["on_lifetime_start", "on_block_start", "on_task_start"]
    assert calls.count("on_episode_end") == 2 and calls.count("on_task_end") == 1
    assert calls[-2:] == ["on_block_end", "on_lifetime_end"]


def test_curriculum_multiagent_env_hosts_env_runner_components():
    inner = make_env("simple_spread", max_cycles=3)
    space = inner.task_space()
    env = CurriculumMultiAgentEnv(inner, "no_service", "mpe", components=SPEC)
    env.host.client = ScriptedClient([space.task([2, 0.5, -1]), space.task([3, 0.5, -1])])
    rng = np.random.default_rng(0)
    for _ in range(2):
        env.reset(seed=0)
        while env.agents:
            env.step({a: int(rng.integers(env.action_spaces[a].n)) for a in env.agents})
    env.close()
    calls = [c[0] for c in env.components.components[0].calls]
    assert calls.count("on_episode_start") == calls.count("on_episode_end") == 2  # one per team episode
    assert "on_transitions" not in calls  # team slots have no per-step hook
    assert calls[-1] == "on_lifetime_end"
