"""OMNI's Algorithm 1 over a table of cached verdicts, judging only the pairs never asked.

Why a table: the partition walks tasks by EMA success and, for each task A that stays
interesting, needs the verdict "B boring given A" for every still-unlabelled B. Asking
the judge (or even looking each pair up in a dict) for every pair again at each
partition costs O(n^2) Python work per partition (1.6-1.9 s at 1,200 text tasks). Here
each A that was ever interesting owns a row of verdicts over task positions (int8:
unknown / interesting / boring) and the judge's score (float32); a partition is a numpy
walk over those rows, and the judge sees only the pairs whose verdict is unknown: newly
learned tasks against the candidates, and new candidates against the learned tasks.

Contents:
    VerdictTable         -- the rows, their structured reasons, and the state format.
    partition_with_table -- Algorithm 1 (pure: reads the table, returns new verdicts).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from openended.errors import ConfigError
from openended.moi.base import Judge, JudgeContext

__all__ = ["VerdictTable", "partition_with_table", "INTERESTING", "BORING", "UNLABELLED", "UNKNOWN"]

INTERESTING, BORING, UNLABELLED = 1, 0, -1
UNKNOWN = -1  # verdict not asked yet (or asked and failed: asked again next time)
_V_BORING, _V_INTERESTING = 1, 0
_YIELD_EVERY_S = 0.002


class _GilYield:
    """Give the GIL away at most every 2 ms of partition work.

    Why: the partition runs in a thread beside the sampling one; yielding keeps ``sample``
    from waiting a whole switch interval (5 ms), but ``time.sleep(0)`` on a loaded
    machine costs about 2 ms itself, so once per task or judge call (hundreds per
    partition) would cost more than the work.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.last = time.perf_counter()

    def __call__(self) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.last >= _YIELD_EVERY_S:
            time.sleep(0)
            self.last = time.perf_counter()


class VerdictTable:
    """Verdicts "B given A" as one row per A (by id), indexed by task position.

    Rows are replaced, never written in place, so a partition running in a background
    thread can read the rows it was handed while the owner installs new verdicts.
    """

    def __init__(self) -> None:
        self.rows: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.reasons: dict[tuple[str, int], str] = {}  # (A id, B position) -> the judge's reason (boring only)

    def row(self, aid: str, n: int) -> tuple[np.ndarray, np.ndarray]:
        """A's verdicts and scores over ``n`` positions (a copy; unknown beyond what was asked)."""
        v = np.full(n, UNKNOWN, dtype=np.int8)
        s = np.full(n, np.nan, dtype=np.float32)
        got = self.rows.get(aid)
        if got is not None:
            k = min(n, got[0].size)
            v[:k] = got[0][:k]
            s[:k] = got[1][:k]
        return v, s

    def merge(self, fresh: Mapping[str, dict[str, Any]], n: int) -> int:
        """Install a partition's new verdicts; returns how many pairs were added."""
        added = 0
        for aid, new in fresh.items():
            v, s = self.row(aid, n)
            idx = np.asarray(new["idx"], dtype=np.int64)
            v[idx] = np.asarray(new["verdict"], dtype=np.int8)
            s[idx] = np.asarray(new["score"], dtype=np.float32)
            self.rows[aid] = (v, s)
            for b, r in new["reasons"].items():
                self.reasons[(aid, int(b))] = r
            added += idx.size
        return added

    def pairs(self) -> int:
        """Verdicts held (asked and answered)."""
        return int(sum((v != UNKNOWN).sum() for v, _ in self.rows.values()))

    def to_state(self, ids: Sequence[str]) -> dict[str, dict[str, list]]:
        """``{A id: {B id: [boring, reason, score]}}`` (JSON-ready; positions become ids)."""
        out: dict[str, dict[str, list]] = {}
        for aid, (v, s) in self.rows.items():
            known = np.flatnonzero(v != UNKNOWN)
            out[aid] = {
                ids[b]: [bool(v[b] == _V_BORING), self.reasons.get((aid, int(b)), ""), float(s[b])]
                for b in known.tolist()
                if b < len(ids)
            }
        return out

    @classmethod
    def from_state(cls, state: Mapping[str, Mapping[str, Sequence[Any]]], ids: Sequence[str]) -> VerdictTable:
        """Inverse of `to_state`; entries ``[boring, reason]`` (older states) get score 0 / 1."""
        pos = {t: i for i, t in enumerate(ids)}
        table = cls()
        n = len(ids)
        for aid, entries in state.items():
            v = np.full(n, UNKNOWN, dtype=np.int8)
            s = np.full(n, np.nan, dtype=np.float32)
            for bid, e in entries.items():
                b = pos.get(bid)
                if b is None:
                    continue
                boring = bool(e[0])
                v[b] = _V_BORING if boring else _V_INTERESTING
                s[b] = float(e[2]) if len(e) > 2 else (0.0 if boring else 1.0)
                if boring and e[1]:
                    table.reasons[(aid, b)] = str(e[1])
            table.rows[aid] = (v, s)
        return table


