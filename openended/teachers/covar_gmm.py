"""Covar-GMM: sample tasks in mixture components whose return grows with time.

Paper: Moulin-Frier, Nguyen, Oudeyer, "Self-organization of early vocal development in
infants and machines: the role of intrinsic motivation", Frontiers in Psychology 2013
(IGMM); used as a baseline by Portelas et al., CoRL 2019, arXiv:1910.07224.
Anchor code: flowersteam/teachDeepRL ``teachDRL/teachers/algos/covar_gmm.py`` (747cda2) and
flowersteam/TeachMyAgent ``TeachMyAgent/teachers/algos/covar_gmm.py`` (ce15344).

Presets:
    ``teachdeeprl``      -- TDRL defaults, reference mode: fit every 250 episodes, 20 %
                            random, k = 2..10, AIC, returns rescaled from (-150, 350) to
                            [0, 1] (TDRL's TeacherController rescales every teacher's reward).
                            TDRL builds its GMMs without ``random_state``, which makes its
                            runs irreproducible; we pass the teacher seed (as TMA does).
    ``teachdeeprl_toy``  -- the same on raw returns, as TDRL's ``toy_env.py`` drives it.
    ``teachmyagent``     -- TMA benchmark: fit every 150, 10 % random, k = 2..14, raw returns.

Algorithm (REFERENCE, per episode):
    append ``[task, t, r]`` with ``t = np.arange(0, 1, 1/fit_rate)[n % fit_rate]`` (the
    episode's relative position in the current fit batch, ``n`` episodes seen before it);
    after every ``fit_rate``-th episode fit GMMs (k in ``np.arange(k_min, k_max)``, full
    covariance, lowest AIC) on the last ``fit_rate`` rows. A component's learning progress
    is ``max(0, cov[t, r])`` (``abs`` with ``absolute_lp``). Sampling: uniform during the
    first ``fit_rate`` episodes and with probability ``random_ratio``; otherwise a
    component ∝ its LP (uniform if all are 0), a Gaussian draw, (t, r) dropped, clipped.

Fast mode (the default) changes only the machinery, as for ALP-GMM (``# SPEEDUP:``): the
batched numpy EM of `gmm.fit_fast` (sklearn's algorithm, every k stacked) off the sampling
path, a fit that would be replaced unseen (several due in one ``update``) skipped, tasks
drawn in vectorised blocks from precomputed Cholesky factors, no float32 cast.

``variant="improved"`` (a flagged deviation, fast or reference mode): components are drawn
with probability proportional to the square root of their LP instead of the LP itself.
Why: the time-return covariance is heavy-tailed across components (it scales with each
component's spread in return), so proportional choice pours most episodes into one or two
components while other unlocked regions also progress; the square root keeps the
preference for progress but spreads episodes over more of the learning frontier.

Measured on TDRL's toy env (sample(1)/update(1) per episode, % of cells mastered, fast
mode, seeds 0-7; reference preset seeds 0-2):

    ============================  ======  ======  ======
    teacher                       10k     15k     20k
    ============================  ======  ======  ======
    reference (teachdeeprl_toy)   32.7    48.0    68.3
    fast, original                30.1    48.3    68.3
    fast, improved (sqrt LP)      33.8    52.8    71.1
    ============================  ======  ======  ======

The original code measured 30.3 / 47.6 / 66.6. Variants that did worse and were dropped:
LP^2 (55.7 at 20k), LP x weight (58.7), the return-on-time slope cov[t,r]/var[t] (59.7),
correlation (62.3), sampling tasks conditioned on t = 1 (59.3), uniform over positive-LP
components (66.3).
"""
from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import ConfigDict, Field

from openended.tasks import Box, Outcome, Task
from openended.teachers.base import BaseTeacher, RefitConfig, TeacherConfig
from openended.teachers.gmm import (
    FitWindows,
    GMMTeacherConfig,
    Mixture,
    Prefetch,
    component_probs,
    fit_fast,
    fit_reference,
    proportional_choice,
    sample_box_mixture,
    tasks_with_origin,
)
from openended.teachers.refit import Refitter

__all__ = ["CovarGMMTeacher", "CovarGMMConfig"]


