"""Property-based tests (hypothesis): spaces, task ids, the codec, teacher state and ``update``.

Each property is what the rest of the system relies on, checked over generated inputs
rather than hand-picked ones: any input either works as documented or is refused with a
project error (`openended.errors.Error`), never another exception.
"""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest
from support import teacher_spaces

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is in the test extra (requirements/dev.txt)")
from hypothesis import HealthCheck, assume, given, settings  # noqa: E402  # after the skip guard
from hypothesis import strategies as st  # noqa: E402

from openended.errors import Error, InvalidArgument, TaskNotInSpace  # noqa: E402
from openended.runtime.batch_json import (  # noqa: E402
    outcome_batch_from_json,
    outcome_batch_to_json,
    task_batch_from_json,
    task_batch_to_json,
)
from openended.runtime.codec import decode_outcomes, decode_tasks, encode_outcomes, encode_tasks  # noqa: E402
from openended.tasks import Box, Discrete, Outcome, Task, TextSpace, space_from_dict  # noqa: E402
from openended.teachers import make_teacher  # noqa: E402

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
anything_numberish = st.one_of(
    st.floats(), st.integers(), st.text(max_size=5), st.none(), st.booleans(), st.lists(st.integers(), max_size=2)
)


@st.composite
def boxes(draw: st.DrawFn) -> Box:
    dim = draw(st.integers(1, 6))
    lo = np.array(draw(st.lists(st.floats(-1e6, 1e6), min_size=dim, max_size=dim)))
    span = np.array(draw(st.lists(st.floats(0, 1e6), min_size=dim, max_size=dim)))
    return Box(lo, lo + span)


# --------------------------------------------------------------------------- spaces
@FAST
@given(boxes(), st.lists(st.one_of(finite, st.just(math.nan)), min_size=1, max_size=7))
def test_box_accepts_exactly_the_finite_in_range_vectors_of_its_dimension(box, params):
    inside = len(params) == box.dim and all(
        not math.isnan(p) and lo <= p <= hi for p, lo, hi in zip(params, box.low, box.high)
    )
    try:
        task = box.task(params)
    except TaskNotInSpace:
        assert not inside
        return
    assert inside and box.contains(task) and box.check_task(task) is task
    assert box.task(task.params).id == task.id  # the id is a function of the parameters


@FAST
@given(boxes(), st.integers(0, 2**32 - 1), st.integers(1, 50))
def test_box_samples_stay_inside_and_round_trip_through_to_dict(box, seed, n):
    tasks = box.sample_uniform(np.random.default_rng(seed), n)
    assert all(box.contains(t) for t in tasks)
    again = space_from_dict(json.loads(json.dumps(box.to_dict())))
    assert again == box and [again.task(t.params).id for t in tasks] == [t.id for t in tasks]


@FAST
@given(st.lists(st.one_of(st.integers(-(10**12), 10**12), st.text(max_size=8)), min_size=1, max_size=30, unique=True))
def test_discrete_ids_are_distinct_stable_and_salted_by_the_space_name(values):
    space = Discrete(values, name="a")
    ids = [space.task(v).id for v in values]
    assert len(set(ids)) == len(ids)
    assert [Discrete(values, name="a").task(v).id for v in values] == ids
    assert set(ids).isdisjoint(Discrete(values, name="b").task(v).id for v in values)
    assert space_from_dict(json.loads(json.dumps(space.to_dict()))) == space


@FAST
@given(st.text(max_size=40), st.integers(1, 30))
def test_text_space_accepts_exactly_valid_texts_and_refuses_the_rest_with_its_error(text, max_length):
    space = TextSpace(["s"], max_length=max_length)
    valid = bool(text.strip()) and len(text) <= max_length
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        valid = False
    try:
        task = space.task(text)
    except TaskNotInSpace:
        assert not valid
        return
    assert valid and task.text == text and space.contains(task)
    assert task.id == space.task(text).id and len(task.id) == 16


@FAST
@given(st.one_of(st.none(), st.integers(), st.floats(), st.binary(max_size=4), st.lists(st.text(max_size=3))))
def test_non_text_task_texts_are_refused_with_project_errors(value):
    with pytest.raises(TaskNotInSpace):
        TextSpace(["x"]).task(value)
    with pytest.raises(InvalidArgument):
        Task.from_text(value)


# ------------------------------------------------------------------------- task ids
@FAST
@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=200))
def test_box_ids_batch_equals_one_by_one_and_differ_for_different_params(points):
    box = Box([0, 0], [1, 1])
    batch = box.tasks(np.array(points, dtype=np.float64))
    assert [t.id for t in batch] == [box.task(p).id for p in points]
    distinct = {np.array(p, dtype=np.float64).tobytes() for p in points}
    assert len({t.id for t in batch}) == len(distinct)


