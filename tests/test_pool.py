"""TaskPool: the id-indexed pool LP, OMNI and WebRL share; positions never move."""

from __future__ import annotations

import json

import pytest

from openended.errors import ConfigError
from openended.tasks import Box, Discrete, TextSpace
from openended.teachers.pool import TaskPool, known_tasks_of_space, task_label


def test_add_skips_known_ids_and_keeps_positions() -> None:
    space = TextSpace(["a", "b"])
    a, b, c = space.task("a"), space.task("b"), space.task("c")
    pool = TaskPool([a, b])
    assert pool.add([b, c, c]) == [c]
    assert [t.text for t in pool] == ["a", "b", "c"] and len(pool) == 3
    assert [pool.index_of(t.id) for t in (a, b, c)] == [0, 1, 2] and pool.index_of("nope") is None
    assert pool[2] == c


def test_load_restores_order_and_index() -> None:
    space = TextSpace(["x"])
    pool = TaskPool(space.task(t) for t in ("x", "y", "z"))
    again = TaskPool()
    again.load(json.loads(json.dumps(pool.to_dicts())))
    assert again.tasks == pool.tasks and again.index_of(pool[1].id) == 1


def test_known_tasks_of_space() -> None:
    space = Discrete(["p", "q"])
    assert known_tasks_of_space(space) == space.tasks_at(range(2), origin="sampled")
    texts = known_tasks_of_space(TextSpace(["a", "b", "a"]))
    assert [t.text for t in texts] == ["a", "b"] and all(t.origin == "seed" for t in texts)
    assert [t.text for t in known_tasks_of_space(TextSpace(["a"]), ["q", "q", "r"])] == ["q", "r"]
    with pytest.raises(ConfigError, match="needs known tasks"):
        known_tasks_of_space(TextSpace([]))
    with pytest.raises(ConfigError, match="discrete or text"):
        known_tasks_of_space(Box([0], [1]))


def test_task_label_clips_long_text() -> None:
    space = TextSpace(["s"], max_length=500)
    assert task_label(space.task("short")) == "short"
    assert task_label(space.task("x" * 200)) == "x" * 77 + "..."
    assert task_label(Box([0], [1]).task([0.5])) == "[0.5]"
