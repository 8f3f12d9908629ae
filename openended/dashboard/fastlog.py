"""A fast reader for the two event kinds that make up nearly all of an event log.

Why: a log of a million outcomes is ~30,000 ``outcome`` and ``sampled`` lines of ~3 kB,
mostly base64 columns the dashboard never reads (task and episode ids, lengths). Building
full dicts of them with ``json.loads`` dominated a cold start; this reader finds the few
fields the aggregates need (``t``, ``cur``, and for outcomes ``returns``/``success``/
``student_codes``/``students``, for Box tasks ``origins``/``origin_codes``/``params``)
and leaves the rest unparsed, about 3x faster.

It relies on how `openended.runtime.batch_json` and `openended.runtime.eventlog` write
lines (compact separators, each column ``{"dtype":...,"shape":[...],"b64":"..."}``) and
on one property of JSON: inside a string every ``"`` is escaped, so a pattern with an
unescaped quote in its middle (``"returns":{"dtype":"``) can only match real keys. Any
line that does not look exactly as expected -- list-encoded columns, a table batch, an
escaped name, lengths that disagree -- returns ``None`` and is parsed with ``json.loads``.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["parse_line"]

_OUTCOME = '{"ev":"outcome","t":'
_SAMPLED = '{"ev":"sampled","t":'
_decoder = json.JSONDecoder()


def parse_line(raw: bytes) -> dict[str, Any] | None:
    """The subset of an ``outcome`` / Box ``sampled`` event the dashboard reads, or ``None``."""
    try:
        line = raw.decode("ascii")
    except UnicodeDecodeError:
        return None
    try:
        if line.startswith(_OUTCOME):
            return _outcome(line)
        if line.startswith(_SAMPLED):
            return _sampled(line)
    except (ValueError, IndexError):
        return None
    return None


def _head(line: str, prefix: str) -> tuple[float, str, int] | None:
    """``(t, cur, end)`` of ``{"ev":...,"t":<number>,"cur":"<name>"``."""
    i = len(prefix)
    j = line.index(",", i)
    t = float(line[i:j])
    if not line.startswith(',"cur":"', j):
        return None
    k = line.index('"', j + 8)
    cur = line[j + 8 : k]
    if "\\" in cur:
        return None
    return t, cur, k + 1


def _column(line: str, name: str, start: int) -> dict[str, Any] | None:
    key = f'"{name}":{{"dtype":"'
    i = line.find(key, start)
    if i < 0:
        return None
    i += len(key)
    j = line.index('"', i)  # the dtype's closing quote
    if not line.startswith(',"shape":[', j + 1):
        return None
    k = line.index("]", j)
    shape = [int(x) for x in line[j + 11 : k].split(",") if x]
    if not line.startswith(',"b64":"', k + 1):
        return None
    e = line.index('"', k + 9)
    return {"dtype": line[i:j], "shape": shape, "b64": line[k + 9 : e]}


def _n(line: str, start: int) -> int:
    i = line.index('"n":', start) + 4
    return int(line[i : line.index(",", i)])


def _outcome(line: str) -> dict[str, Any] | None:
    head = _head(line, _OUTCOME)
    if head is None or not line.startswith(',"outcomes":{', head[2]):
        return None
    t, cur, at = head
    n = _n(line, at)
    cols = {k: _column(line, k, at) for k in ("returns", "success", "student_codes")}
    s = line.find('"students":', at)
    if s < 0 or any(c is None or c["shape"] != [n] for c in cols.values()):
        return None
    students, _ = _decoder.raw_decode(line, s + 11)
    return {"ev": "outcome", "t": t, "cur": cur, "outcomes": {"n": n, "students": students, **cols}}


def _sampled(line: str) -> dict[str, Any] | None:
    head = _head(line, _SAMPLED)
    if head is None:
        return None
    t, cur, at = head
    if line.find('"kind":"box"', at) < 0:
        return None  # table batches (discrete/text): the general parser
    n = _n(line, at)
    params = _column(line, "params", at)
    codes = _column(line, "origin_codes", at)
    o = line.find('"origins":', at)
    if o < 0 or params is None or codes is None or params["shape"][:1] != [n] or codes["shape"] != [n]:
        return None
    origins, _ = _decoder.raw_decode(line, o + 10)
    tasks = {"kind": "box", "n": n, "origins": origins, "origin_codes": codes, "params": params}
    return {"ev": "sampled", "t": t, "cur": cur, "tasks": tasks}
