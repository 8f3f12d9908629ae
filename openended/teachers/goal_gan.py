"""GoalGAN: a GAN that generates goals of intermediate difficulty, labelled from outcomes.

Reference: Florensa, Held, Geng & Abbeel, "Automatic Goal Generation for Reinforcement
Learning Agents" (ICML 2018, arXiv 1705.06366), as run by TeachMyAgent
(``teachers/algos/goal_gan.py``, taken from ``psclklnk/spdl``).

Algorithm:

1. A goal (a task of the ``Box``) is drawn as: with probability ``p_old`` an old goal from
   the success buffer, else a generator output (uniform before the first GAN training,
   the equivalent of TMA's pretraining on uniform samples), plus Gaussian noise of
   ``state_noise_level`` times each range, clipped. Each goal is handed out
   ``n_rollouts`` times in a row.
2. Once a goal has ``n_rollouts`` outcomes it is labelled *of intermediate difficulty*
   when its success rate lies in ``[0.25, 0.75]`` (``goid_bounds``); goals solved more
   often than 0.75 join the success buffer unless one within ``0.01 * ||range||`` is in it.
3. Every ``update_size`` labelled goals the LSGAN is trained for ``gan_iters`` steps:
   discriminator targets ``b = 1`` for intermediate goals, ``a = -1`` for the others and
   for generated goals; the generator's target is ``c = 0`` (Florensa et al.'s choice).

Training runs off the sampling path on the project's `Refitter` (the same background
refit machinery as ALP-GMM): sampling uses the last installed generator as numpy
weights (`openended.teachers.mlp`), torch is imported only by the fit. Success is the
outcome's flag or ``episode_return >= success_threshold`` (TMA: return > 230).

Presets: ``teachmyagent`` is TMA's benchmark command (noise 0.1, update size 100,
``p_old`` 0.1, 2 rollouts, pretrained samples). Networks are TMA's sizes (generator
[256, 256], discriminator [128, 128]); noise size 4, RMSProp with learning rate 1e-3 and
minibatches of 64 are our choices where our notes do not record TMA's. Differences: goals
are matched to outcomes by task id (TMA assumes strictly sequential sample/update); the
success buffer is bounded (``max_success_buffer``, FIFO).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from openended.tasks import Box, Outcome, Task, TaskSpace
from openended.teachers.base import MAX_ROWS, MAX_WIDTH, BaseTeacher, RefitConfig, TeacherConfig
from openended.teachers.mlp import Weights, forward, from_torch, import_torch, init_mlp, to_torch, torch_forward
from openended.teachers.refit import Refitter
from openended.teachers.success import SuccessConfig, success_of

__all__ = ["GoalGANConfig", "GoalGANTeacher", "train_lsgan"]


class GoalGANConfig(TeacherConfig, SuccessConfig, RefitConfig):
    """GoalGAN settings (see the module docstring for the source of each default)."""

    noise_size: int = Field(4, ge=1, le=MAX_WIDTH, description="Generator input noise dimension (ours).")
    generator_layers: list[int] = Field([256, 256], description="Generator hidden sizes (TMA).")
    discriminator_layers: list[int] = Field([128, 128], description="Discriminator hidden sizes (TMA).")
    state_noise_level: float = Field(0.1, ge=0.0, description="Goal noise std as a fraction of each range (TMA: 0.1).")
    p_old: float = Field(0.2, ge=0.0, le=1.0, description="Share of goals replayed from the success buffer (TMA: 0.1).")
    n_rollouts: int = Field(2, ge=1, le=MAX_ROWS, description="Episodes per goal before it is labelled (TMA: 2).")
    update_size: int = Field(100, ge=1, description="Labelled goals per GAN training (TMA: 100).")
    gan_iters: int = Field(250, ge=1, description="Training steps per GAN training (TMA: 250).")
    batch_size: int = Field(64, ge=1, description="Minibatch size of a training step (ours).")
    lr: float = Field(1e-3, gt=0.0, description="RMSProp learning rate (ours).")
    goid_bounds: tuple[float, float] = Field((0.25, 0.75), description="Success range of intermediate goals.")
    success_distance: float = Field(0.01, ge=0.0, description="Success buffer: min distance / ||range||.")
    max_success_buffer: int = Field(10_000, ge=1, description="Success buffer size (FIFO; TMA: unbounded).")


def train_lsgan(
    gen: Weights,
    disc: Weights,
    goals: np.ndarray,
    labels: np.ndarray,
    seed: int,
    iters: int,
    batch: int,
    lr: float,
    noise_size: int,
) -> dict[str, Any]:
    """Train the goal LSGAN on goals in [-1, 1]^d with 0/1 labels; new weights and last losses."""
    torch = import_torch()
    g = torch.Generator().manual_seed(int(seed))
    gp, dp = to_torch(gen), to_torch(disc)
    opt_g = torch.optim.RMSprop(gp, lr=lr)
    opt_d = torch.optim.RMSprop(dp, lr=lr)
    x_all = torch.tensor(goals, dtype=torch.float32)
    y_all = torch.tensor(labels, dtype=torch.float32)
    loss_d = loss_g = torch.zeros(()).detach()
    for _ in range(iters):
        idx = torch.randint(len(x_all), (batch,), generator=g)
        x, y = x_all[idx], y_all[idx]
        fake = torch_forward(gp, torch.randn(batch, noise_size, generator=g, dtype=torch.float32), tanh_out=True)
        d_real = torch_forward(dp, x).squeeze(-1)
        d_fake = torch_forward(dp, fake.detach()).squeeze(-1)
        loss_d = (y * (d_real - 1) ** 2 + (1 - y) * (d_real + 1) ** 2).mean() + ((d_fake + 1) ** 2).mean()
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        fake = torch_forward(gp, torch.randn(batch, noise_size, generator=g, dtype=torch.float32), tanh_out=True)
        loss_g = (torch_forward(dp, fake).squeeze(-1) ** 2).mean()
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
    return {
        "gen": from_torch(gp),
        "disc": from_torch(dp),
        "loss_d": float(loss_d.detach()),
        "loss_g": float(loss_g.detach()),
    }


class GoalGANTeacher(BaseTeacher):
    """GoalGAN over a ``Box`` (see the module docstring)."""

    name = "goal_gan"
    Config = GoalGANConfig
    config: GoalGANConfig
    space: Box
    space_kinds = ("box",)
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        # TMA benchmark: --state_noise_level 0.1 --gg_update_size 100 --p_old 0.1 --n_rollouts 2
        # --use_pretrained_samples; success = episodic reward > 230
        "teachmyagent": {
            "state_noise_level": 0.1,
            "update_size": 100,
            "p_old": 0.1,
            "n_rollouts": 2,
            "success_threshold": 230.0,
        },
    }

    CHECK_OVERRIDES: ClassVar[dict[str, Any]] = {"gan_iters": 3, "generator_layers": [8], "discriminator_layers": [8]}

    def __init__(self, space: TaskSpace, config: GoalGANConfig | None = None) -> None:
        super().__init__(space, config)
        cfg, d = self.config, self.space.dim
        self.gen = init_mlp([cfg.noise_size, *cfg.generator_layers, d], self.rng)
        self.disc = init_mlp([d, *cfg.discriminator_layers, 1], self.rng)
        self.trained = 0
        self._losses = (0.0, 0.0)
        self._queue: deque[Task] = deque()  # goals still to be handed out again
        self._pending: OrderedDict[str, list] = OrderedDict()  # goal id -> [unit goal, outcomes, successes]
        self._labelled: list[tuple[np.ndarray, float]] = []
        self.success_buffer: deque[np.ndarray] = deque(maxlen=cfg.max_success_buffer)
        self._n_goid = 0
        self.refitter = Refitter(self._install, cfg.refit_executor, cfg.refit_swap, lag=cfg.refit_lag)

    def _install(self, fit: dict[str, Any]) -> None:
        self.gen = [(np.asarray(w, dtype=np.float64), np.asarray(b, dtype=np.float64)) for w, b in fit["gen"]]
        self.disc = [(np.asarray(w, dtype=np.float64), np.asarray(b, dtype=np.float64)) for w, b in fit["disc"]]
        self._losses = (float(fit["loss_d"]), float(fit["loss_g"]))
        self.trained += 1

    # ------------------------------------------------------------------ algorithm
    def _new_goals(self, n: int) -> tuple[np.ndarray, list[str]]:
        """``n`` goals in unit coordinates and their origins."""
        cfg, d = self.config, self.space.dim
        old = self.rng.random(n) < cfg.p_old if self.success_buffer else np.zeros(n, dtype=bool)
        u = np.empty((n, d))
        n_old = int(old.sum())
        if n_old:
            buf = self.success_buffer
            u[old] = np.array([buf[i] for i in self.rng.integers(0, len(buf), n_old).tolist()])
        fresh = ~old
        if self.trained:
            z = self.rng.standard_normal((n - n_old, cfg.noise_size))
            u[fresh] = (forward(self.gen, z, tanh_out=True) + 1.0) / 2.0
        else:
            u[fresh] = self.rng.uniform(0.0, 1.0, (n - n_old, d))
        u += self.rng.normal(0.0, cfg.state_noise_level, u.shape)
        origins = np.where(old, "old", "generated" if self.trained else "uniform").tolist()
        return np.clip(u, 0.0, 1.0), origins

    def _sample(self, n: int, student: str) -> list[Task]:
        out: list[Task] = []
        while self._queue and len(out) < n:
            out.append(self._queue.popleft())
        rest = n - len(out)
        if rest:
            k = self.config.n_rollouts
            n_goals = -(-rest // k)
            u, origins = self._new_goals(n_goals)
            goals = self.space.tasks(self.space.clip(self.space.from_unit(u)), origin=origins, validate=False)
            for g in goals:
                self._pending[g.id] = [self.space.to_unit(g.array), 0, 0]
            while len(self._pending) > self.config.max_tracked_tasks:
                self._pending.popitem(last=False)
            repeated = [g for g in goals for _ in range(k)]
            out.extend(repeated[:rest])
            self._queue.extend(repeated[rest:])
        return out

    def _update(self, tasks: list[Task], outcomes: list[Outcome]) -> None:
        cfg = self.config
        lo, hi = cfg.goid_bounds
        radius = cfg.success_distance * np.sqrt(self.space.dim)  # ||range|| in unit coordinates
        for t, o in zip(tasks, outcomes):
            row = self._pending.get(t.id)
            if row is None:
                continue
            row[1] += 1
            row[2] += int(success_of(o, cfg.success_threshold))
            if row[1] < cfg.n_rollouts:
                continue
            del self._pending[t.id]
            rate = row[2] / row[1]
            goid = lo <= rate <= hi
            self._n_goid += int(goid)
            self._labelled.append((row[0], float(goid)))
            if rate > hi and self._far_from_buffer(row[0], radius):
                self.success_buffer.append(row[0])
        if len(self._labelled) >= cfg.update_size:
            goals = np.array([g for g, _ in self._labelled]) * 2.0 - 1.0
            labels = np.array([y for _, y in self._labelled])
            self._labelled = []
            seed = int(self.rng.integers(2**31))
            assert self.refitter is not None
            self.refitter.submit(
                train_lsgan,
                self.gen,
                self.disc,
                goals,
                labels,
                seed,
                cfg.gan_iters,
                cfg.batch_size,
                cfg.lr,
                cfg.noise_size,
            )

    def _far_from_buffer(self, u: np.ndarray, radius: float) -> bool:
        if not self.success_buffer:
            return True
        buf = np.asarray(self.success_buffer)
        return bool(np.min(np.linalg.norm(buf - u, axis=1)) > radius)

    # ------------------------------------------------------------------ persistence
    def _state_dict(self) -> dict:
        return {
            "gen": [[w, b] for w, b in self.gen],
            "disc": [[w, b] for w, b in self.disc],
            "trained": self.trained,
            "losses": list(self._losses),
            "queue": [t.to_dict() for t in self._queue],
            "pending": [[k, v[0], v[1], v[2]] for k, v in self._pending.items()],
            "labelled": [[g, y] for g, y in self._labelled],
            "success_buffer": np.asarray(self.success_buffer).reshape(-1, self.space.dim),
            "n_goid": self._n_goid,
        }

    def _load_state_dict(self, state: dict) -> None:
        trained = int(state["trained"])
        self._install({"gen": state["gen"], "disc": state["disc"], "loss_d": 0.0, "loss_g": 0.0})
        self.trained = trained
        self._losses = (float(state["losses"][0]), float(state["losses"][1]))
        self._queue = deque(Task.from_dict(d) for d in state["queue"])
        self._pending = OrderedDict(
            (str(k), [np.asarray(u, dtype=np.float64), int(a), int(s)]) for k, u, a, s in state["pending"]
        )
        self._labelled = [(np.asarray(g, dtype=np.float64), float(y)) for g, y in state["labelled"]]
        self.success_buffer.clear()
        self.success_buffer.extend(np.asarray(state["success_buffer"], dtype=np.float64).reshape(-1, self.space.dim))
        self._n_goid = int(state["n_goid"])

    def _stats(self) -> dict:
        return {
            "gan_trainings": self.trained,
            "gan_loss_d": self._losses[0],
            "gan_loss_g": self._losses[1],
            "goid_labelled": self._n_goid,
            "success_buffer": len(self.success_buffer),
            "goals_pending": len(self._pending),
        }
