"""`GMMTeacher`: what ALP-GMM and Covar-GMM share.

A Gaussian mixture over (task, extra coordinates), refitted every ``fit_rate`` episodes
off the sampling path, components picked in proportion to a per-component
learning-progress signal.

Subclasses say how many extra coordinates follow the task (ALP-GMM: the ALP; Covar-GMM:
time and return), how the per-component weights are read from a fitted mixture
(`_component_weights`), and how episodes become fit rows (`_update`). Everything else —
reference and fast sampling, fit submission, installing a fit, state and stats — is here,
with `FitWindows` (which rows a fit sees, and when one is due), the config fields both
teachers share (`GMMTeacherConfig`) and the whole config type `GMMTeacher` reads
(`GMMConfig`, which ALP-GMM's and Covar-GMM's configs extend).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, Field, field_validator, model_validator
from typing_extensions import override

from openended.tasks import Box, Task, TaskArrays
from openended.teachers.base import MAX_ROWS, BaseTeacher, RefitConfig, TeacherConfig
from openended.teachers.gmm import em_kernels
from openended.teachers.gmm.fit import fit_fast, fit_reference, prepare_reference
from openended.teachers.gmm.mixture import Mixture
from openended.teachers.gmm.sampling import (
    Prefetch,
    arrays_with_origin,
    component_probs,
    proportional_choice,
    sample_box_mixture,
    tasks_with_origin,
)
from openended.teachers.refit import Refitter
from openended.teachers.views import gmm_view

__all__ = ["GMMTeacher", "GMMTeacherConfig", "GMMConfig", "FitWindows"]

_FIT_INFO_KEYS = ("k", "ks", "scores", "n_iter", "not_converged", "cold")


class GMMTeacherConfig(BaseModel):
    """Config fields shared by ALP-GMM and Covar-GMM (mixed into their configs)."""

    mode: Literal["reference", "fast"] = Field(
        "fast", description="reference: teachDeepRL's computation exactly; fast: same algorithm, faster machinery."
    )
    fit_rate: int = Field(
        250, ge=2, le=MAX_ROWS, description="Episodes between refits; also the bootstrap length and the fit window."
    )
    random_ratio: float = Field(0.2, ge=0.0, le=1.0, description="Probability of a uniform task after bootstrap.")
    k_min: int = Field(2, ge=1, description="Smallest number of Gaussians tried.")
    k_max: int = Field(11, ge=2, description="Exclusive upper bound of the ks tried (np.arange(k_min, k_max)).")
    criterion: Literal["aic", "bic", "aicc"] = Field("aic", description="Model-selection criterion over the ks.")
    return_bounds: tuple[float, float] | None = Field(
        None, description="None: raw returns; (lo, hi): np.interp returns to [0, 1] first (TDRL: (-150, 350))."
    )
    k_window: int | None = Field(
        None, ge=0, description="Fast mode: None tries every k at every fit; an int only k_prev +- k_window."
    )
    fit_init: Literal["cold", "warm", "both"] = Field(
        "cold", description="Fast mode: start EM from k-means++ (cold), the previous mixture (warm) or both."
    )
    em_max_iter: int = Field(100, ge=1, description="Fast mode: EM iteration cap per fit.")
    em_tol: float = Field(1e-3, gt=0.0, description="Fast mode: stop when mean log-likelihood moves less.")
    reg_covar: float = Field(1e-6, ge=0.0, description="Fast mode: added to covariance diagonals (sklearn's).")
    prefetch: int = Field(
        64,
        ge=0,
        le=MAX_ROWS,
        description="Fast mode: tasks drawn ahead per vectorised call for small sample() calls (0: off).",
    )
    refit_coalesce: bool = Field(
        False,
        description="Opt-in, with refit_swap='asap' and a thread/process executor: an update never waits for a "
        "running fit; a fit due meanwhile waits for it and a newer one replaces it (timing-dependent).",
    )

    @model_validator(mode="after")
    def _check_ks(self) -> GMMTeacherConfig:
        if self.k_max <= self.k_min:
            raise ValueError(
                f"k_max ({self.k_max}) must be greater than k_min ({self.k_min}): "
                f"the ks tried are np.arange(k_min, k_max)"
            )
        if self.fit_rate < self.k_max - 1:
            raise ValueError(
                f"fit_rate ({self.fit_rate}) must be at least the largest k tried ({self.k_max - 1}): "
                f"each fit uses fit_rate points"
            )
        return self

    @field_validator("return_bounds")
    @classmethod
    def _check_bounds(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not v[0] < v[1]:
            raise ValueError("must be (lo, hi) with lo < hi")
        return v


class GMMConfig(TeacherConfig, RefitConfig, GMMTeacherConfig):
    """Every field `GMMTeacher` reads: the common, refit and shared GMM fields.

    ALP-GMM's and Covar-GMM's configs extend it with their own fields. The bases are in
    this order so the fields keep the order they are listed and dumped in.
    """

    @model_validator(mode="after")
    def _check_coalesce(self) -> GMMConfig:
        if self.refit_coalesce and self.refit_swap != "asap":
            raise ValueError(
                "refit_coalesce needs refit_swap='asap': the default next_update swap keeps runs "
                "reproducible, coalescing makes which windows are fitted depend on timing"
            )
        return self


class FitWindows:
    """The last ``size`` rows seen, and the fit windows a push completes.

    REFERENCE: a refit is due after the episode that makes the count a positive multiple
    of ``size`` (``len(tasks) >= fit_rate and len(tasks) % fit_rate == 0``), on exactly the
    last ``size`` rows; windows therefore never overlap.
    """

    def __init__(self, size: int, dim: int) -> None:
        self.size = int(size)
        self.rows = np.empty((0, dim))

    def push(self, rows: np.ndarray, n_before: int) -> list[np.ndarray]:
        """Append ``rows`` (episodes ``n_before + 1 ...``); return the fit windows they complete, oldest first."""
        rows = np.asarray(rows, dtype=np.float64)
        allr = np.concatenate([self.rows, rows]) if self.rows.size else rows
        off = allr.shape[0] - rows.shape[0]
        size = self.size
        # the counts n_before + 1 ... n_before + b that are multiples of size (n_before >= 0)
        first = (n_before // size + 1) * size
        ends = range(first - n_before + off, rows.shape[0] + off + 1, size)
        out = [allr[end - size : end].copy() for end in ends]
        self.rows = allr[-size:].copy()
        return out

    def state(self) -> np.ndarray:
        """The rows kept (a copy), for the teacher's state."""
        return self.rows.copy()

    def load(self, rows: np.ndarray) -> None:
        """Inverse of `state`."""
        self.rows = np.asarray(rows, dtype=np.float64).reshape(-1, self.rows.shape[1])


