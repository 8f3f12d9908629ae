"""One run directory, followed: the aggregates every dashboard page and figure is drawn from.

`RunMonitor.refresh` stats the run's files (event log, metrics, evaluations, views, status,
config) and reads only what is new (`openended.dashboard.tail`); if nothing changed it
costs six ``stat`` calls. The page methods (`summary`, `sampling`, `teacher`, `learning`,
`system`) return JSON-ready dicts, downsampled on this side so a page gets kilobytes,
not the log. One lock per run: the server calls them from worker threads.
"""

from __future__ import annotations

import binascii
import gc
import pathlib
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from openended.dashboard.chunks import BoxSampling, OutcomeSeries, TableSampling
from openended.dashboard.fastlog import parse_line
from openended.dashboard.series import EvalSeries, MetricsSeries, ViewsStore
from openended.dashboard.tail import JsonlTail, file_key, read_json_file, read_yaml_file
from openended.jsonio import unpack_array
from openended.runtime.batch_json import task_batch_from_json
from openended.runtime.rundir import RunDir
from openended.runtime.views_log import VIEWS_FILE

__all__ = ["RunMonitor", "CurriculumAgg", "STALE_AFTER_S"]

#: A run whose status says running but whose files have not changed for this long is shown as stale.
STALE_AFTER_S = 120.0
EVALUATIONS_FILE = "evaluations.jsonl"
#: Buffered rows before they are handed to the aggregates (see `CurriculumAgg.flush`).
_FLUSH_ROWS = 16_384
#: Most points a scatter of sampled tasks gets.
MAX_POINTS = 4000
#: Teacher stats shown on the system page (substrings of their names).
SYSTEM_STATS = ("refit_ms", "sample_ms", "update_ms", "pending", "tracked_tasks", "busy", "queue", "staleness")


class CurriculumAgg:
    """One curriculum of the event log: its spec, where its tasks were sampled, its outcomes."""

    def __init__(self, name: str, spec: dict[str, Any] | None) -> None:
        self.name = name
        self.spec = spec or {}
        space = self.spec.get("space") or {}
        self.kind: str = space.get("kind", "unknown")
        self.sampling: BoxSampling | TableSampling | None = None
        if self.kind == "box":
            names = space.get("names") or [f"x{i}" for i in range(len(space["low"]))]
            self.sampling = BoxSampling(space["low"], space["high"], names)
        elif self.kind in ("discrete", "text"):
            self.sampling = TableSampling()
        self.outcomes = OutcomeSeries()
        # buffered Box sampled / outcome columns: (columns..., names, event time)
        self._sampled: list[tuple[Any, ...]] = []
        self._outcomes: list[tuple[Any, ...]] = []
        self._buffered = 0

    def sampled(self, event: dict[str, Any]) -> None:
        """Count a ``sampled`` event's tasks (Box batches are buffered: see `flush`)."""
        d, t = event["tasks"], event.get("t")
        if isinstance(self.sampling, BoxSampling) and d["kind"] == "box":
            # SPEEDUP: only the columns drawn (ids are never shown for Box tasks)
            params = _column(d["params"])
            self._sampled.append((params, _column(d["origin_codes"]), tuple(d["origins"]), t))
            self._buffered += len(params)
            if self._buffered >= _FLUSH_ROWS:
                self.flush()
            return
        batch = task_batch_from_json(d)
        n = len(batch)
        if isinstance(self.sampling, TableSampling) and batch.new_rows is not None:
            ids = batch.ids
            labels = {}
            for row, (params, text, _parents) in zip(batch.new_rows.tolist(), batch.new_contents or []):
                key = int(ids[row]) if isinstance(ids, np.ndarray) else ids[row]
                labels[key] = _label(params, text)
            self.sampling.add_batch((ids, labels), n, t, t)

    def outcome(self, event: dict[str, Any]) -> None:
        """Count an ``outcome`` event's outcomes (buffered: see `flush`)."""
        d = event["outcomes"]
        # SPEEDUP: only the columns aggregated (not ids, lengths, infos): see batch_json's format
        returns = _column(d["returns"])
        if len(returns):
            cols = (returns, _column(d["success"]), _column(d["student_codes"]), tuple(d["students"]))
            self._outcomes.append((*cols, event.get("t")))
            self._buffered += len(returns)
            if self._buffered >= _FLUSH_ROWS:
                self.flush()

    def flush(self) -> None:
        """Hand buffered batches to the aggregates.

        SPEEDUP: consecutive events' columns go in as one batch (per run of equal name
        tuples), with each row's event time, instead of one call per 64-row event.
        """
        for target, pending in ((self.sampling, self._sampled), (self.outcomes, self._outcomes)):
            k = 0
            while k < len(pending):
                names = pending[k][-2]
                m = k
                while m < len(pending) and pending[m][-2] == names:
                    m += 1
                group = pending[k:m]
                cols = [np.concatenate([g[c] for g in group]) for c in range(len(group[0]) - 2)]
                times = np.repeat(
                    np.asarray([np.nan if g[-1] is None else g[-1] for g in group], dtype=np.float64),
                    [len(g[0]) for g in group],
                )
                n = len(cols[0])
                if target is not None and n:
                    if np.isnan(times).any():
                        target.add_batch((*cols, names), n, None, None)
                    else:
                        target.add_batch((*cols, names), n, None, None, times)
                k = m
            pending.clear()
        self._buffered = 0

    def describe(self) -> dict[str, Any]:
        """Name, teacher, space kind and totals (for the run header)."""
        return {
            "name": self.name,
            "teacher": self.spec.get("teacher"),
            "kind": self.kind,
            "space": self.spec.get("space"),
            "students_mode": self.spec.get("students"),
            "tasks": self.sampling.total if self.sampling is not None else None,
            "outcomes": self.outcomes.total,
        }


