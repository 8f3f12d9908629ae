"""WebRL-style self-evolving curriculum: new tasks generated from the learner's failures.

Reference: Qi et al., "WebRL: Training LLM Web Agents via Self-Evolving Online Curriculum
Reinforcement Learning" (arXiv 2411.02337), code ``THUDM/WebRL`` ``scripts/gen_task.py``
(in-breadth generation from failures, 10 seeds x 2 turns; learnability band
``threshold=[0.05, 0.75]``). Preset ``"webrl"`` uses those numbers.

The teacher keeps a growing pool of tasks (`TaskPool`) with an LP tracker over it. Every
``phase_every`` updates it collects its **failures** (pool tasks attempted since the last
phase whose success there is below ``failure_threshold``) and runs a generation phase in
the background on the `Refitter`: generate from failures, dedupe, check feasibility,
filter by a learnability band, admit with lineage (``origin="generated"``). The phase
itself is `openended.teachers.webrl_generation.run_phase`, a pure function; this module
is the config and the teacher around it.

Every stage's rejections are counted with an example reason (``stats()["webrl/last_phase"]``).
Sampling draws from the whole pool by a priority: ``"lp"`` (OMNI's LP distribution over
the pool) or ``"uniform_unmastered"``.

Contents: WebRLConfig, WebRLTeacher.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import ConfigDict, Field, field_serializer, field_validator

from openended.errors import ConfigError, TaskNotInSpace
from openended.registry import resolve_import_path
from openended.tasks import Discrete, Outcome, Task, TaskSpace, TextSpace
from openended.teachers.base import BaseTeacher, RefitConfig, TeacherConfig
from openended.teachers.lp import CadenceUnit, LPTracker, cadence_increment
from openended.teachers.pool import TaskPool, known_tasks_of_space, task_label
from openended.teachers.refit import Refitter
from openended.teachers.views import lineage_nodes
from openended.teachers.webrl_generation import GrammarMutationGenerator, KNNSuccessPredictor, run_phase

__all__ = ["WebRLConfig", "WebRLTeacher"]


class WebRLConfig(RefitConfig, TeacherConfig):
    """WebRL self-evolving curriculum (generation from failures + learnability band)."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    phase_every: int = Field(50, ge=1, description="Run a generation phase every this many update_unit.")
    failure_threshold: float = Field(0.5, ge=0, le=1, description="Success below this in a phase = failed.")
    seeds_per_turn: int = Field(10, ge=1, description="Failures shown to the generator per turn (WebRL: 10).")
    generation_turns: int = Field(2, ge=1, description="Generator calls per phase (WebRL: 2).")
    candidates_per_turn: int = Field(20, ge=1, description="Proposals requested per generator call.")
    admit_per_phase: int = Field(50, ge=0, description="Most tasks admitted per phase (WebRL: ~500).")
    band_low: float = Field(0.05, ge=0, le=1, description="Lowest predicted success admitted.")
    band_high: float = Field(0.75, ge=0, le=1, description="Highest predicted success admitted.")
    admit_unpredicted: bool = Field(True, description="Admit candidates with no prediction (phase 0).")
    dedupe_threshold: float = Field(0.95, gt=-1, le=1, description="Cosine at or above which = duplicate.")
    generator: Any = Field("grammar", description="'grammar' or any object with generate(failures, n).")
    validator: Any = Field(
        None,
        description="Feasibility filter: None (none), a callable text -> (ok, reason) | bool, or its import path "
        "'package.module:function'. Experiments fill it from the env family (see env_task_validator).",
    )
    embed: Any = Field("hashing", description="'hashing', 'minilm', or a callable list[str] -> (n, d) array.")
    predictor: Any = Field("knn", description="'knn' or an object with predict(cand_vecs, known_vecs, ...).")
    knn_k: int = Field(5, ge=1, description="Neighbours of the knn predictor.")
    knn_min_similarity: float = Field(0.5, description="Least cosine for a neighbour to count.")
    priority: Literal["lp", "uniform_unmastered"] = Field("lp", description="How the pool is sampled.")
    mastered_threshold: float = Field(0.9, ge=0, le=1, description="EMA success counted as mastered.")
    ema_alpha: float = Field(0.1, gt=0, le=1, description="LP EMA rate (priority 'lp').")
    p_theta: float = Field(0.1, gt=0, lt=0.5, description="LP reweighting theta.")
    lp_update_every: int = Field(25, ge=1, description="LP step every this many update_unit.")
    update_unit: CadenceUnit = Field(
        "updates",
        description="What lp_update_every and phase_every count: update() calls (one per client flush in a "
        "service), outcomes, or evaluations (sweeps of eval-flagged outcomes).",
    )
    explore: float = Field(
        0.3, ge=0.0, lt=1.0, description="LP exploration floor: share spread over tasks LP gives 0 (see lp)."
    )
    optimistic_new: bool = Field(
        True, description="Pool tasks never observed (newly admitted) get the top LP, so they are tried."
    )
    tasks: list[str] | None = Field(
        None,
        description="Initial pool (texts or Discrete values as text); "
        "default: the TextSpace seeds / all Discrete values.",
    )
    grammar_max_count: int = Field(10, ge=1, description="Largest count the grammar generator writes.")
    refit_executor: Literal["inline", "thread"] = Field("thread", description="Where phases run.")

    @field_validator("validator")
    @classmethod
    def _validator_resolves(cls, v: Any) -> Any:
        """Fail when the config is checked (``openended check``), not at the first phase."""
        if isinstance(v, str):
            try:
                resolve_import_path(v, what="validator")
            except ConfigError as err:  # pydantic adds the field path itself
                raise ValueError(str(err).removeprefix("validator: ")) from None
        elif v is not None and not callable(v):
            raise ValueError("must be None, a callable text -> (ok, reason) | bool, or 'package.module:function'")
        return v

    @field_serializer("generator", "validator", "embed", "predictor")
    def _name(self, v: Any) -> Any:
        return (
            v if v is None or isinstance(v, str) else str(getattr(v, "name", getattr(v, "__name__", type(v).__name__)))
        )


