"""Self-paced deep RL (SPDL): a Gaussian task distribution pulled toward a target under a KL bound.

Reference: Klink, Abdulsamad, Belousov & Peters, "Self-Paced Deep Reinforcement
Learning" (NeurIPS 2020, arXiv 2004.11812), code ``psclklnk/spdl``, as run by
TeachMyAgent (``teachers/algos/self_paced_teacher.py``).

Algorithm: tasks are drawn from ``p = N(mu, Sigma)`` (full covariance, clipped to the
box). Every ``update_frequency`` episodes (or environment steps), after ``update_offset``,
with the contexts ``c_i`` and values ``v_i`` collected since the last update::

    maximise   mean_i[ p_new(c_i) / p_old(c_i) * v_i ]  -  alpha * KL(p_new || target)
    subject to KL(p_old || p_new) <= max_kl

``alpha = 0`` for the first ``alpha_offset`` updates, then ``zeta * max(mean v, 0) /
KL(p_old || target)`` (``use_avg_performance``). The target is the whole box: mean the
centre, standard deviation ``target_std`` of each range (TMA: 1/4); the start is a
random point with standard deviation ``initial_std`` of each range (TMA: 10 %).

What stands in for the learner's value function: SPDL's ``v_i`` is the student's value
estimate ``V(s_0, c_i)``; this teacher sees only outcomes, so ``v_i`` is the episode's
return, an unbiased Monte-Carlo sample of ``V(s_0, c_i)`` under the policy that played
it (noisier than a learnt critic). Where an outcome carries ``info["value"]`` (a value
estimate sent by the learner) that is used instead.

Other differences from the reference: the step is solved with SciPy's SLSQP on the mean
and the Cholesky factor (log diagonal) in the box's unit coordinates (KL is invariant to
that rescaling) instead of TRPO's conjugate-gradient step with line search; updates can
be counted in episodes (default) or in steps (``update_unit="steps"``, outcome lengths,
TMA's unit); SPDL's and TMA's expert-knowledge gating of the initial/target distribution
is replaced by plain config values.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field
from scipy.optimize import minimize

from openended.errors import ConfigError
from openended.tasks import Box, Outcome, Task, TaskSpace
from openended.teachers.base import BaseTeacher, TeacherConfig
from openended.teachers.gaussian import kl_grads, logpdf, logpdf_grads
from openended.teachers.refit import run_single_threaded
from openended.teachers.views import gmm_view, rounded

__all__ = ["SPDLConfig", "SPDLTeacher", "gaussian_kl"]


def gaussian_kl(mu0: np.ndarray, cov0: np.ndarray, mu1: np.ndarray, cov1: np.ndarray) -> float:
    """``KL(N(mu0, cov0) || N(mu1, cov1))``.

    >>> round(gaussian_kl(np.zeros(1), np.eye(1), np.ones(1), np.eye(1)), 6)
    0.5
    """
    return kl_grads(mu0, np.linalg.cholesky(cov0), mu1, np.linalg.cholesky(cov1))[0]


class SPDLConfig(TeacherConfig):
    """SPDL settings; the ``teachmyagent`` preset is TeachMyAgent's benchmark command."""

    update_unit: Literal["episodes", "steps"] = Field("episodes", description="What update_* count.")
    update_frequency: int = Field(100, ge=1, description="Episodes/steps between updates (TMA: 50,000 steps).")
    update_offset: int = Field(200, ge=0, description="Episodes/steps before the first update (TMA: 200,000 steps).")
    alpha_offset: int = Field(10, ge=0, description="Updates with alpha = 0 (TMA: 10).")
    zeta: float = Field(0.25, ge=0.0, description="alpha = zeta * avg performance / KL (TMA: 0.25).")
    max_kl: float = Field(0.1, gt=0.0, description="Trust region KL(p_old || p_new) (TMA: 0.1).")
    target_std: float = Field(0.25, gt=0.0, description="Target std as a fraction of each range (TMA: 1/4).")
    initial_std: float = Field(0.1, gt=0.0, description="Initial std as a fraction of each range (TMA: 0.1).")
    initial_mean: Literal["random", "centre", "low", "high"] | list[float] = Field(
        "random", description="Initial mean: a uniform point (TMA), the centre, a corner, or explicit params."
    )