class GMMTeacher(BaseTeacher):
    """Shared machinery of the GMM teachers (not registered itself)."""

    space_kinds = ("box",)
    # An update appends fit rows and submits fits; only sampling reads the mixture.
    update_reads_model = False
    #: Coordinates after the task in each fit row (ALP-GMM 1, Covar-GMM 2).
    extra_dims: ClassVar[int] = 1
    space: Box
    config: GMMConfig
    refitter: Refitter  # always set: every GMM teacher refits

    def __init__(self, space: Box, config: GMMConfig | None = None) -> None:
        super().__init__(space, config)
        cfg = self.config
        self._ks = [int(k) for k in np.arange(cfg.k_min, cfg.k_max)]
        self._window = FitWindows(cfg.fit_rate, space.dim + self.extra_dims)
        self._n_episodes = 0
        self._mixture: Mixture | None = None
        self._weights: np.ndarray | None = None  # per-component learning-progress signal
        self._probs: np.ndarray | None = None  # component probabilities (fast sampling)
        self._fit_info: dict[str, Any] = {}
        self._n_fits = 0
        self._n_submitted = 0
        # The fits' seed travels with the state: a teacher built with another seed that
        # loads this state continues exactly (its own rng is restored by BaseTeacher).
        self._fit_seed = int(cfg.seed)
        self._prefetch = Prefetch(space, cfg.prefetch if cfg.mode == "fast" else 0)
        self.refitter = Refitter(
            self._install,
            executor=cfg.refit_executor,
            swap=cfg.refit_swap,
            lag=cfg.refit_lag,
            coalesce=cfg.refit_coalesce,
        )
        if cfg.mode == "fast":
            # compile (first time on a machine) or load the fitter's kernels here, not in
            # the first refit, where a compile would hold the GIL against sample()
            em_kernels.warm_up()
        else:
            # REFERENCE fits are sklearn's: import it before the first fit so that fit's
            # BLAS/OpenMP pools are pinned like every later one's
            prepare_reference()

    # -------------------------------------------------------------- override points
    def _component_weights(self, mix: Mixture) -> np.ndarray:  # pragma: no cover - abstract
        """Non-negative per-component signal components are drawn in proportion to."""
        raise NotImplementedError

    # ------------------------------------------------------------------- sampling
    def _sample(self, n: int, student: str) -> list[Task]:
        if self.config.mode == "reference":
            return self._sample_reference(n)
        # SPEEDUP: tasks come in vectorised blocks from precomputed Cholesky factors.
        return self._prefetch.take(n, self._draw)

    @override
    def supports_arrays(self) -> bool:
        return self.config.mode == "fast"  # REFERENCE sampling draws task by task

    @override
    def _sample_arrays(self, n: int, student: str) -> TaskArrays:
        # SPEEDUP: the draws of `_sample`, shipped as columns (no Task built).
        x, uni = self._prefetch.take_rows(n, self._draw)
        return arrays_with_origin(self.space, x, uni)

    def _draw(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        bootstrap = self._n_episodes < self.config.fit_rate
        return sample_box_mixture(
            self.rng,
            self._mixture,
            self._probs,
            n,
            self.space.low,
            self.space.high,
            self.config.random_ratio,
            bootstrap,
        )

    def _sample_reference(self, n: int) -> list[Task]:
        """REFERENCE: TDRL ``sample_task`` once per task, RNG calls in the original order."""
        cfg, low, high = self.config, self.space.low, self.space.high
        rows, uni = [], []
        mix, weights = self._mixture, self._weights  # installed together: both None or neither
        for _ in range(n):
            if (
                self._n_episodes < cfg.fit_rate
                or self.rng.random() < cfg.random_ratio
                or mix is None
                or weights is None
            ):
                x = self.rng.uniform(low, high)  # gym Box.sample
                uni.append(True)
            else:
                idx = proportional_choice(weights, self.rng)
                x = self.rng.multivariate_normal(mix.means[idx], mix.covariances[idx])[: -self.extra_dims]
                x = np.clip(x, low, high)
                uni.append(False)
            # REFERENCE: tasks are float32 in TDRL; re-clip in case a bound is not a float32.
            rows.append(np.clip(x.astype(np.float32).astype(np.float64), low, high))
        return tasks_with_origin(self.space, np.asarray(rows), np.asarray(uni))

    # ----------------------------------------------------------------------- fits
    def _submit(self, data: np.ndarray) -> None:
        cfg = self.config
        self._n_submitted += 1
        if cfg.mode == "reference":
            # REFERENCE: sklearn GMMs with random_state = the teacher seed.
            self.refitter.submit(
                fit_reference,
                data,
                self._ks,
                self._fit_seed,
                cfg.criterion,
                getattr(cfg, "nb_em_init", 1),
                self.space.dim,
            )
            return
        # The previous mixture matters only for the optional warm start / k window; then a
        # pending fit is finished (and installed) first, so the result depends only on the
        # call sequence.
        warm = None
        if cfg.k_window is not None or cfg.fit_init != "cold":
            self.refitter.drain()
            warm = self._mixture.to_dict() if self._mixture is not None else None
        self.refitter.submit(
            fit_fast,
            data,
            self._ks,
            cfg.criterion,
            warm,
            (self._fit_seed, self._n_submitted),
            cfg.k_window,
            cfg.em_max_iter,
            cfg.em_tol,
            cfg.reg_covar,
            cfg.fit_init,
        )

    def _install(self, result: dict[str, Any]) -> None:
        """Refitter callback: make a finished fit the live mixture (atomic reference swap)."""
        mix = Mixture.from_dict(result)
        if not all(np.isfinite(a).all() for a in (mix.weights, mix.means, mix.covariances)):
            # Returns beyond ~1e150 overflow the fit (squares of the ALP column): keep the
            # current model rather than sample NaN tasks; counted in fit_info / stats.
            self._fit_info = {**self._fit_info, "rejected_non_finite": self._fit_info.get("rejected_non_finite", 0) + 1}
            return
        weights = self._component_weights(mix)
        self._mixture, self._weights, self._probs = mix, weights, component_probs(weights)
        self._n_fits += 1
        self._prefetch.clear()  # never serve a task drawn from the previous model
        self._fit_info = {k: result[k] for k in _FIT_INFO_KEYS if k in result}

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
            self._mixture, self._weights, self._probs = None, None, None
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
        }
        mix = self._mixture
        if mix is not None:
            out.update(
                {
                    "k": mix.k,
                    "component_means": mix.means[:, :d].tolist(),
                    "component_covs": mix.covariances[:, :d, :d].tolist(),
                    "component_probs": self._probs.tolist() if self._probs is not None else None,
                    "component_weights": mix.weights.tolist(),
                }
            )
            if "n_iter" in self._fit_info:
                out["last_fit_iters"] = int(self._fit_info["n_iter"])
        return out

    def _gmm_view(self, signal_name: str, signal: np.ndarray | None) -> dict[str, Any]:
        """The live mixture for ``view()`` (`openended.teachers.views.gmm_view`), with ``signal`` per component."""
        mix = self._mixture
        return gmm_view(
            self.name,
            self.space,
            None if mix is None else mix.means,
            None if mix is None else mix.covariances,
            signal_name,
            signal,
            self._probs,
            None if mix is None else mix.weights,
            fits=self._n_fits,
            episodes=self._n_episodes,
            bootstrap=self._n_episodes < self._window.size or mix is None,  # window size = fit_rate
        )