def _column(d: dict[str, Any]) -> np.ndarray:
    """A logged batch column, read-only (SPEEDUP: no copy for the base64 form; see `jsonio.pack_array`)."""
    b64 = d.get("b64")
    if b64 is None:
        return unpack_array(d)
    return np.frombuffer(binascii.a2b_base64(b64), dtype=np.dtype(d["dtype"])).reshape(d["shape"])


def _label(params: Any, text: str | None, n: int = 200) -> str:
    s = text if text is not None else (str(params[0]) if len(params) == 1 else str(list(params)))
    return s if len(s) <= n else s[: n - 3] + "..."


class RunMonitor:
    """A run directory's aggregates, kept up to date by `refresh`; see the module docstring."""

    def __init__(self, path: str | pathlib.Path) -> None:
        self.path = pathlib.Path(path)
        rd = RunDir(self.path)
        self.files = {
            "config": rd.config_path,
            "status": rd.status_path,
            "events": rd.events_path,
            "metrics": rd.metrics_path,
            "evaluations": self.path / EVALUATIONS_FILE,
            "views": self.path / VIEWS_FILE,
        }
        self.lock = threading.RLock()
        self.version = 0
        self._keys: tuple | None = None
        self.config: dict[str, Any] = {}
        self.status: dict[str, Any] = {}
        self._tails = {k: JsonlTail(p) for k, p in self.files.items() if k not in ("config", "status")}
        self._tails["events"].fast = parse_line  # SPEEDUP: see openended.dashboard.fastlog
        self._reset_events()
        self.metrics = MetricsSeries([])
        self.evals = EvalSeries()
        self.views = ViewsStore()

    def _reset_events(self) -> None:
        self._new_rewind = False
        self.curricula: dict[str, CurriculumAgg] = {}
        self.snapshots = 0
        self.bad_events = 0

    # ------------------------------------------------------------------ refreshing
    def fingerprint(self) -> tuple:
        """Changes whenever one of the run's files does (a few ``stat`` calls)."""
        return tuple(file_key(p) for p in self.files.values())

    def refresh(self) -> bool:
        """Read what changed since the last call; True if anything did."""
        with self.lock:
            keys = self.fingerprint()
            if keys == self._keys:
                return False
            old = dict(zip(self.files, self._keys or (None,) * len(self.files)))
            new = dict(zip(self.files, keys))
            if new["config"] != old["config"]:
                self.config = read_yaml_file(self.files["config"])
                self.metrics.students = list(self.config.get("students") or ["default"])
            if new["status"] != old["status"]:
                self.status = read_json_file(self.files["status"])
            self._follow_events()
            for cur in self.curricula.values():
                cur.flush()
            self._follow("metrics", self.metrics.reset, self.metrics.add)
            self._follow("evaluations", self.evals.reset, self.evals.add)
            self._follow("views", self.views.reset, self.views.add)
            self._keys = keys
            self.version += 1
            return True

    def _follow_events(self) -> None:
        """Follow the event log; a new ``rewind`` re-reads it without the superseded ranges.

        Why re-read: the superseded events come before their ``rewind`` in the log, so they
        were aggregated already; counting them would show what the teacher did not count.
        """
        tail = self._tails["events"]

        def replaced() -> None:  # a new file: its own rewinds will be found again
            tail.skip.clear()
            self._reset_events()

        self._new_rewind = False
        self._follow("events", replaced, self._event)
        while self._new_rewind:  # rare (once per resume): start over, skipping every range
            self._new_rewind = False
            tail.restart()
            self._reset_events()
            self._follow("events", replaced, self._event)

    def _follow(self, name: str, reset: Callable[[], None], handle: Callable[[dict], None]) -> None:
        was_reset, events = self._tails[name].poll()
        if was_reset:
            reset()
        # SPEEDUP: parsed events hold no cycles; the cyclic GC would rescan them thousands of
        # times during a cold read of a large log (~25 % of the time).
        gc_was_on = gc.isenabled()
        gc.disable()
        try:
            for ev in events:
                try:
                    handle(ev)
                except (KeyError, TypeError, ValueError, IndexError, AttributeError):  # a malformed line: skip it
                    self.bad_events += 1
        finally:
            if gc_was_on:
                gc.enable()

    def _event(self, ev: dict[str, Any]) -> None:
        kind = ev.get("ev")
        if kind == "curriculum":
            name = str(ev["cur"])
            if name not in self.curricula:
                self.curricula[name] = CurriculumAgg(name, ev.get("spec"))
        elif kind == "sampled":
            self._cur(ev["cur"]).sampled(ev)
        elif kind == "outcome":
            self._cur(ev["cur"]).outcome(ev)
        elif kind == "snapshot":
            self.snapshots += 1
        elif kind == "rewind":
            span = (int(ev["from"]), int(ev["to"]))
            skip = self._tails["events"].skip
            if span not in skip:
                skip.append(span)
                self._new_rewind = True

    def _cur(self, name: str) -> CurriculumAgg:
        cur = self.curricula.get(name)
        if cur is None:  # a log that starts without its curriculum event: counts only
            cur = self.curricula[name] = CurriculumAgg(name, None)
        return cur

    # ------------------------------------------------------------------ pages
    def last_update(self) -> float | None:
        """Newest modification time of the run's files (seconds since the epoch)."""
        times = [k[2] / 1e9 for k in (self._keys or ()) if k is not None]
        return max(times) if times else None

    def summary(self) -> dict[str, Any]:
        """The run at a glance: the runs table's row and the run page's header."""
        with self.lock:
            cfg, st = self.config, self.status
            last = self.metrics.last or {}
            updated = self.last_update()
            state = st.get("state", "unknown")
            return {
                "dir": self.path.name,
                "name": cfg.get("name"),
                "state": state,
                "stale": state == "running" and updated is not None and time.time() - updated > STALE_AFTER_S,
                "teacher": (cfg.get("teacher") or {}).get("name"),
                "preset": (cfg.get("teacher") or {}).get("preset"),
                "env": (cfg.get("env") or {}).get("family"),
                "algo": (cfg.get("algo") or {}).get("name"),
                "seed": cfg.get("seed"),
                "students": list(cfg.get("students") or ["default"]),
                "iteration": last.get("iteration", st.get("iteration")),
                "iterations": (cfg.get("run") or {}).get("iterations"),
                "env_steps": last.get("env_steps_total"),
                "episodes": last.get("episodes_total"),
                "wall_s": last.get("wall_s", st.get("wall_s")),
                "mean_return": last.get("mean_return"),
                "success_rate": last.get("success_rate"),
                "mastered": last.get("mastered"),
                "last_update": updated,
                "curricula": [c.describe() for c in self.curricula.values()],
                "checkpoints": self.snapshots,
                "views": len(self.views.keys()),
                "evaluations": len(self.evals.rows),
                "skipped_lines": self.bad_events + sum(t.bad_lines for t in self._tails.values()),
                "version": self.version,
            }

    def curriculum_names(self) -> list[str]:
        """Curricula seen in the event log or the views, in order of appearance."""
        names = list(self.curricula)
        names += [c for c, _ in self.views.keys() if c not in names]
        return names

    def sampling(
        self, cur: str, x: int = 0, y: int = 1, lo: int | None = None, hi: int | None = None, top: int = 40
    ) -> dict[str, Any]:
        """Where ``cur``'s tasks were sampled in chunks ``lo..hi``.

        Box: a 2-D histogram of dims ``(x, y)``, a thinned scatter and each chunk's marginal
        of ``x``. Discrete/text: counts per task and the top tasks over time.
        """
        with self.lock:
            agg = self.curricula.get(cur)
            if agg is None or agg.sampling is None:
                return {"kind": agg.kind if agg else "none", "chunks": [], "total": 0}
            s = agg.sampling
            out: dict[str, Any] = {"kind": agg.kind, "chunks": s.meta(), "total": s.total}
            if isinstance(s, BoxSampling):
                return out | _box_page(s, x, y, lo, hi)
            return out | _table_page(s, lo, hi, top)

    def teacher(self, cur: str, student: str | None = None, index: int | None = None) -> dict[str, Any]:
        """One recorded teacher view, with what a slider and the side panels need.

        ``index`` points into the thinned history (default: newest); also returned: the
        history's iterations, WebRL's phase funnels, the latest scalar teacher stats.
        """
        with self.lock:
            students = [s for c, s in self.views.keys() if c == cur]
            last_row = self.metrics.last or {}
            stats_by_student = last_row.get("teacher") or {}
            if student is None or student not in students:
                student = students[0] if students else (next(iter(stats_by_student), None))
            out: dict[str, Any] = {
                "students": students or list(stats_by_student),
                "student": student,
                "count": 0,
                "stats": stats_by_student.get(student) if student is not None else None,
            }
            history = self.views.views.get((cur, student or ""))
            if history is None:
                return out
            items = history.items()
            i = len(items) - 1 if index is None else max(0, min(int(index), len(items) - 1))
            out.update(
                {
                    "count": len(items),
                    "index": i,
                    "iterations": [it["iteration"] for it in items],
                    "steps": [it["env_steps_total"] for it in items],
                    **items[i],
                }
            )
            phases = self.views.phases.get((cur, student or ""))
            if phases:
                out["phases"] = [phases[k] for k in sorted(phases)]
            return out

    def learning(self, grid: int | None = None) -> dict[str, Any]:
        """Training curves, the held-out curve and grid, and the event log's outcome series.

        Training return / success / mastered over steps (per student); ``grid`` picks a
        held-out evaluation (default: newest).
        """
        with self.lock:
            cols = self.metrics.columns()
            keep = ("iteration", "wall_s", "env_steps_total", "episodes_total", "mean_return", "success_rate")
            metrics = {
                k: v for k, v in cols.items() if k in keep or k == "mastered" or k.startswith(("student.", "eval."))
            }
            grids = self.evals.grids.items()
            gi = None if not grids else (len(grids) - 1 if grid is None else max(0, min(int(grid), len(grids) - 1)))
            return {
                "students": self.metrics.students,
                "metrics": metrics,
                "evaluations": self.evals.rows.items(),
                "grids": [{"iteration": g["iteration"], "env_steps_total": g["env_steps_total"]} for g in grids],
                "grid_index": gi,
                "grid": grids[gi] if gi is not None else None,
                "outcomes": {name: c.outcomes.series() for name, c in self.curricula.items()},
            }

    def system(self) -> dict[str, Any]:
        """Throughput, in-flight tasks, iteration time and the teachers' latency / queue stats.

        Throughput: tasks/s, outcomes/s, env steps/s between metrics rows, over wall time.
        """
        with self.lock:
            cols = self.metrics.columns()
            keep = ("iteration", "wall_s", "time", "iteration_s", "in_flight", "tasks_per_s", "outcomes_per_s")
            out = {k: v for k, v in cols.items() if k in keep or k == "env_steps_per_s"}
            out.update(
                {k: v for k, v in cols.items() if k.startswith("teacher.") and any(s in k for s in SYSTEM_STATS)}
            )
            return {
                "metrics": out,
                "outcomes": {name: c.outcomes.series()["rows"] for name, c in self.curricula.items()},
            }


