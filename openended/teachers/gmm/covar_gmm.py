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
batched EM of `fit.fit_fast` (sklearn's algorithm, every k stacked, compiled) off the sampling
path, a fit that would be replaced unseen (several due in one ``update``) skipped, tasks
drawn in vectorised blocks from precomputed Cholesky factors, no float32 cast.

This file holds what is Covar-GMM's own (config, presets, the LP signal, the update rule);
sampling and fit plumbing are `base.GMMTeacher`'s, the fits `fit.py`'s.

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

from typing import Literal

import numpy as np
from pydantic import ConfigDict, Field

from openended.tasks import Box, Outcome, Task
from openended.teachers.gmm.base import GMMConfig, GMMTeacher
from openended.teachers.gmm.mixture import Mixture

__all__ = ["CovarGMMTeacher", "CovarGMMConfig"]


class CovarGMMConfig(GMMConfig):
    """Covar-GMM settings (defaults: fast mode; see ``PRESETS`` for the published ones)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    variant: Literal["original", "improved"] = Field(
        "original", description="original: components drawn ∝ LP; improved: ∝ sqrt(LP) (flagged deviation)."
    )
    absolute_lp: bool = Field(False, description="LP = |cov[t, r]| instead of max(0, cov[t, r]).")


class CovarGMMTeacher(GMMTeacher):
    """Covar-GMM on a `Box` task space (see the module docstring)."""

    name = "covar_gmm"
    Config = CovarGMMConfig
    PRESETS = {
        "teachdeeprl": {
            "mode": "reference",
            "fit_rate": 250,
            "random_ratio": 0.2,
            "k_min": 2,
            "k_max": 11,
            "criterion": "aic",
            "absolute_lp": False,
            "return_bounds": (-150.0, 350.0),
            "refit_executor": "inline",
        },
        "teachdeeprl_toy": {
            "mode": "reference",
            "fit_rate": 250,
            "random_ratio": 0.2,
            "k_min": 2,
            "k_max": 11,
            "criterion": "aic",
            "absolute_lp": False,
            "return_bounds": None,
            "refit_executor": "inline",
        },
        "teachmyagent": {
            "mode": "reference",
            "fit_rate": 150,
            "random_ratio": 0.1,
            "k_min": 2,
            "k_max": 15,
            "criterion": "aic",
            "absolute_lp": False,
            "return_bounds": None,
            "refit_executor": "inline",
        },
    }

    config: CovarGMMConfig
    extra_dims = 2  # (relative time, return)
    space: Box

    def __init__(self, space: Box, config: CovarGMMConfig | None = None) -> None:
        super().__init__(space, config)
        # REFERENCE: the time stamps, computed as TDRL does (float arange, indexed n % fit_rate).
        self._all_times = np.arange(0, 1, 1 / self.config.fit_rate)

    def _component_lp(self, mix: Mixture) -> np.ndarray:
        cov_tr = mix.covariances[:, -2, -1]
        return np.abs(cov_tr) if self.config.absolute_lp else np.maximum(0.0, cov_tr)

    def _component_weights(self, mix: Mixture) -> np.ndarray:
        lp = self._component_lp(mix)
        # DEVIATION (variant="improved"): components drawn with probability ∝ sqrt(LP)
        return np.sqrt(lp) if self.config.variant == "improved" else lp

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

    def _stats(self) -> dict:
        out = super()._stats()
        out["variant"] = self.config.variant
        if self._mixture is not None:
            out["component_lp"] = self._component_lp(self._mixture).tolist()
        return out

    def view(self) -> dict:
        """Dashboard view: components in task space with their LP, cov[time, return] (`openended.teachers.views`)."""
        return self._gmm_view("lp", None if self._mixture is None else self._component_lp(self._mixture))
