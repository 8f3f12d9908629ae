"""Record every judge answer, and replay recordings deterministically.

Why: LLM judges are slow, cost money and vary between runs. OMNI shipped its MoI as a
cached table (``moi_saved/preds_*.json``); here any judge's traffic becomes a replayable
file: record once against a live model, then CI and reruns replay it exactly, offline.

File format: JSON Lines, append-only, one line per candidate judgement::

    {"v": 1, "key": "<32 hex>", "backend": "openai", "model": "qwen2.5-7b",
     "template_version": "omni-v1", "candidate": "<task text>",
     "context": {"mastered": [...], "description": "...", "extra": {...}},
     "judgement": {"score": 1.0, "reason": "...", "ok": true, "backend": "openai"},
     "time": 1718000000.0}

* **Content-addressed.** ``key`` = BLAKE2b-128 of the canonical JSON of (backend, model,
  template version, candidate text, context). "Canonical" means sorted keys, the
  mastered list de-duplicated and sorted (judges see a set), and ``extra`` encoded with
  sorted keys; task text itself is *not* rewritten, so two different strings never
  share an answer. Any change of model or prompt version gives new keys, so stale
  answers are never served.
* **Byte-exact.** Lines are written with ``ensure_ascii=True``: every non-ASCII or control
  character (newlines, NUL, ANSI escapes, U+2028, even lone surrogates) is a JSON escape,
  so a line is always one physical line and text round-trips exactly.
* **Crash-safe.** Each record is one ``write`` to a file opened in append mode, then
  flushed (``fsync=True`` also syncs to disk). A torn last line from a crash is skipped
  with a warning when the file is read, and the writer starts its next record on a fresh
  line, so one torn record never corrupts the next.
* **Which answer wins.** If a key was recorded several times, replay serves the newest
  ``ok=True`` answer, else the newest answer.

Contents:
    record_key      -- the content hash of one request.
    RecordStore     -- the JSONL file: append, index, look up.
    RecordingJudge  -- wraps a judge; writes every answer (optionally reuses recorded ones).
    ReplayJudge     -- serves recorded answers; a miss raises (strict) or falls back.
    ReplayMiss      -- the strict-mode miss error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

from openended.errors import ConfigError, Error
from openended.moi.base import Judge, JudgeContext, Judgement, candidate_text
from openended.moi.safety import for_log
from openended.tasks import Task

__all__ = ["record_key", "RecordStore", "RecordingJudge", "ReplayJudge", "ReplayMiss", "FORMAT_VERSION"]

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


class ReplayMiss(Error, KeyError):
    """A strict replay was asked about a request that was never recorded."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


def _context_dict(context: JudgeContext) -> dict[str, Any]:
    return {
        "mastered": sorted(set(context.mastered)),
        "description": context.description,
        # default=str: an exotic value in extra must not break recording; it is keyed by its str().
        "extra": json.loads(json.dumps(context.extra, sort_keys=True, default=str)),
    }


def record_key(backend: str, model: str, template_version: str, candidate: str, context: JudgeContext) -> str:
    """Content hash (32 hex digits) of one judge request; see the module docstring."""
    canon = json.dumps(
        {
            "backend": backend,
            "model": model,
            "template_version": template_version,
            "candidate": candidate,
            "context": _context_dict(context),
        },
        sort_keys=True,
        ensure_ascii=True,
        separators=(",", ":"),
    )
    return hashlib.blake2b(canon.encode("ascii"), digest_size=16).hexdigest()


def judge_identity(judge: Judge) -> tuple[str, str, str]:
    """``(backend, model, template_version)`` of a judge, as used in record keys."""
    return (
        str(getattr(judge, "name", type(judge).__name__)),
        str(getattr(judge, "model", "")),
        str(getattr(judge, "template_version", "")),
    )


