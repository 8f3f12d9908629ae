"""`EpisodeDedup` against a plain-Python model of its contract (hypothesis, no Ray)."""

from __future__ import annotations

import json

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is in the test extra (requirements/dev.txt)")
from hypothesis import given, settings  # noqa: E402  # after the skip guard
from hypothesis import strategies as st  # noqa: E402

from openended.runtime.dedup import EpisodeDedup, episode_keys  # noqa: E402

# A small universe, so batches repeat ids often: canonical ids (16 hex digits) and named ones.
CANONICAL = [f"{i:016x}" for i in range(12)]
NAMED = [f"env-{i}" for i in range(5)]


class FifoModel:
    """The contract, spelled out: remembered ids oldest first, at most ``capacity`` of them.

    Within one commit the canonical ids are remembered before the named ones (the order
    they are evicted in).
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.order: list[str] = []

    def new_rows(self, ids: list[str | None]) -> list[int] | None:
        seen, in_batch, rows = set(self.order), set(), []
        for row, i in enumerate(ids):
            if i is None or (i not in seen and i not in in_batch):
                rows.append(row)
                if i is not None:
                    in_batch.add(i)
        return None if len(rows) == len(ids) else rows

    def commit(self, ids: list[str | None]) -> None:
        seen = set(self.order)
        fresh = list(dict.fromkeys(i for i in ids if i is not None and i not in seen))
        self.order += [i for i in fresh if i in CANONICAL] + [i for i in fresh if i in NAMED]
        self.order = self.order[max(0, len(self.order) - self.capacity) :]


batches = st.one_of(
    st.lists(st.sampled_from(CANONICAL), min_size=1, max_size=8).map(lambda ids: ("array", ids)),
    st.lists(st.sampled_from([*CANONICAL, *NAMED, None]), min_size=1, max_size=8).map(lambda ids: ("list", ids)),
)


@settings(max_examples=150, deadline=None)
@given(capacity=st.integers(1, 14), steps=st.lists(st.tuples(batches, st.booleans()), min_size=1, max_size=25))
def test_dedup_matches_a_fifo_model(capacity, steps):
    dedup, model = EpisodeDedup(capacity), FifoModel(capacity)
    for (form, ids), accept_only_new in steps:
        if form == "array":
            keys = episode_keys(np.array([int(i, 16) for i in ids], dtype=np.uint64))
        else:
            keys = episode_keys(ids)
        rows = dedup.new_rows(keys)
        assert rows == model.new_rows(ids)
        if accept_only_new and rows is not None:  # what the service does: commit the accepted rows only
            ids = [ids[r] for r in rows]
            keys = keys[rows] if isinstance(keys, np.ndarray) else [keys[r] for r in rows]
        none_in = any(i is None for i in ids)
        dedup.commit(keys, checked=accept_only_new and rows is None and not none_in)
        model.commit(ids)
        assert len(dedup) == len(model.order)
        assert [i in dedup for i in CANONICAL + NAMED] == [i in model.order for i in CANONICAL + NAMED]
        assert dedup.state_dict()["ids"] == model.order
    restored = EpisodeDedup(capacity)
    restored.load_state_dict(json.loads(json.dumps(dedup.state_dict())))
    assert restored.state_dict() == dedup.state_dict()


def test_a_full_memory_keeps_the_newest_capacity_ids_through_many_whole_and_partial_evictions():
    dedup = EpisodeDedup(capacity=1000)
    rng = np.random.default_rng(0)
    ids = rng.permutation(np.unique(rng.integers(0, 2**62, 6000, dtype=np.uint64)))[:5000]  # distinct
    for start in range(0, 5000, 333):  # commits of 333 against a capacity of 1,000: partial evictions
        chunk = ids[start : start + 333]
        assert dedup.new_rows(chunk) is None
        dedup.commit(chunk, checked=True)
    assert len(dedup) == 1000
    assert dedup.new_rows(ids[-1000:]) == []  # all remembered
    assert dedup.new_rows(ids[:-1000]) is None  # all forgotten