def _box_page(s: BoxSampling, x: int, y: int, lo: int | None, hi: int | None) -> dict[str, Any]:
    x = min(max(int(x), 0), s.dims - 1)
    out: dict[str, Any] = {
        "dims": s.names[: s.dims],
        "low": s.low[: s.dims].tolist(),
        "high": s.high[: s.dims].tolist(),
        "x": x,
        "edges_x": s.edges(x),
        "marginal": s.marginal_over_time(x).tolist(),
        "origins": s.origins(lo, hi),
        "window_total": int(sum(c.n for c in s.window(lo, hi))),
    }
    if s.dims >= 2:
        y = min(max(int(y), 0), s.dims - 1)
        if y == x:
            y = (x + 1) % s.dims
        pts = s.points(lo, hi)
        pts = pts[:: max(1, len(pts) // MAX_POINTS)]
        out.update(
            {
                "y": y,
                "edges_y": s.edges(y),
                "hist": s.histogram(x, y, lo, hi).T.tolist(),  # rows = y bins (Plotly's z layout)
                "points": np.round(pts[:, [x, y]], 5).tolist(),
            }
        )
    return out


def _table_page(s: TableSampling, lo: int | None, hi: int | None, top: int) -> dict[str, Any]:
    counts = s.counts(lo, hi)
    best = counts.most_common(max(1, min(int(top), 200)))
    overall = s.counts().most_common(25)
    keys = [k for k, _ in overall]
    chunks = s.chunks()
    return {
        "top": [{"id": s.task_id(k), "label": s.label(k), "count": int(n)} for k, n in best],
        "other": int(sum(counts.values()) - sum(n for _, n in best)),
        "distinct": len(counts),
        "window_total": int(sum(counts.values())),
        "over_time": {
            "ids": [s.task_id(k) for k in keys],
            "labels": [s.label(k) for k in keys],
            "z": [[int(c.payload.get(k, 0)) for c in chunks] for k in keys],  # rows = tasks
        },
    }