# ---------------------------------------------------------------------------- codec
@st.composite
def outcomes(draw: st.DrawFn) -> Outcome:
    return Outcome(
        task_id=draw(st.sampled_from([f"{i:016x}" for i in range(5)] + ["not-hex-id"])),
        episode_return=draw(finite),
        success=draw(st.one_of(st.none(), st.booleans())),
        length=draw(st.one_of(st.none(), st.integers(0, 2**31 - 1))),
        student_id=draw(st.sampled_from(["default", "alice", "ünï 学生"])),
        info=draw(st.one_of(st.just({}), st.dictionaries(st.text(max_size=4), st.integers(), max_size=2))),
        t=draw(st.floats(0, 2e9)),
        episode_id=draw(st.one_of(st.none(), st.sampled_from(["e1", f"{7:016x}"]))),
    )


@FAST
@given(st.lists(outcomes(), max_size=40))
def test_outcome_batches_round_trip_exactly_through_pickle_and_json(batch):
    encoded = encode_outcomes(batch)
    assert decode_outcomes(pickle.loads(pickle.dumps(encoded))) == batch
    via_json = outcome_batch_from_json(json.loads(json.dumps(outcome_batch_to_json(encoded))))
    assert decode_outcomes(via_json) == batch


@FAST
@given(st.lists(st.tuples(st.floats(-5, 5), st.floats(-5, 5), st.floats(-5, 5)), min_size=1, max_size=40))
def test_box_task_batches_round_trip_exactly(points):
    box = Box([-5, -5, -5], [5, 5, 5])
    tasks = box.tasks(np.array(points))
    assert decode_tasks(pickle.loads(pickle.dumps(encode_tasks(tasks, "box")))) == tasks
    assert (
        decode_tasks(task_batch_from_json(json.loads(json.dumps(task_batch_to_json(encode_tasks(tasks, "box"))))))
        == tasks
    )


@FAST
@given(st.lists(st.text(min_size=1, max_size=30).filter(str.strip), min_size=1, max_size=20))
def test_text_task_batches_round_trip_exactly(texts):
    assume(all(_encodable(t) for t in texts))
    tasks = [Task.from_text(t, origin="generated") for t in texts]
    assert decode_tasks(pickle.loads(pickle.dumps(encode_tasks(tasks, "text")))) == tasks


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# ----------------------------------------------------- teachers: update and state
SPACES = teacher_spaces()
#: Small refit settings so the model-fitting teachers fit within a short stream.
FAST_CONFIG = {
    "alp_gmm": {"fit_rate": 20, "refit_executor": "inline"},
    "covar_gmm": {"fit_rate": 20, "refit_executor": "inline"},
    "riac": {"max_region_size": 20},
}

#: Any finite return, up to the largest float (returns beyond ~1e150 once overflowed the
#: GMM fits into NaN tasks; such a fit is now rejected and counted).
returns = finite

#: A stream: per step, how many tasks to sample and, per sampled task, a return (or a
#: stray outcome for a task never issued), success, and whether to report it at all.
steps = st.lists(
    st.tuples(
        st.integers(1, 12),
        st.lists(st.tuples(returns, st.one_of(st.none(), st.booleans()), st.booleans()), min_size=12, max_size=12),
        st.booleans(),
    ),
    min_size=1,
    max_size=12,
)


def _drive(teacher, stream) -> int:
    """Play ``stream`` into ``teacher``; return how many outcomes of issued tasks it was given."""
    given_known = 0
    for n, results, stray in stream:
        tasks = teacher.sample(n)
        batch = [
            Outcome(t.id, ret, success=succ, student_id="default")
            for t, (ret, succ, report) in zip(tasks, results)
            if report
        ]
        given_known += len(batch)
        if stray:
            batch.append(Outcome("ffffffffffffffff", 0.5))
        teacher.update(batch[::-1])  # any order
    return given_known


@pytest.mark.parametrize("name", sorted(SPACES))
@SLOW
@given(stream=steps)
def test_update_takes_any_stream_of_finite_outcomes_and_counts_them(name, stream):
    with make_teacher(name, SPACES[name], seed=0, **FAST_CONFIG.get(name, {})) as teacher:
        known = _drive(teacher, stream)
        stats = teacher.stats()
        assert stats["outcomes"] == known
        assert all(SPACES[name].contains(t) for t in teacher.sample(8))
        json.dumps(teacher.state_dict())  # always serialisable (inf returns used to break PLR's)


@pytest.mark.parametrize("name", sorted(SPACES))
@SLOW
@given(stream=steps, tail=st.integers(1, 16))
def test_state_round_trip_through_json_continues_identically(name, stream, tail):
    config = FAST_CONFIG.get(name, {})
    with make_teacher(name, SPACES[name], seed=0, **config) as teacher:
        _drive(teacher, stream)
        state = json.loads(json.dumps(teacher.state_dict()))
        with make_teacher(name, SPACES[name], seed=99, **config) as restored:
            restored.load_state_dict(state)
            assert restored.sample(tail) == teacher.sample(tail)
            assert restored.stats()["outcomes"] == teacher.stats()["outcomes"]


@FAST
@given(st.lists(anything_numberish, min_size=1, max_size=5))
def test_outcome_returns_are_finite_numbers_or_a_project_error(values):
    for v in values:
        try:
            o = Outcome("0000000000000001", v)  # type: ignore[arg-type]
        except Error:
            continue
        assert isinstance(o.episode_return, float) and math.isfinite(o.episode_return)