def _resolve_validator(v: Any) -> Callable[[str], tuple[bool, str]] | None:
    """The feasibility filter as ``text -> (ok, reason)``, or None for no filter.

    ``v`` is None, a callable, or the import path of one; a validator may answer
    ``(ok, reason)`` or a bare bool. No default: the teacher knows no env.
    """
    if v is None:
        return None
    fn = resolve_import_path(v, what="teacher.webrl.validator") if isinstance(v, str) else v
    if not callable(fn):
        raise ConfigError("teacher.webrl.validator: must be callable text -> (ok, reason) or bool")

    def wrapped(text: str) -> tuple[bool, str]:
        r = fn(text)
        return (bool(r[0]), str(r[1])) if isinstance(r, tuple) else (bool(r), "" if r else "rejected")

    return wrapped


def _resolve_embed(e: Any) -> Callable[[list[str]], np.ndarray]:
    if e == "hashing":
        from openended.moi.embedding import hashing_embed

        return hashing_embed
    if e == "minilm":
        from openended.moi.embedding import embed

        return embed
    if isinstance(e, str) or not callable(e):
        raise ConfigError(f"teacher.webrl.embed: use 'hashing', 'minilm' or a callable, got {e!r}")
    return e


class WebRLTeacher(BaseTeacher):
    """Self-evolving task pool (see the module docstring). Experimental."""

    name = "webrl"
    Config = WebRLConfig
    config: WebRLConfig
    space_kinds = ("discrete", "text")
    PRESETS = {
        "webrl": {
            "seeds_per_turn": 10,
            "generation_turns": 2,
            "band_low": 0.05,
            "band_high": 0.75,
            "admit_per_phase": 500,
        }
    }

    def __init__(self, space: TaskSpace, config: WebRLConfig | None = None) -> None:
        super().__init__(space, config)
        cfg = self.config
        if cfg.band_low > cfg.band_high:
            raise ConfigError(f"teacher.webrl.band_low: {cfg.band_low} is above band_high {cfg.band_high}")
        self.generator = (
            GrammarMutationGenerator(seed=cfg.seed, max_count=cfg.grammar_max_count)
            if cfg.generator == "grammar"
            else cfg.generator
        )
        if not callable(getattr(self.generator, "generate", None)):
            raise ConfigError("teacher.webrl.generator: use 'grammar' or an object with generate(failures, n)")
        self.validator = _resolve_validator(cfg.validator)
        self.embed = _resolve_embed(cfg.embed)
        self.predictor = (
            KNNSuccessPredictor(cfg.knn_k, cfg.knn_min_similarity) if cfg.predictor == "knn" else cfg.predictor
        )
        if not callable(getattr(self.predictor, "predict", None)):
            raise ConfigError("teacher.webrl.predictor: use 'knn' or an object with predict(...)")
        self.refitter = Refitter(self._install, executor=cfg.refit_executor, swap=cfg.refit_swap, lag=cfg.refit_lag)
        self._tracker = LPTracker(0, alpha=cfg.ema_alpha, theta=cfg.p_theta)
        self._pool = TaskPool()
        self._phase_att = np.zeros(0)
        self._phase_suc = np.zeros(0)
        self._n_updates = 0
        self._lp_pending = 0  # toward lp_update_every / phase_every, in update_unit
        self._phase_pending = 0
        self._phases = 0
        self._due = False
        self._last_phase: dict[str, Any] = {}
        self._recent: list[dict[str, Any]] = []
        self._version = 0
        self._cdf_key = -1
        self._cdf = np.zeros(0)
        self._counts.update({"phases": 0, "generated_admitted": 0})
        self._eval_seen = False
        self._dtexts: set[str] = {str(v) for v in space.values} if isinstance(space, Discrete) else set()
        if cfg.tasks is not None:
            init = [self._as_space_task(t, (), "seed") for t in cfg.tasks]
        else:
            init = known_tasks_of_space(space)
        self._add(init)

    # ----------------------------------------------------------------- the pool
    def _as_space_task(self, text: str, parents: Sequence[str], origin: str) -> Task:
        sp = self.space
        if isinstance(sp, TextSpace):
            return sp.task(text, parent_ids=parents, origin=origin)
        if isinstance(sp, Discrete):  # the only other kind in space_kinds
            for v in sp.values:
                if str(v) == text:
                    return sp.task(v, origin=origin)._replace(parent_ids=tuple(parents))
        raise TaskNotInSpace(f"{sp!r}: {text[:60]!r} is not one of its values")

    def _accepts(self, text: str) -> bool:
        if isinstance(self.space, TextSpace):
            return len(text) <= self.space.max_length
        return text in self._dtexts

    def _add(self, tasks: Sequence[Task]) -> list[Task]:
        new = self._pool.add(tasks)
        if new:
            self._tracker.grow(len(new))
            self._phase_att = np.concatenate([self._phase_att, np.zeros(len(new))])
            self._phase_suc = np.concatenate([self._phase_suc, np.zeros(len(new))])
            self.register_tasks(new)
            self._version += 1
        return new

    def add_tasks(self, tasks: Sequence[Task | str]) -> list[Task]:
        """Add tasks to the pool by hand (texts or tasks of the space); returns the new ones.

        Every task is checked against the space before any is added; ids already in the
        pool are skipped. New tasks start unobserved (tried first with ``optimistic_new``).
        """
        checked = []
        for t in tasks:
            task = self._as_space_task(t, (), "user") if isinstance(t, str) else t
            self.space.check_task(task)
            checked.append(task)
        return self._add(checked)

    def known_tasks(self) -> list[Task]:
        """The pool (seed and admitted tasks) in the order of ``probabilities()`` (a copy)."""
        return list(self._pool.tasks)

    def generated_tasks(self) -> list[Task]:
        """The pool tasks admitted from generation phases (origin ``"generated"``)."""
        return [t for t in self._pool if t.origin == "generated"]

    def success_estimates(self) -> np.ndarray:
        """EMA of raw success per pool task (0 until the LP tracker has stepped on it)."""
        return self._tracker.ema_raw.copy()

    def probabilities(self) -> np.ndarray:
        """The sampling distribution over the pool (LP-weighted or uniform over unmastered)."""
        self._ensure_cdf()
        p = np.diff(self._cdf, prepend=0.0)
        return p / p.sum()

    @property
    def distribution_version(self) -> int:
        """Bumped whenever the pool or the tracker's EMAs change."""
        return self._version

    def _ensure_cdf(self) -> None:
        if self._cdf_key == self._version:
            return
        cfg = self.config
        if cfg.priority == "lp":
            p = self._tracker.probabilities(explore=cfg.explore, optimistic=cfg.optimistic_new)
        else:
            unm = self._tracker.ema_raw < cfg.mastered_threshold
            p = unm.astype(np.float64) if unm.any() else np.ones(self._tracker.n)
        if p.sum() <= 0:
            p = np.ones(p.size)
        self._cdf = np.cumsum(p)
        self._cdf_key = self._version

    # ----------------------------------------------------------------- algorithm
    def _sample(self, n: int, student: str) -> list[Task]:
        self._ensure_cdf()
        idx = np.searchsorted(self._cdf, self.rng.random(n) * self._cdf[-1], side="right")
        np.minimum(idx, len(self._pool) - 1, out=idx)
        pool = self._pool.tasks
        return [pool[i] for i in idx.tolist()]

    def _update(self, tasks: list[Task], outcomes: list[Outcome]) -> None:
        cfg = self.config
        idx, suc, ev = [], [], []
        for t, o in zip(tasks, outcomes):
            i = self._pool.index_of(t.id)
            if i is None or o.success is None:
                continue
            idx.append(i)
            suc.append(1.0 if o.success else 0.0)
            ev.append(bool(o.info.get("eval", False)) if o.info else False)
        if idx:
            ia, sa, ea = np.asarray(idx), np.asarray(suc), np.asarray(ev)
            self._tracker.record(ia, sa, ea)
            np.add.at(self._phase_att, ia, 1.0)
            np.add.at(self._phase_suc, ia, sa)
            self._eval_seen = self._eval_seen or bool(ea.any())
        self._n_updates += 1
        inc = cadence_increment(cfg.update_unit, len(idx), bool(any(ev)))
        self._lp_pending += inc
        self._phase_pending += inc
        if self._lp_pending >= cfg.lp_update_every:
            self._lp_pending = 0
            self._tracker.step(use_eval=self._eval_seen)
            self._version += 1
        if self._phase_pending >= cfg.phase_every:
            self._phase_pending = 0
            self._due = True
        if self._due:
            if cfg.refit_swap == "asap" and self.refitter is not None and self.refitter.busy:
                return
            self._due = False
            self._submit()

    def _empirical_success(self) -> np.ndarray:
        """EMA success where the LP tracker has stepped, else the lifetime success rate."""
        tr = self._tracker
        life = np.divide(tr.successes_total, tr.attempts_total, out=np.zeros(tr.n), where=tr.attempts_total > 0)
        return np.where(tr.seen > 0, tr.ema_raw, life)

    def failures(self) -> list[Task]:
        """Pool tasks attempted since the last phase with success below the threshold."""
        cfg = self.config
        att = self._phase_att
        rate = np.divide(self._phase_suc, att, out=np.zeros_like(att), where=att > 0)
        return [self._pool[i] for i in np.flatnonzero((att > 0) & (rate < cfg.failure_threshold)).tolist()]

    def _submit(self) -> None:
        cfg = self.config
        fails = self.failures()
        self._phase_att[:] = 0.0
        self._phase_suc[:] = 0.0
        seed = int(self.rng.integers(2**63 - 1))
        assert self.refitter is not None
        max_len = self.space.max_length if isinstance(self.space, TextSpace) else 4096
        self.refitter.submit(
            _phase_job,
            dict(
                failures=fails,
                pool_texts=[t.text or str(t.params) for t in self._pool],
                pool_success=self._empirical_success(),
                pool_attempts=self._tracker.attempts_total.copy(),
                generator=self.generator,
                validator=self.validator,
                embed=self.embed,
                predictor=self.predictor,
                seed=seed,
                seeds_per_turn=cfg.seeds_per_turn,
                generation_turns=cfg.generation_turns,
                candidates_per_turn=cfg.candidates_per_turn,
                admit_per_phase=cfg.admit_per_phase,
                band=(cfg.band_low, cfg.band_high),
                dedupe_threshold=cfg.dedupe_threshold,
                admit_unpredicted=cfg.admit_unpredicted,
                max_length=max_len,
                accept=self._accepts,
            ),
        )

    def run_phase_now(self) -> dict[str, Any]:
        """Run a phase immediately and install it (tests, notebooks); blocks on the generator."""
        assert self.refitter is not None
        self._submit()
        self.refitter.drain()
        return self._last_phase

    def _install(self, result: dict[str, Any]) -> None:
        admitted = []
        for a in result["admitted"]:
            try:
                admitted.append(self._as_space_task(a["text"], a["parent_ids"], "generated"))
            except TaskNotInSpace:
                continue
        new = self._add(admitted)
        self._phases += 1
        self._counts["phases"] += 1
        self._counts["generated_admitted"] += len(new)
        self._last_phase = {
            "phase": self._phases,
            "funnel": dict(result["funnel"]),
            "examples": dict(result["examples"]),
        }
        for t, a in zip(new, result["admitted"]):
            self._recent.append(
                {"task": task_label(t), "id": t.id, "parents": list(t.parent_ids), "predicted": a.get("predicted")}
            )
        self._recent = self._recent[-20:]

    # ----------------------------------------------------------------- persistence
    def _state_dict(self) -> dict:
        return {
            "pool": self._pool.to_dicts(),
            "tracker": self._tracker.state_dict(),
            "phase_att": self._phase_att,
            "phase_suc": self._phase_suc,
            "n_updates": self._n_updates,
            "lp_pending": self._lp_pending,
            "phase_pending": self._phase_pending,
            "phases": self._phases,
            "due": self._due,
            "last_phase": self._last_phase,
            "recent": self._recent,
            "eval_seen": self._eval_seen,
            "generator_rng": (
                self.generator.rng.bit_generator.state if isinstance(self.generator, GrammarMutationGenerator) else None
            ),
        }

    def _load_state_dict(self, state: dict) -> None:
        self._pool.load(state["pool"])
        self._tracker.load_state_dict(state["tracker"])
        self._phase_att = np.asarray(state["phase_att"], dtype=np.float64).copy()
        self._phase_suc = np.asarray(state["phase_suc"], dtype=np.float64).copy()
        self._n_updates = int(state["n_updates"])
        cfg = self.config  # older states counted update() calls only
        self._lp_pending = int(state.get("lp_pending", self._n_updates % cfg.lp_update_every))
        self._phase_pending = int(state.get("phase_pending", self._n_updates % cfg.phase_every))
        self._phases = int(state["phases"])
        self._due = bool(state["due"])
        self._last_phase = dict(state["last_phase"])
        self._recent = list(state["recent"])
        self._eval_seen = bool(state["eval_seen"])
        if state.get("generator_rng") is not None and isinstance(self.generator, GrammarMutationGenerator):
            self.generator.rng.bit_generator.state = state["generator_rng"]
        self._version += 1

    def _stats(self) -> dict:
        cfg = self.config
        tr = self._tracker
        return {
            "webrl/pool": len(self._pool),
            "webrl/generated": sum(t.origin == "generated" for t in self._pool),
            "webrl/phases": self._phases,
            "webrl/mastered_fraction": float((tr.ema_raw >= cfg.mastered_threshold).mean()) if tr.n else 0.0,
            "webrl/last_phase": self._last_phase,
            "webrl/recent_admitted": list(self._recent),
        }

    def view(self) -> dict:
        """Dashboard view: the pool's lineage, the last phase's funnel and the latest admissions.

        Lineage: the newest tasks and their ancestors; admissions carry their predicted
        success (`openended.teachers.views`).
        """
        tr = self._tracker
        return {
            "kind": "lineage",
            "teacher": self.name,
            "phases": self._phases,
            "pool": len(self._pool),
            "last_phase": self._last_phase,
            "recent": self._recent,
            "nodes": lineage_nodes(
                self._pool.tasks, {"success": self.success_estimates(), "attempts": tr.attempts_total}
            ),
        }


def _phase_job(kwargs: dict[str, Any]) -> dict[str, Any]:
    return run_phase(**kwargs)