# unit-coordinate bounds on the Cholesky diagonal (log): keep densities finite at the optimiser's trial points
_LOG_DIAG = (float(np.log(1e-4)), float(np.log(10.0)))


class SPDLTeacher(BaseTeacher):
    """Self-paced deep RL over a ``Box`` (see the module docstring)."""

    name = "spdl"
    Config = SPDLConfig
    config: SPDLConfig
    space: Box
    space_kinds = ("box",)
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        # TMA benchmark: --sp_update_offset 200000 --sp_update_frequency 50000 --alpha_offset 10
        # --zeta 0.25 --max_kl 0.1 --use_avg_performance (steps of Stump Tracks / Parkour)
        "teachmyagent": {
            "update_unit": "steps",
            "update_offset": 200_000,
            "update_frequency": 50_000,
            "alpha_offset": 10,
            "zeta": 0.25,
            "max_kl": 0.1,
        },
        # the toy learner: start at its easy corner (TMA's "expert knowledge" initial distribution)
        "toy": {"initial_mean": "low"},
    }

    def __init__(self, space: TaskSpace, config: SPDLConfig | None = None) -> None:
        super().__init__(space, config)
        d = self.space.dim
        cfg = self.config
        self.target_mu = np.full(d, 0.5)
        self.target_cov = np.eye(d) * cfg.target_std**2
        self.mu = self._initial_mean()
        self.chol = np.eye(d) * cfg.initial_std
        self.alpha = 0.0
        self.iteration = 0
        self._contexts: list[np.ndarray] = []
        self._values: list[float] = []
        self._counted = 0  # episodes or steps since the start
        self._next_update = cfg.update_offset + cfg.update_frequency

    def _initial_mean(self) -> np.ndarray:
        init, sp = self.config.initial_mean, self.space
        if isinstance(init, list):
            if len(init) != sp.dim:
                raise ConfigError(f"teacher.spdl.initial_mean: {len(init)} values for a {sp.dim}-dimensional space")
            return sp.to_unit(sp.validate(init))
        if init == "random":
            return self.rng.uniform(0.0, 1.0, sp.dim)
        return {"centre": np.full(sp.dim, 0.5), "low": np.zeros(sp.dim), "high": np.ones(sp.dim)}[init]

    @property
    def cov(self) -> np.ndarray:
        """Current covariance in unit coordinates."""
        return self.chol @ self.chol.T

    # ------------------------------------------------------------------ algorithm
    def _sample(self, n: int, student: str) -> list[Task]:
        z = self.rng.standard_normal((n, self.space.dim))
        u = np.clip(self.mu + z @ self.chol.T, 0.0, 1.0)
        return self.space.tasks(self.space.clip(self.space.from_unit(u)), validate=False)

    def _update(self, tasks: list[Task], outcomes: list[Outcome]) -> None:
        steps = self.config.update_unit == "steps"
        for t, o in zip(tasks, outcomes):
            self._contexts.append(self.space.to_unit(t.array))
            v = o.info.get("value") if o.info else None
            self._values.append(float(v) if isinstance(v, (int, float)) else o.episode_return)
            self._counted += (o.length or 1) if steps else 1
        while self._counted >= self._next_update:
            self._next_update += self.config.update_frequency
            if self._contexts:
                self._step(np.asarray(self._contexts), np.asarray(self._values))
            self._contexts, self._values = [], []

    def _step(self, contexts: np.ndarray, values: np.ndarray) -> None:
        """One SPDL update of ``mu`` and ``chol`` from the contexts and values since the last one."""
        cfg, d = self.config, self.space.dim
        self.iteration += 1
        mu0, chol0 = self.mu.copy(), self.chol.copy()
        if self.iteration > cfg.alpha_offset:
            kl_target = max(gaussian_kl(mu0, self.cov, self.target_mu, self.target_cov), 1e-8)
            self.alpha = cfg.zeta * max(float(values.mean()), 0.0) / kl_target
        logp_old = logpdf(contexts, mu0, chol0)
        target_chol = np.linalg.cholesky(self.target_cov)
        tril = np.tril_indices(d)
        diag = tril[0] == tril[1]
        alpha, n = self.alpha, len(values)

        def unpack(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            chol = np.zeros((d, d))
            entries = theta[d:].copy()
            entries[diag] = np.exp(entries[diag])
            chol[tril] = entries
            return theta[:d], chol

        def pack_grad(g_mu: np.ndarray, g_chol: np.ndarray, chol: np.ndarray) -> np.ndarray:
            g = g_chol[tril].copy()
            g[diag] *= np.diag(chol)  # d/d log L_ii = L_ii * d/d L_ii
            return np.concatenate([g_mu, g])

        def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
            """Minus (importance-weighted mean value - alpha * KL(new || target)), and its gradient."""
            mu, chol = unpack(theta)
            lp = logpdf(contexts, mu, chol)
            weights = np.exp(np.minimum(lp - logp_old, 50.0)) * values / n
            _, g_mu, g_chol = logpdf_grads(contexts, mu, chol, weights)
            kl, k_mu, k_chol, _, _ = kl_grads(mu, chol, self.target_mu, target_chol)
            value = -(float(weights.sum()) - alpha * kl)
            return value, -pack_grad(g_mu - alpha * k_mu, g_chol - alpha * k_chol, chol)

        def trust(theta: np.ndarray) -> float:
            mu, chol = unpack(theta)
            return cfg.max_kl - kl_grads(mu0, chol0, mu, chol)[0]

        def trust_jac(theta: np.ndarray) -> np.ndarray:
            mu, chol = unpack(theta)
            _, _, _, g_mu, g_chol = kl_grads(mu0, chol0, mu, chol)
            return -pack_grad(g_mu, g_chol, chol)

        start = chol0[tril].copy()
        start[diag] = np.log(start[diag])
        theta0 = np.concatenate([mu0, start])
        bounds = [(None, None)] * d + [_LOG_DIAG if is_diag else (None, None) for is_diag in diag.tolist()]
        res, _ = run_single_threaded(  # tiny LAPACK calls: a spinning BLAS thread pool made each 30x slower
            lambda: minimize(
                objective,
                theta0,
                jac=True,
                method="SLSQP",
                bounds=bounds,
                constraints=[{"type": "ineq", "fun": trust, "jac": trust_jac}],
                options={"maxiter": 100},
            )
        )
        if np.all(np.isfinite(res.x)) and trust(res.x) >= -1e-6:
            self.mu, self.chol = unpack(res.x)

    def view(self) -> dict:
        """Dashboard view: the context Gaussian in task units, with the target's mean and alpha."""
        span = self.space.high - self.space.low
        cov = self.cov * np.outer(span, span)
        one = np.ones(1)
        return gmm_view(
            self.name,
            self.space,
            self.space.from_unit(self.mu)[None, :],
            cov[None, :, :],
            "p",
            one,
            one,
            one,
            target_mean=rounded(self.space.from_unit(self.target_mu)),
            alpha=float(self.alpha),
        )

    # ------------------------------------------------------------------ persistence
    def _state_dict(self) -> dict:
        return {
            "mu": self.mu.copy(),
            "chol": self.chol.copy(),
            "alpha": self.alpha,
            "iteration": self.iteration,
            "contexts": np.asarray(self._contexts).reshape(-1, self.space.dim),
            "values": np.asarray(self._values),
            "counted": self._counted,
            "next_update": self._next_update,
        }

    def _load_state_dict(self, state: dict) -> None:
        self.mu = np.asarray(state["mu"], dtype=np.float64).copy()
        self.chol = np.asarray(state["chol"], dtype=np.float64).copy()
        self.alpha = float(state["alpha"])
        self.iteration = int(state["iteration"])
        self._contexts = list(np.asarray(state["contexts"], dtype=np.float64).reshape(-1, self.space.dim))
        self._values = [float(v) for v in np.asarray(state["values"]).ravel()]
        self._counted = int(state["counted"])
        self._next_update = int(state["next_update"])

    def _stats(self) -> dict:
        return {
            "spdl_mean": self.space.from_unit(self.mu).tolist(),
            "spdl_std_fraction": np.sqrt(np.diag(self.cov)).tolist(),
            "spdl_alpha": float(self.alpha),
            "spdl_updates": self.iteration,
            "spdl_kl_to_target": gaussian_kl(self.mu, self.cov, self.target_mu, self.target_cov),
        }
