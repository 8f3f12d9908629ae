import json
import re

import numpy as np
import pytest

from openended.errors import ConfigError, TaskNotInSpace
from openended.tasks import Box, Discrete, Outcome, Task, TextSpace, hash_params, space_from_dict


def test_box_task_ids_are_stable_content_hashes():
    space = Box([0, 0], [3, 6], names=["h", "s"])
    a = space.task([1.5, 2.0])
    assert a.id == space.task(np.array([1.5, 2.0])).id
    assert a.id != space.task([1.5, 2.0000001]).id
    assert re.fullmatch(r"[0-9a-f]{16}", a.id)
    # the same hash function, batch or single, and -0.0 == 0.0
    assert hash_params(np.array([[0.0, 1.0]]))[0] == hash_params(np.array([[-0.0, 1.0]]))[0]
    batch = space.tasks(np.array([[1.5, 2.0], [0.0, 0.0]]))
    assert batch[0].id == a.id and batch[0].params == (1.5, 2.0)


def test_box_validation_names_space_and_value():
    space = Box([0, 0], [3, 6], names=["h", "s"])
    with pytest.raises(
        TaskNotInSpace,
        match=re.escape(
            "Box(low=[0.0, 0.0], high=[3.0, 6.0], names=['h', 's']): parameter 's'=7.0 is outside [0.0, 6.0]"
        ),
    ):
        space.task([1, 7])
    with pytest.raises(TaskNotInSpace, match="parameter 'h' is NaN"):
        space.task([np.nan, 1])
    with pytest.raises(TaskNotInSpace, match=r"expected 2 parameters \['h', 's'\], got shape \(3,\)"):
        space.task([1, 2, 3])
    with pytest.raises(ConfigError, match=r"high\[0\]=0.0 is below low\[0\]=1.0"):
        Box([1], [0])


def test_box_unit_mapping_and_contains():
    space = Box([0, -1], [2, 1])
    u = space.to_unit([1.0, 0.0])
    assert np.allclose(u, [0.5, 0.5])
    assert np.allclose(space.from_unit(u), [1.0, 0.0])
    t = space.task([2, 1])
    assert space.contains(t)
    assert not space.contains(Task("x", (3.0, 0.0)))


def test_uniform_sampling_uses_given_rng_only():
    space = Box([0, 0], [1, 1])
    a = space.sample_uniform(np.random.default_rng(3), 5)
    b = space.sample_uniform(np.random.default_rng(3), 5)
    assert [t.id for t in a] == [t.id for t in b]
    assert all(space.contains(t) for t in a)


def test_discrete_space():
    d = Discrete(["coinrun", "bigfish", 7])
    t = d.task("bigfish")
    assert t.value == "bigfish" and d.index(t) == 1 and d.contains(t)
    with pytest.raises(
        TaskNotInSpace,
        match=re.escape("Discrete(['coinrun', 'bigfish', 7], n=3): value 'x' is not one of the 3 values"),
    ):
        d.task("x")
    with pytest.raises(ConfigError, match="values must be unique"):
        Discrete([1, 1])
    assert len(Discrete(10).sample_uniform(np.random.default_rng(0), 4)) == 4


def test_text_space_is_data_not_code():
    s = TextSpace(["collect wood"], max_length=80)
    evil = "__import__('os').system('echo pwned') <script>alert(1)</script>"
    t = s.task(evil)
    assert t.text == evil and t.origin == "generated"
    with pytest.raises(TaskNotInSpace, match="more than max_length=80"):
        s.task("x" * 81)
    with pytest.raises(TaskNotInSpace, match="must not be empty"):
        s.task("   ")
    child = s.task("collect wood twice", parent_ids=[t.id])
    assert child.parent_ids == (t.id,)


@pytest.mark.parametrize(
    "space",
    [Box([0, 1], [2, 3], names=["a", "b"]), Discrete([3, "x"]), TextSpace(["a"])],
    ids=["box", "discrete", "text"],
)
def test_space_round_trip(space):
    assert space_from_dict(json.loads(json.dumps(space.to_dict()))) == space


def test_task_and_outcome_round_trip():
    t = Task.from_text("place table", parent_ids=["abc"], params=(1, 2))
    assert Task.from_dict(json.loads(json.dumps(t.to_dict()))) == t
    o = Outcome(task_id=t.id, episode_return=1, success=True, length=3, info={"k": 1}, episode_id="e1")
    assert Outcome.from_dict(json.loads(json.dumps(o.to_dict()))) == o
    with pytest.raises(TaskNotInSpace, match="episode_return is NaN"):
        Outcome(task_id="a", episode_return=float("nan"))


def test_small_and_large_batch_hashes_agree():
    x = np.random.default_rng(0).normal(size=(40, 3)) * 1e6
    big = hash_params(x)
    small = [hash_params(row)[0] for row in x]
    assert big == small
    assert len(set(big)) == 40


def test_box_sample_array_draws_what_numpys_uniform_draws_bit_for_bit():
    """`Box.sample_array` skips ``uniform``'s checks; seeded runs must not change."""
    rng = np.random.default_rng(11)
    for trial in range(60):
        d = int(rng.integers(1, 9))
        low = rng.normal(size=d) * 10.0 ** rng.integers(-3, 6)
        high = low + np.abs(rng.normal(size=d)) * 10.0 ** rng.integers(-6, 6)
        if trial % 5 == 0:
            high[0] = low[0]  # a zero-width dimension
        box = Box(low, high)
        n = int(rng.integers(1, 2000))
        expected = np.random.default_rng(trial).uniform(low, high, size=(n, d))
        assert np.array_equal(box.sample_array(np.random.default_rng(trial), n), expected)
    huge = Box([-1e308], [1e308])  # high - low overflows: numpy's own error, as before
    with pytest.raises(OverflowError), np.errstate(over="ignore"):
        huge.sample_array(np.random.default_rng(0), 2)