class CovarGMMConfig(TeacherConfig, RefitConfig, GMMTeacherConfig):
    """Covar-GMM settings (defaults: fast mode; see ``PRESETS`` for the published ones)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    variant: Literal["original", "improved"] = Field(
        "original", description="original: components drawn ∝ LP; improved: ∝ sqrt(LP) (flagged deviation).")
    absolute_lp: bool = Field(False, description="LP = |cov[t, r]| instead of max(0, cov[t, r]).")


class CovarGMMTeacher(BaseTeacher):
    """Covar-GMM on a `Box` task space (see the module docstring)."""

    name = "covar_gmm"
    Config = CovarGMMConfig
    space_kinds = ("box",)
    PRESETS = {
        "teachdeeprl": {"mode": "reference", "fit_rate": 250, "random_ratio": 0.2, "k_min": 2, "k_max": 11,
                        "criterion": "aic", "absolute_lp": False, "return_bounds": (-150.0, 350.0),
                        "refit_executor": "inline"},
        "teachdeeprl_toy": {"mode": "reference", "fit_rate": 250, "random_ratio": 0.2, "k_min": 2, "k_max": 11,
                            "criterion": "aic", "absolute_lp": False, "return_bounds": None,
                            "refit_executor": "inline"},
        "teachmyagent": {"mode": "reference", "fit_rate": 150, "random_ratio": 0.1, "k_min": 2, "k_max": 15,
                         "criterion": "aic", "absolute_lp": False, "return_bounds": None,
                         "refit_executor": "inline"},
    }

    config: CovarGMMConfig
    space: Box

    def __init__(self, space: Box, config: CovarGMMConfig | None = None) -> None:
        super().__init__(space, config)
        cfg = self.config
        self._ks = [int(k) for k in np.arange(cfg.k_min, cfg.k_max)]
        # REFERENCE: the time stamps, computed as TDRL does (float arange, indexed n % fit_rate).
        self._all_times = np.arange(0, 1, 1 / cfg.fit_rate)
        self._window = FitWindows(cfg.fit_rate, space.dim + 2)
        self._n_episodes = 0
        self._mixture: Mixture | None = None
        self._probs: np.ndarray | None = None
        self._lp: np.ndarray | None = None
        self._fit_info: dict[str, Any] = {}
        self._n_fits = 0
        self._n_submitted = 0
        # The fits' seed travels with the state: a teacher built with another seed that
        # loads this state continues exactly (its own rng is restored by BaseTeacher).
        self._fit_seed = int(cfg.seed)
        self._prefetch = Prefetch(space, cfg.prefetch if cfg.mode == "fast" else 0)
        self.refitter = Refitter(self._install, executor=cfg.refit_executor, swap=cfg.refit_swap, lag=cfg.refit_lag)

    # ------------------------------------------------------------------- sampling
    def _sample(self, n: int, student: str) -> list[Task]:
        if self.config.mode == "reference":
            return self._sample_reference(n)
        # SPEEDUP: tasks come in vectorised blocks from precomputed Cholesky factors.
        return self._prefetch.take(n, self._draw)

    def _draw(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        bootstrap = self._n_episodes < self.config.fit_rate
        return sample_box_mixture(self.rng, self._mixture, self._probs, n, self.space.low, self.space.high,
                                  self.config.random_ratio, bootstrap)

    def _sample_reference(self, n: int) -> list[Task]:
        """REFERENCE: TDRL ``sample_task`` once per task, RNG calls in the original order."""
        cfg, low, high = self.config, self.space.low, self.space.high
        rows, uni = [], []
        for _ in range(n):
            if self._n_episodes < cfg.fit_rate or self.rng.random() < cfg.random_ratio or self._mixture is None:
                x = self.rng.uniform(low, high)  # gym Box.sample
                uni.append(True)
            else:
                mix = self._mixture
                # ∝ time-return covariance (variant "improved": ∝ its square root)
                idx = proportional_choice(self._lp if cfg.variant == "original" else np.sqrt(self._lp), self.rng)
                x = self.rng.multivariate_normal(mix.means[idx], mix.covariances[idx])[:-2]
                x = np.clip(x, low, high)
                uni.append(False)
            # REFERENCE: tasks are float32 in TDRL; re-clip in case a bound is not a float32.
            rows.append(np.clip(x.astype(np.float32).astype(np.float64), low, high))
        return tasks_with_origin(self.space, np.asarray(rows), np.asarray(uni))

    # --------------------------------------------------------------------- update
    def _update(self, tasks: list[Task], outcomes: list[Outcome]) -> None:
        b = len(tasks)
        x = np.asarray([t.params for t in tasks], dtype=np.float64).reshape(b, self.space.dim)
        r = np.fromiter((o.episode_return for o in outcomes), dtype=np.float64, count=b)
        if self.config.return_bounds is not None:
            r = np.interp(r, self.config.return_bounds, (0.0, 1.0))  # REFERENCE: TDRL controller
        t = self._all_times[(self._n_episodes + np.arange(b)) % self.config.fit_rate]
        rows = np.concatenate([x, t[:, None], r[:, None]], axis=1)
        due = self._window.push(rows, self._n_episodes)
        self._n_episodes += b
        if self.config.mode == "fast":
            due = due[-1:]  # SPEEDUP: earlier windows of the same batch would be replaced unseen
        for data in due:
            self._submit(data)

    def _submit(self, data: np.ndarray) -> None:
        cfg = self.config
        self._n_submitted += 1
        if cfg.mode == "reference":
            self.refitter.submit(fit_reference, data, self._ks, self._fit_seed, cfg.criterion, 1, self.space.dim)
            return
        # The previous mixture matters only for the optional warm start / k window; then a
        # pending fit is finished (and installed) first, so the result depends only on the
        # call sequence.
        warm = None
        if cfg.k_window is not None or cfg.fit_init != "cold":
            self.refitter.drain()
            warm = self._mixture.to_dict() if self._mixture is not None else None
        self.refitter.submit(fit_fast, data, self._ks, cfg.criterion, warm, (self._fit_seed, self._n_submitted),
                             cfg.k_window, cfg.em_max_iter, cfg.em_tol, cfg.reg_covar, cfg.fit_init)

    def _component_lp(self, mix: Mixture) -> np.ndarray:
        cov_tr = mix.covariances[:, -2, -1]
        return np.abs(cov_tr) if self.config.absolute_lp else np.maximum(0.0, cov_tr)

    def _install(self, result: dict[str, Any]) -> None:
        """Refitter callback: make a finished fit the live mixture (atomic reference swap)."""
        mix = Mixture.from_dict(result)
        lp = self._component_lp(mix)
        # DEVIATION (variant="improved"): components drawn with probability ∝ sqrt(LP)
        weight = np.sqrt(lp) if self.config.variant == "improved" else lp
        self._mixture, self._lp, self._probs = mix, lp, component_probs(weight)
        self._n_fits += 1
        self._prefetch.clear()  # never serve a task drawn from the previous model
        self._fit_info = {k: result[k] for k in ("k", "ks", "scores", "n_iter", "not_converged", "cold")
                          if k in result}

    # ---------------------------------------------------------------------- state
    def _state_dict(self) -> dict:
        return {
            "n_episodes": self._n_episodes,
            "n_fits": self._n_fits,
            "n_submitted": self._n_submitted,
            "fit_seed": self._fit_seed,
            "window": self._window.state(),
            "prefetch": self._prefetch.state(),
            "mixture": self._mixture.to_dict() if self._mixture is not None else None,
            "fit_info": dict(self._fit_info),
        }

    def _load_state_dict(self, state: dict) -> None:
        self._n_episodes = int(state["n_episodes"])
        self._n_submitted = int(state["n_submitted"])
        self._fit_seed = int(state["fit_seed"])
        self._window.load(state["window"])
        if state["mixture"] is not None:
            self._install({**state["mixture"], **state.get("fit_info", {})})
        else:
            self._mixture, self._lp, self._probs = None, None, None
        self._n_fits = int(state["n_fits"])
        self._fit_info = dict(state.get("fit_info", {}))
        self._prefetch.load(state["prefetch"])  # after the mixture: installing clears it

    def _stats(self) -> dict:
        d = self.space.dim
        out: dict[str, Any] = {
            "fits": self._n_fits,
            "episodes": self._n_episodes,
            "bootstrap": self._n_episodes < self.config.fit_rate or self._mixture is None,
            "mode": self.config.mode,
            "variant": self.config.variant,
        }
        mix = self._mixture
        if mix is not None:
            out.update({
                "k": mix.k,
                "component_means": mix.means[:, :d].tolist(),
                "component_covs": mix.covariances[:, :d, :d].tolist(),
                "component_lp": self._lp.tolist() if self._lp is not None else None,
                "component_probs": self._probs.tolist() if self._probs is not None else None,
                "component_weights": mix.weights.tolist(),
            })
        return out
