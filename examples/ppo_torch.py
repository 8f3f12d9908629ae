"""PPO in plain PyTorch (CleanRL-style, one file) on an openended family, tasks from the teacher service.

Shows that the teacher service serves any training loop, not only RLlib: the loop asks
its client for the next task at each reset and reports each finished episode's outcome;
the teacher (ALP-GMM by default) picks the next tasks from those outcomes.

    python examples/ppo_torch.py                          # Ray: the service actor + TeacherClient
    python examples/ppo_torch.py --local                  # no Ray: TeacherServiceCore + LocalTeacherClient
    python examples/ppo_torch.py --family stump_tracks --teacher alp_gmm --updates 50

The PPO is CleanRL's ``ppo_continuous_action.py`` in structure (Gaussian policy with a
state-independent log std, GAE, clipped surrogate, value loss, global gradient clipping),
written for this example. It needs a Box action space (Stump / Hexagon Tracks, the
classic BipedalWalker).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from openended.envs import make_env
from openended.envs.base import episode_outcome
from openended.tasks import Task

CURRICULUM = "ppo_torch"


def layer(inp: int, out: int, std: float = np.sqrt(2)) -> nn.Linear:
    """An orthogonally initialised linear layer (CleanRL's ``layer_init``)."""
    lin = nn.Linear(inp, out)
    nn.init.orthogonal_(lin.weight, std)
    nn.init.constant_(lin.bias, 0.0)
    return lin


class Agent(nn.Module):
    """Separate 64x64 tanh actor and critic; Gaussian actions with a learned log std."""

    def __init__(self, obs_dim: int, act_dim: int) -> None:
        super().__init__()
        self.critic = nn.Sequential(layer(obs_dim, 64), nn.Tanh(), layer(64, 64), nn.Tanh(), layer(64, 1, 1.0))
        self.actor_mean = nn.Sequential(
            layer(obs_dim, 64), nn.Tanh(), layer(64, 64), nn.Tanh(), layer(64, act_dim, 0.01)
        )
        self.actor_logstd = nn.Parameter(torch.zeros(1, act_dim))

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """V(s)."""
        return self.critic(obs).squeeze(-1)

    def act(self, obs: torch.Tensor, action: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        """Action (sampled unless given), its log-probability, the entropy and V(s)."""
        mean = self.actor_mean(obs)
        dist = torch.distributions.Normal(mean, self.actor_logstd.expand_as(mean).exp())
        if action is None:
            action = dist.sample()
        return action, dist.log_prob(action).sum(-1), dist.entropy().sum(-1), self.value(obs)


def make_client(args: argparse.Namespace, space: Any) -> tuple[Any, Any]:
    """The teacher client (and what to shut down): the Ray service, or the in-process core with ``--local``."""
    curriculum = {"name": CURRICULUM, "teacher": args.teacher, "space": space, "config": {"seed": args.seed}}
    if args.teacher_config:
        curriculum["config"].update(json.loads(args.teacher_config))
    if args.local:
        from openended.runtime.client import LocalTeacherClient
        from openended.runtime.core import TeacherServiceCore

        core = TeacherServiceCore()
        core.add_curriculum(**curriculum)
        return LocalTeacherClient(core, CURRICULUM, "ppo"), core
    from openended.runtime.client import TeacherClient
    from openended.runtime.local import init_ray
    from openended.runtime.service import start_service

    init_ray(num_cpus=args.num_cpus, namespace="ppo-torch", log_to_driver=False)
    service = start_service("ppo-torch-teacher", "ppo-torch", curricula=[{**curriculum, "space": space.to_dict()}])
    return TeacherClient(service, CURRICULUM, "ppo", namespace="ppo-torch"), service


def teacher_outcomes(args: argparse.Namespace, handle: Any) -> int:
    """How many outcomes the teacher has counted (what the service's snapshot says)."""
    if args.local:
        snap = handle.snapshot()
    else:
        import ray

        snap = ray.get(handle.snapshot.remote())
    return int(snap["curricula"][CURRICULUM]["counters"]["outcomes_accepted"])


def main(argv: list[str] | None = None) -> dict:
    """Train; return a summary (also printed as JSON on the last line)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--family", default="stump_tracks")
    p.add_argument("--teacher", default="alp_gmm")
    p.add_argument("--teacher-config", default='{"fit_rate": 20}', help="JSON teacher config")
    p.add_argument("--local", action="store_true", help="no Ray: the service core in this process")
    p.add_argument("--num-envs", type=int, default=4)
    p.add_argument("--num-steps", type=int, default=256, help="steps per env per update")
    p.add_argument("--updates", type=int, default=20)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--minibatches", type=int, default=4)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--gamma", type=float, default=0.99)
    p.add_argument("--gae-lambda", type=float, default=0.95)
    p.add_argument("--clip", type=float, default=0.2)
    p.add_argument("--vf-coef", type=float, default=0.5)
    p.add_argument("--ent-coef", type=float, default=0.0)
    p.add_argument("--max-grad-norm", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-cpus", type=int, default=2)
    args = p.parse_args(argv)

    torch.manual_seed(args.seed)
    envs = [make_env(args.family) for _ in range(args.num_envs)]
    space = envs[0].task_space()
    client, handle = make_client(args, space)
    obs_dim, act_dim = envs[0].observation_space.shape[0], envs[0].action_space.shape[0]
    low, high = envs[0].action_space.low, envs[0].action_space.high
    agent = Agent(obs_dim, act_dim)
    optim = torch.optim.Adam(agent.parameters(), lr=args.lr, eps=1e-5)

    n, t = args.num_envs, args.num_steps
    tasks: list[Task] = [client.next_task() for _ in range(n)]
    obs = np.zeros((n, obs_dim), np.float32)
    for i, env in enumerate(envs):
        env.set_task(tasks[i])  # the teacher's task for this env's next episode
        obs[i] = env.reset(seed=args.seed + i)[0]
    ep_return, ep_length = np.zeros(n), np.zeros(n, dtype=int)
    episodes, returns, history = 0, [], []
    t0 = time.perf_counter()

    for update in range(1, args.updates + 1):
        b_obs = torch.zeros((t, n, obs_dim))
        b_act = torch.zeros((t, n, act_dim))
        b_logp, b_rew, b_done, b_val = (torch.zeros((t, n)) for _ in range(4))
        for step in range(t):
            with torch.no_grad():
                action, logp, _, value = agent.act(torch.as_tensor(obs))
            b_obs[step], b_act[step], b_logp[step], b_val[step] = torch.as_tensor(obs), action, logp, value
            for i, env in enumerate(envs):
                o, r, terminated, truncated, info = env.step(np.clip(action[i].numpy(), low, high))
                ep_return[i] += r
                ep_length[i] += 1
                b_rew[step, i] = float(r)
                b_done[step, i] = float(terminated or truncated)  # as CleanRL: no bootstrap across episodes
                if terminated or truncated:
                    # the episode's outcome goes back to the teacher; the next task comes from it
                    client.report(episode_outcome(tasks[i], ep_return[i], int(ep_length[i]), info.get("success")))
                    episodes += 1
                    returns.append(float(ep_return[i]))
                    ep_return[i], ep_length[i] = 0.0, 0
                    tasks[i] = client.next_task()
                    env.set_task(tasks[i])
                    o, _ = env.reset()
                obs[i] = o

        with torch.no_grad():  # GAE(gamma, lambda) over the rollout
            next_value = agent.value(torch.as_tensor(obs))
            adv = torch.zeros((t, n))
            running = torch.zeros(n)
            for step in reversed(range(t)):
                nxt = next_value if step == t - 1 else b_val[step + 1]
                not_done = 1.0 - b_done[step]
                delta = b_rew[step] + args.gamma * nxt * not_done - b_val[step]
                running = delta + args.gamma * args.gae_lambda * not_done * running
                adv[step] = running
            ret = adv + b_val

        f_obs, f_act = b_obs.reshape(-1, obs_dim), b_act.reshape(-1, act_dim)
        f_logp, f_adv, f_ret = b_logp.reshape(-1), adv.reshape(-1), ret.reshape(-1)
        batch, mb = t * n, (t * n) // args.minibatches
        for _ in range(args.epochs):
            for idx in torch.randperm(batch).split(mb):
                _, logp, entropy, value = agent.act(f_obs[idx], f_act[idx])
                ratio = (logp - f_logp[idx]).exp()
                a = f_adv[idx]
                a = (a - a.mean()) / (a.std() + 1e-8)
                pg_loss = torch.max(-a * ratio, -a * ratio.clamp(1 - args.clip, 1 + args.clip)).mean()
                v_loss = 0.5 * ((value - f_ret[idx]) ** 2).mean()
                loss = pg_loss + args.vf_coef * v_loss - args.ent_coef * entropy.mean()
                optim.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                optim.step()
        recent = returns[-20:]
        row = {
            "update": update,
            "env_steps": update * batch,
            "episodes": episodes,
            "mean_return_last_20": float(np.mean(recent)) if recent else None,
            "policy_loss": pg_loss.item(),
            "value_loss": v_loss.item(),
        }
        history.append(row)
        print(json.dumps(row), flush=True)

    client.close()  # flushes the outbox: every outcome reaches the teacher
    summary = {
        "updates": args.updates,
        "env_steps": args.updates * t * n,
        "episodes": episodes,
        "teacher_outcomes": teacher_outcomes(args, handle),
        "wall_s": time.perf_counter() - t0,
        "history": history,
    }
    for env in envs:
        env.close()
    if not args.local:
        import ray

        ray.shutdown()
    print(json.dumps({k: v for k, v in summary.items() if k != "history"}), flush=True)
    return summary


if __name__ == "__main__":
    main()
