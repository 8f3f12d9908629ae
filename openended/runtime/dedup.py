"""Bounded memory of accepted episodes: the service drops an outcome whose episode it already has.

Why its own module, and why compiled: at its default capacity (262,144 episodes per
curriculum) a Python ``set`` of ids spent ~0.3 ms per 1,024-outcome report, about half
the service's own work on a report of the random teacher: the set's table and its int
objects no longer fit in the caches, and a report went over it four times (check, check
again, add, evict). Canonical ids (16 hex digits, what clients assign) are now held in an
`openended.teachers.id_table.IdTable`, whose batch loops are compiled: ~0.08 ms for the
same work. Other ids (named by hand) stay in a ``set``; an episode is one entry whichever
way its batch was encoded.

Contents:
    EpisodeKey   -- a remembered episode: a canonical id as its ``uint64`` value, others as they are.
    episode_keys -- the keys of an `OutcomeBatch` episode-id column.
    EpisodeDedup -- the FIFO memory (``new_rows`` -> ``commit``), saved in checkpoints.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np

from openended.errors import ConfigError
from openended.teachers.id_table import IdTable
from openended.teachers.issued import Key, id_key, id_keys, key_id

__all__ = ["EpisodeDedup", "EpisodeKey", "EpisodeKeys", "episode_keys"]

EpisodeKey = Key
"""A remembered episode: a canonical (16-hex-digit) id as its ``uint64`` value, any other id as is."""

EpisodeKeys = np.ndarray | Sequence[EpisodeKey | None]
"""A batch's keys: a ``uint64`` array (every id canonical), or one key per row (``None``: no id)."""

_GEN_MODULUS = 1 << 31  # a reference is gen << 32 | row and must stay a non-negative int64


def episode_keys(ids: np.ndarray | Sequence[str | None]) -> EpisodeKeys:
    """Dedup keys of an `OutcomeBatch` episode-id column (``None``: the outcome had no id).

    A canonical column (``uint64``) is its own keys, as is; a list column maps
    canonical-looking ids to the same ints (`openended.teachers.issued.id_keys`), so an
    episode is one key whichever way its batch was encoded.
    """
    if isinstance(ids, np.ndarray):
        return ids
    return cast("list[EpisodeKey | None]", id_keys(cast("list[str]", list(ids))))  # a None id stays None


@dataclass
class _Commit:
    """The keys one `EpisodeDedup.commit` added, canonical ones and named ones (evicted in that order)."""

    gen: int
    canonical: np.ndarray
    names: list[str]

    def __len__(self) -> int:
        return len(self.canonical) + len(self.names)