class RecordStore:
    """One append-only JSONL recording, indexed in memory by key.

    Why one class for both sides: the recorder and the replayer must agree exactly on
    keys, parsing and "which answer wins". Thread-safe; several processes may append to
    the same file on a local disk (each record is a single ``O_APPEND`` write), but each
    reads only what existed when it opened the file, plus its own writes.
    """

    def __init__(self, path: str | os.PathLike[str], fsync: bool = False) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self._lock = threading.Lock()
        self._index: dict[str, dict[str, Any]] = {}
        self._fd: int | None = None
        self.corrupt_lines = 0
        self.records_read = 0
        self.records_written = 0
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        with open(self.path, "rb") as f:
            data = f.read()
        lines = data.split(b"\n")
        for lineno, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            torn = lineno == len(lines)  # no newline after it: the writer was interrupted
            try:
                rec = json.loads(raw.decode("utf-8"))
                Judgement(**rec["judgement"])
                key = rec["key"]
                for field in ("backend", "model", "template_version", "candidate"):
                    if not isinstance(rec[field], str):
                        raise TypeError(f"{field} is not a string")
            except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as err:
                self.corrupt_lines += 1
                where = "torn last line (interrupted write?)" if torn else "corrupt line"
                log.warning("%s:%d: %s skipped: %s", self.path, lineno, where, for_log(str(err), 120))
                continue
            self.records_read += 1
            self._remember(key, rec)

    def _remember(self, key: str, rec: dict[str, Any]) -> None:
        old = self._index.get(key)
        if old is None or rec["judgement"].get("ok", True) or not old["judgement"].get("ok", True):
            self._index[key] = rec

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, key: str) -> bool:
        return key in self._index

    def get(self, key: str) -> Judgement | None:
        """The winning recorded judgement for ``key``, or None."""
        with self._lock:
            rec = self._index.get(key)
        return None if rec is None else Judgement(**rec["judgement"])

    def identities(self) -> set[tuple[str, str, str]]:
        """The distinct ``(backend, model, template_version)`` in this recording."""
        with self._lock:
            return {(r["backend"], r["model"], r["template_version"]) for r in self._index.values()}

    def records(self) -> Iterator[dict[str, Any]]:
        """The winning record per key (a snapshot)."""
        with self._lock:
            return iter(list(self._index.values()))

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            size = os.fstat(fd).st_size
            if size:
                with open(self.path, "rb") as f:
                    f.seek(size - 1)
                    if f.read(1) != b"\n":  # a torn line: end it so our first record starts clean
                        os.write(fd, b"\n")
            self._fd = fd
        return self._fd

    def append(
        self, key: str, identity: tuple[str, str, str], candidate: str, context: JudgeContext, judgement: Judgement
    ) -> None:
        """Write one record (one line, one ``write`` call, flushed) and index it."""
        backend, model, template_version = identity
        rec = {
            "v": FORMAT_VERSION,
            "key": key,
            "backend": backend,
            "model": model,
            "template_version": template_version,
            "candidate": candidate,
            "context": _context_dict(context),
            "judgement": {
                "score": judgement.score,
                "reason": judgement.reason,
                "ok": judgement.ok,
                "backend": judgement.backend,
            },
            "time": time.time(),
        }
        line = (json.dumps(rec, ensure_ascii=True, sort_keys=True) + "\n").encode("ascii")
        with self._lock:
            fd = self._open()
            view = memoryview(line)
            while view:  # os.write may write less than asked (rare on regular files)
                view = view[os.write(fd, view) :]
            if self.fsync:
                os.fsync(fd)
            self.records_written += 1
            self._remember(key, rec)

    def close(self) -> None:
        """Close the file (idempotent; later appends reopen it)."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __del__(self) -> None:  # best effort; close() is the real API
        try:
            self.close()
        except Exception:  # noqa: BLE001 - a finaliser must never raise (interpreter shutdown)
            pass


class RecordingJudge:
    """Wrap a judge and record 100 % of its answers (ok or not) to a JSONL file.

    Args:
        inner: the judge whose traffic is recorded.
        path: the JSONL file (created if missing, appended to if present).
        reuse: serve answers already in the file instead of asking ``inner`` again
            (only ``ok=True`` ones). Why: a content-addressed cache for slow/costly LLM
            judges across runs. Off by default, so a recording session always hears the
            live model.
        fsync: ``os.fsync`` after every record (durable against power loss; slower).

    Name, model and template version are the inner judge's, so a recording replays
    under the same key whether or not the recorder sits in between.
    """

    def __init__(self, inner: Judge, path: str | os.PathLike[str], reuse: bool = False, fsync: bool = False) -> None:
        self.inner = inner
        self.name, self.model, self.template_version = judge_identity(inner)
        self.store = RecordStore(path, fsync=fsync)
        self.reuse = reuse
        self.reused = 0

    def judge(self, candidates: Sequence[Task | str], context: JudgeContext) -> list[Judgement]:
        """The inner judge's answers (recorded first), or recorded ``ok`` ones when ``reuse`` is on.

        Raises:
            Error: the inner judge returned a different number of judgements.
        """
        identity = (self.name, self.model, self.template_version)
        texts = [candidate_text(c) for c in candidates]
        keys = [record_key(*identity, t, context) for t in texts]
        out: list[Judgement | None] = [None] * len(texts)
        todo: list[int] = []
        for i, key in enumerate(keys):
            hit = self.store.get(key) if self.reuse else None
            if hit is not None and hit.ok:
                out[i] = hit
                self.reused += 1
            else:
                todo.append(i)
        if todo:
            fresh = self.inner.judge([candidates[i] for i in todo], context)
            if len(fresh) != len(todo):
                raise Error(f"judge {self.name!r} returned {len(fresh)} judgements for {len(todo)} candidates")
            for i, j in zip(todo, fresh):
                self.store.append(keys[i], identity, texts[i], context, j)
                out[i] = j
        return cast("list[Judgement]", out)  # every slot holds a reused or a fresh judgement

    def close(self) -> None:
        """Close the recording file (idempotent)."""
        self.store.close()


class ReplayJudge:
    """Serve recorded judgements exactly as recorded (score, reason, ok, backend).

    Args:
        path: a JSONL recording made by `RecordingJudge`.
        strict: a request that was never recorded raises `ReplayMiss` (the default: a
            replay run must not silently become a different experiment).
        fallback: with ``strict=False``, misses go to this judge; with no fallback they
            get ``Judgement(ok=False, score=0.5)``.
        backend, model, template_version: which recorded judge to serve. Left out, they
            are taken from the recording when it holds exactly one judge.
    """

    name = "replay"

    def __init__(
        self,
        path: str | os.PathLike[str],
        strict: bool = True,
        fallback: Judge | None = None,
        backend: str | None = None,
        model: str | None = None,
        template_version: str | None = None,
    ) -> None:
        if not Path(path).exists():
            raise ConfigError(
                f"moi.replay.path: recording {str(path)!r} does not exist; record one with "
                "make_judge('record', inner=..., path=...)"
            )
        self.store = RecordStore(path)
        self.strict = strict
        self.fallback = fallback
        ids = sorted(self.store.identities())
        wanted = [
            i
            for i in ids
            if (backend is None or i[0] == backend)
            and (model is None or i[1] == model)
            and (template_version is None or i[2] == template_version)
        ]
        if len(wanted) == 1:
            self.identity = wanted[0]
        elif backend is not None and model is not None and template_version is not None:
            self.identity = (backend, model, template_version)  # nothing recorded yet for it: every call misses
        else:
            found = "; ".join("/".join(i) for i in ids) or "none (empty recording)"
            raise ConfigError(
                f"moi.replay: cannot tell which recorded judge to serve from {str(path)!r} "
                f"(backend={backend!r}, model={model!r}, template_version={template_version!r}); "
                f"recorded backend/model/template: {found}. Pass backend, model and template_version."
            )
        # Replayed judgements carry the recorded backend name; the replay key is the recorded one.
        self.model, self.template_version = self.identity[1], self.identity[2]
        self.hits = 0
        self.misses = 0

    def judge(self, candidates: Sequence[Task | str], context: JudgeContext) -> list[Judgement]:
        """The recorded judgements; a miss raises `ReplayMiss` (strict), else goes to the fallback.

        Without a fallback a miss is a neutral ``ok=False`` judgement.
        """
        texts = [candidate_text(c) for c in candidates]
        out: list[Judgement | None] = []
        missed: list[int] = []
        for i, text in enumerate(texts):
            hit = self.store.get(record_key(*self.identity, text, context))
            if hit is None:
                missed.append(i)
            else:
                self.hits += 1
            out.append(hit)
        self.misses += len(missed)
        if missed:
            if self.strict:
                first = texts[missed[0]]
                raise ReplayMiss(
                    f"no recorded judgement for {len(missed)} of {len(texts)} candidates (first: "
                    f"{for_log(first, 80)!r}) with {len(context.mastered)} mastered tasks in "
                    f"{str(self.store.path)!r} ({len(self.store)} records for "
                    f"{'/'.join(self.identity)}). Record them with make_judge('record', ...), or use "
                    "strict=False with a fallback judge."
                )
            if self.fallback is not None:
                for i, j in zip(missed, self.fallback.judge([candidates[i] for i in missed], context)):
                    out[i] = j
            else:
                for i in missed:
                    out[i] = Judgement(0.5, "not in the recording", False, self.name)
        return cast("list[Judgement]", out)  # every miss was filled (or raised) above
