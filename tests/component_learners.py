"""A small real learner for the component tests (not collected: no ``test_`` prefix).

`RuleEnv`: one-step episodes; the observation is 4 Gaussian features and a one-hot cue of
the task's rule; the reward is 1 when the action is the rule's label of the features.
The two rules agree on half the inputs and disagree on the other half, so a network
trained on rule B after rule A forgets A: the setting EWC and replay exist for.

`PGLearner`: REINFORCE with a mean baseline on a 6-32-2 MLP; its episodes run through an
`EpisodeHost` with an env-runner `ComponentHost`, its updates add the learner host's loss
terms, and it exposes task boundaries and sleep like a run's learner does.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from support import ScriptedClient

from openended.components import Component, ComponentHost, EventBus, Placement, SleepBudget, Stores
from openended.envs.base import TaskEnvMixin
from openended.runtime.episodes import EpisodeHost
from openended.tasks import Box, Task

torch.set_num_threads(1)  # tiny tensors: extra threads only contend on a shared machine

RULES = Box([0.0], [1.0], names=["rule"], name="rule")
RULE_A, RULE_B = RULES.task([0.0]), RULES.task([1.0])
W = np.array([[1.0, 1.0, 0.0, 0.0], [1.0, -1.0, 0.0, 0.0]])


def rule_of(task: Task) -> int:
    return int(task.params[0] >= 0.5)


class RuleEnv(TaskEnvMixin, gym.Env):
    def __init__(self, seed: int = 0) -> None:
        self._space = RULES
        self.observation_space = gym.spaces.Box(-10.0, 10.0, (6,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self._rng = np.random.default_rng(seed)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        task = self._task_for_reset(options)
        self._rule = rule_of(task)
        self._x = self._rng.normal(size=4)
        cue = np.eye(2)[self._rule]
        return np.concatenate([self._x, cue]).astype(np.float32), {"task_id": task.id}

    def step(self, action: Any):
        label = int(self._x @ W[self._rule] > 0)
        reward = float(int(action) == label)
        info = {"task_id": self._current_task.id, "success": reward > 0}
        return np.zeros(6, np.float32), reward, True, False, info


class PGLearner:
    def __init__(
        self,
        seed: int = 0,
        env_components: list[Component] | None = None,
        learner_components: list[Component] | None = None,
        n_envs: int = 32,
    ) -> None:
        torch.manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.net = torch.nn.Sequential(torch.nn.Linear(6, 32), torch.nn.Tanh(), torch.nn.Linear(32, 2))
        self.opt = torch.optim.Adam(self.net.parameters(), lr=0.02)
        self.bus, self.stores = EventBus(), Stores()
        self.env_host = ComponentHost(
            env_components or [], bus=self.bus, stores=self.stores, placement=Placement.ENV_RUNNER
        )
        self.learner_host = ComponentHost(
            learner_components or [], bus=self.bus, stores=self.stores, placement=Placement.LEARNER
        )
        self.client = ScriptedClient([RULE_A])
        self.episodes = EpisodeHost([RuleEnv(seed * 100 + i) for i in range(n_envs)], self.client)
        hooks = self.env_host.episode_hooks()
        if hooks is not None:
            self.episodes.add_hooks(hooks)
        self.task: Task | None = None
        for host in (self.env_host, self.learner_host):
            host.lifetime_start()

    def train(self, task: Task, updates: int, announce: bool = True) -> None:
        """``updates`` policy-gradient steps on ``task`` (``announce``: tell the learner host at a change)."""
        if announce and self.task is not None and task.id != self.task.id:
            self.learner_host.task_end(self.task, task, module=self.net)
        if announce and (self.task is None or task.id != self.task.id):
            self.learner_host.task_start(task, self.task, module=self.net)
        self.task = task
        self.client._tasks = [task]
        n = len(self.episodes.envs)
        for _ in range(updates):
            obs = torch.as_tensor(np.stack([self.episodes.begin(i)[0] for i in range(n)]))
            logits = self.net(obs)
            dist = torch.distributions.Categorical(logits=logits)
            actions = dist.sample()
            rewards = torch.as_tensor([self.episodes.step(i, int(a))[1] for i, a in enumerate(actions)])
            adv = rewards - rewards.mean()
            loss = -(adv * dist.log_prob(actions)).mean()
            batch = {"obs": obs, "actions": actions}
            for term in self.learner_host.loss_terms(module=self.net, batch=batch, fwd_out={"logits": logits}):
                loss = loss + term
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()

    def evaluate(self, task: Task, rounds: int = 4) -> dict:
        """Greedy episodes of ``task`` through the episode host (hooks fire; no update): mean reward."""
        self.client._tasks = [task]
        n, rewards = len(self.episodes.envs), []
        for _ in range(rounds):
            obs = torch.as_tensor(np.stack([self.episodes.begin(i)[0] for i in range(n)]))
            with torch.no_grad():
                actions = self.net(obs).argmax(-1)
            rewards += [self.episodes.step(i, int(a))[1] for i, a in enumerate(actions)]
        if self.task is not None:
            self.client._tasks = [self.task]
        return {"accuracy": float(np.mean(rewards)), "episodes": len(rewards)}

    def sleep(self, steps: int) -> int:
        return self.learner_host.sleep(SleepBudget(steps=steps), module=self.net)

    def accuracy(self, task: Task, n: int = 2000) -> float:
        """Greedy accuracy on fresh inputs of ``task``'s rule (no hooks, no reports)."""
        rule = rule_of(task)
        x = self.rng.normal(size=(n, 4))
        obs = np.concatenate([x, np.tile(np.eye(2)[rule], (n, 1))], axis=1)
        with torch.no_grad():
            pred = self.net(torch.as_tensor(obs, dtype=torch.float32)).argmax(-1).numpy()
        return float(np.mean(pred == (x @ W[rule] > 0)))