class EpisodeDedup:
    """Bounded memory of accepted episodes (FIFO): drops re-reported episodes.

    Works on keys (`episode_keys`); ``in`` takes an episode id. ``capacity`` should
    exceed the number of episodes that can be in flight or be resent after a failure
    (client outboxes x retries); the default is generous.
    """

    def __init__(self, capacity: int = 262_144) -> None:
        if capacity < 1:
            raise ConfigError(f"dedup_capacity: must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self._table = IdTable()  # canonical keys -> (commit gen << 32 | row)
        self._names: set[str] = set()  # every other key
        self._order: deque[_Commit] = deque()  # oldest first
        self._gen = 0

    def __len__(self) -> int:
        return len(self._table) + len(self._names)

    def __contains__(self, episode_id: str) -> bool:
        key = id_key(episode_id)
        return key in self._names if isinstance(key, str) else self._table.lookup_one(key) >= 0

    def new_rows(self, keys: EpisodeKeys) -> list[int] | None:
        """Rows to accept (``None`` = all): not seen before, first within the batch.

        Does not record anything: call `commit` once the rows are safely logged.
        """
        if isinstance(keys, np.ndarray):
            if not (self._table.lookup(keys) >= 0).any():
                ordered = np.sort(keys)
                if not (ordered[1:] == ordered[:-1]).any():
                    return None  # SPEEDUP: the usual batch, decided by one compiled lookup and a sort
            keys = cast("list[EpisodeKey | None]", keys.tolist())
        seen = self._seen(keys)
        in_batch: set[EpisodeKey] = set()
        rows: list[int] = []
        for row, (key, old) in enumerate(zip(keys, seen)):
            if key is None:
                rows.append(row)
            elif not old and key not in in_batch:
                in_batch.add(key)
                rows.append(row)
        return None if len(rows) == len(keys) else rows

    def commit(self, keys: EpisodeKeys, *, checked: bool = False) -> None:
        """Remember accepted episodes (evicting the oldest beyond ``capacity``).

        ``checked``: the caller vouches that every key is new, distinct and not None
        (`new_rows` returned None for exactly these keys, under the same lock, and none is
        None): SPEEDUP, they are then not looked up a second time.
        """
        if checked and isinstance(keys, np.ndarray):
            canonical, names = np.array(keys, dtype=np.uint64), []  # a copy: not a view into the batch
        else:
            listed = cast("list[EpisodeKey | None]", keys.tolist() if isinstance(keys, np.ndarray) else list(keys))
            seen = self._seen(listed)
            fresh = list(dict.fromkeys(k for k, old in zip(listed, seen) if k is not None and not old))
            canonical = np.array([k for k in fresh if type(k) is int], dtype=np.uint64)
            names = [k for k in fresh if type(k) is str]
        if not len(canonical) and not names:
            return
        gen = self._gen
        self._gen = (gen + 1) % _GEN_MODULUS
        if len(canonical):
            self._table.insert(canonical, (gen << 32) | np.arange(len(canonical), dtype=np.int64))
        self._names.update(names)
        self._order.append(_Commit(gen, canonical, names))
        self._evict(len(self) - self.capacity)

    def _seen(self, keys: Sequence[EpisodeKey | None]) -> list[bool]:
        """Per key: whether it is remembered (one compiled lookup for all the canonical ones)."""
        seen = [False] * len(keys)
        rows = [r for r, k in enumerate(keys) if type(k) is int]
        if rows:
            refs = self._table.lookup(np.array([keys[r] for r in rows], dtype=np.uint64))
            for r, ref in zip(rows, refs.tolist()):
                seen[r] = ref >= 0
        names = self._names
        if names:
            for r, k in enumerate(keys):
                if type(k) is str and k in names:
                    seen[r] = True
        return seen

    def _evict(self, over: int) -> None:
        """Forget the ``over`` oldest keys (whole commits at a time where possible)."""
        while over > 0 and self._order:
            oldest = self._order[0]
            if len(oldest) <= over:
                self._order.popleft()
                self._table.remove_batch(oldest.canonical, oldest.gen)
                self._names.difference_update(oldest.names)
                over -= len(oldest)
                continue
            k = min(over, len(oldest.canonical))
            if k:
                self._table.remove_batch(oldest.canonical[:k], oldest.gen)
                oldest.canonical = oldest.canonical[k:]
            if over > k:
                self._names.difference_update(oldest.names[: over - k])
                oldest.names = oldest.names[over - k :]
            over = 0

    def state_dict(self) -> dict:
        """The remembered episode ids, oldest first (JSON-ready; checkpoints store it)."""
        ids: list[str] = []
        for part in self._order:
            ids.extend(key_id(k) for k in part.canonical.tolist())
            ids.extend(part.names)
        return {"capacity": self.capacity, "ids": ids}

    def load_state_dict(self, state: dict) -> None:
        """Inverse of `state_dict`; this instance's own ``capacity`` applies (the oldest ids go first)."""
        self._table = IdTable()
        self._names = set()
        self._order = deque()
        self._gen = 0
        # one commit per run of canonical / named ids keeps their order through a later eviction
        for _, run in itertools.groupby((id_key(e) for e in state["ids"]), key=type):
            self.commit(list(run))