def partition_with_table(
    judge: Judge,
    texts: Sequence[str],
    ids: Sequence[str],
    success: np.ndarray,
    rows: Mapping[str, tuple[np.ndarray, np.ndarray]],
    description: str = "",
    batch_size: int = 64,
    yield_gil: bool = True,
) -> dict[str, Any]:
    """OMNI's Algorithm 1 (pure; runs in the background thread).

    ``rows`` are the `VerdictTable` rows (only read). Returns ``labels`` (1 interesting,
    0 boring), ``by`` (for each boring task, the position of the learned task that made it
    boring, else -1), ``score`` (the judge's score for that pair), ``fresh`` (new verdicts
    per A: positions, verdicts, scores, boring reasons, for `VerdictTable.merge`) and counts.
    """
    n = len(texts)
    order = np.argsort(-np.asarray(success, dtype=np.float64), kind="stable")
    labels = np.full(n, UNLABELLED, dtype=np.int8)
    by = np.full(n, -1, dtype=np.int64)
    score = np.full(n, np.nan, dtype=np.float32)
    fresh: dict[str, dict[str, Any]] = {}
    calls = judged = errors = 0
    last_error = ""
    gil_yield = _GilYield(yield_gil)  # inline (no other thread to let in): never
    for a in order.tolist():
        if labels[a] != UNLABELLED:
            continue
        gil_yield()  # SPEEDUP: sampling threads never wait a whole switch interval
        labels[a] = INTERESTING
        unl = labels == UNLABELLED
        if not unl.any():
            break
        aid = ids[a]
        got = rows.get(aid)
        v = np.full(n, UNKNOWN, dtype=np.int8)
        s = np.full(n, np.nan, dtype=np.float32)
        if got is not None:
            k = min(n, got[0].size)
            v[:k], s[:k] = got[0][:k], got[1][:k]
        need = np.flatnonzero(unl & (v == UNKNOWN))
        if need.size:
            new = _judge_pairs(judge, texts, a, need, description, batch_size, aid, gil_yield)
            calls += new.pop("calls")
            errors += new.pop("errors")
            last_error = new.pop("last_error") or last_error
            if new["idx"].size:
                judged += int(new["idx"].size)
                v[new["idx"]], s[new["idx"]] = new["verdict"], new["score"]
                fresh[aid] = new
        boring = unl & (v == _V_BORING)
        labels[boring] = BORING
        by[boring] = a
        score[boring] = s[boring]
    return {
        "labels": labels,
        "by": by,
        "score": score,
        "fresh": fresh,
        "calls": calls,
        "judged": judged,
        "errors": errors,
        "last_error": last_error,
    }


def _judge_pairs(
    judge: Judge,
    texts: Sequence[str],
    a: int,
    need: np.ndarray,
    description: str,
    batch_size: int,
    aid: str,
    gil_yield: _GilYield,
) -> dict[str, Any]:
    """Ask "each of ``need`` given ``a``" in batches; failures stay unknown (asked again next time)."""
    ctx = JudgeContext(mastered=(texts[a],), description=description, extra={"task_id": aid})
    idx: list[int] = []
    verdict: list[int] = []
    scores: list[float] = []
    reasons: dict[int, str] = {}
    calls = errors = 0
    last_error = ""
    for start in range(0, need.size, batch_size):
        chunk = need[start : start + batch_size].tolist()
        calls += 1
        try:
            verdicts = judge.judge([texts[b] for b in chunk], ctx)
            if len(verdicts) != len(chunk):
                raise ConfigError(f"judge returned {len(verdicts)} verdicts for {len(chunk)} candidates")
        except Exception as err:  # noqa: BLE001 - a judge failure must not stop the curriculum
            errors += len(chunk)
            last_error = f"{type(err).__name__}: {str(err)[:200]}"
            continue
        finally:
            gil_yield()
        for b, jv in zip(chunk, verdicts):
            if not jv.ok:
                errors += 1
                last_error = (jv.reason or "judge returned ok=False")[:200]
                continue
            boring = float(jv.score) < 0.5
            idx.append(b)
            verdict.append(_V_BORING if boring else _V_INTERESTING)
            scores.append(float(jv.score))
            if boring:
                reasons[b] = jv.reason[:300]
    return {
        "idx": np.asarray(idx, dtype=np.int64),
        "verdict": np.asarray(verdict, dtype=np.int8),
        "score": np.asarray(scores, dtype=np.float32),
        "reasons": reasons,
        "calls": calls,
        "errors": errors,
        "last_error": last_error,
    }
