"""Outcome infos as columns (`openended.runtime.info_columns`): whatever the infos, a batch
gives back exactly the outcomes it was built from, through pickling, `take`, `concat_outcomes`
and the event log's JSON (both array encodings); uniform scalar infos take the column form,
and so do dicts of scalars (a team's per-agent returns), each row with its own keys in order."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is in the test extra (requirements/dev.txt)")
from hypothesis import given, settings  # noqa: E402  # after the skip guard
from hypothesis import strategies as st  # noqa: E402

from openended.jsonio import dumps_fast  # noqa: E402
from openended.runtime.batch_json import outcome_batch_from_json, outcome_batch_to_json  # noqa: E402
from openended.runtime.codec import concat_outcomes, decode_outcomes, encode_outcomes  # noqa: E402
from openended.runtime.info_columns import InfoColumns, MappingColumn  # noqa: E402
from openended.tasks import Outcome  # noqa: E402


def outcomes_with(infos: list[dict]) -> list[Outcome]:
    return [Outcome(f"{i:016x}", 0.5, episode_id=f"{i + 1:016x}", info=info) for i, info in enumerate(infos)]


def typed(value: object) -> object:
    """``value`` with every scalar paired with its type, dicts as their items in order (order counts)."""
    if isinstance(value, dict):
        return [(k, typed(v)) for k, v in value.items()]
    return (type(value), value)


def same(a: list[Outcome], b: list[Outcome]) -> bool:
    """Equal, with the info values of the same Python types (a bool stays a bool, not 1) and
    nested dicts' keys in the same order."""
    return a == b and [[(k, typed(v)) for k, v in sorted(o.info.items())] for o in a] == [
        [(k, typed(v)) for k, v in sorted(o.info.items())] for o in b
    ]


def round_trips(outs: list[Outcome]) -> None:
    batch = encode_outcomes(outs)
    assert same(decode_outcomes(batch), outs)
    assert same(decode_outcomes(pickle.loads(pickle.dumps(batch, protocol=5))), outs)
    for enc in ("b64", "list"):
        logged = json.loads(dumps_fast(outcome_batch_to_json(batch, enc)))
        assert same(decode_outcomes(outcome_batch_from_json(logged)), outs), enc
    rows = np.arange(len(outs))[::-2]
    assert same(decode_outcomes(batch.take(rows)), [outs[i] for i in rows])
    half = len(outs) // 2
    parts = [encode_outcomes(outs[:half]), encode_outcomes(outs[half:])] if half else [batch]
    assert same(decode_outcomes(concat_outcomes(parts)), outs)


def test_an_env_hosts_infos_become_columns_and_come_back_as_python_values():
    outs = outcomes_with([{"terminated": i % 3 == 0, "steps": i, "score": i / 7} for i in range(50)])
    batch = encode_outcomes(outs)
    assert isinstance(batch.infos, InfoColumns) and batch.infos.keys == ("terminated", "steps", "score")
    assert [c.dtype for c in batch.infos.columns] == [np.bool_, np.int64, np.float64]
    assert "info_columns" in outcome_batch_to_json(batch) and "infos" not in outcome_batch_to_json(batch)
    assert len(pickle.dumps(batch.infos, protocol=5)) < len(pickle.dumps([o.info for o in outs], protocol=5))
    round_trips(outs)


@pytest.mark.parametrize(
    "infos",
    [
        [{"terminated": True}, {"terminated": 1}],  # a bool and an int under one key
        [{"terminated": True}, {}],  # a row without the key
        [{"terminated": True}, {"terminated": True, "extra": 1}],  # different key sets
        [{"x": 2**70}, {"x": 1}],  # an int beyond int64
        [{"x": float("nan")}, {"x": 1.0}],  # not finite
        [{"x": "a"}, {"x": "b"}],  # strings
        [{"agent_returns": [1.0, 2.0]}, {"agent_returns": [0.0]}],  # a team's per-agent returns
        [{1: True}, {1: False}],  # a key that is not a string
    ],
    ids=["bool-and-int", "missing-key", "other-keys", "big-int", "nan", "str", "list", "int-key"],
)
def test_infos_that_are_not_uniform_scalars_stay_dicts(infos):
    batch = encode_outcomes(outcomes_with(infos))
    assert isinstance(batch.infos, list)
    if not any(isinstance(k, int) for i in infos for k in i) and not any(
        isinstance(v, float) and v != v for i in infos for v in i.values()
    ):  # JSON turns int keys into strings and NaN never equals itself: only the pickle path is exact there
        round_trips(outcomes_with(infos))


def team_infos(n: int) -> list[dict]:
    """What a team env's host reports: ``terminated`` and the per-agent returns of teams of 2-4."""
    return [
        {"terminated": i % 2 == 0, "agent_returns": {f"agent_{j}": i * 0.25 - j for j in range(2 + i % 3)}}
        for i in range(n)
    ]


def test_a_teams_per_agent_returns_become_one_mapping_column():
    outs = outcomes_with(team_infos(30))
    batch = encode_outcomes(outs)
    assert isinstance(batch.infos, InfoColumns)
    col = batch.infos.columns[1]
    assert isinstance(col, MappingColumn) and col.fields == ("agent_0", "agent_1", "agent_2", "agent_3")
    assert col.values.shape == (30, 4) and len(col.layouts) == 3 and col.dtype == np.float64
    assert len(pickle.dumps(batch.infos, protocol=5)) < len(pickle.dumps([o.info for o in outs], protocol=5))
    round_trips(outs)


def test_each_row_of_a_mapping_column_keeps_its_own_keys_in_its_own_order():
    infos = [{"r": {"b": 1, "a": 2}}, {"r": {"a": 3, "b": 4}}, {"r": {}}, {"r": {"c": 5}}, {"r": {"b": 6, "a": 7}}]
    col = InfoColumns.of(infos)
    assert col is not None and isinstance(col.columns[0], MappingColumn) and col.columns[0].dtype == np.int64
    assert [list(row["r"].items()) for row in col] == [list(i["r"].items()) for i in infos]
    assert [list(col[i]["r"]) for i in range(5)] == [list(i["r"]) for i in infos]
    round_trips(outcomes_with(infos))


@pytest.mark.parametrize(
    "values",
    [
        [{"a": 1.0}, {"a": 1}],  # a float and an int inside
        [{"a": 1.0}, 2.0],  # a dict and a scalar under one key
        [{"a": {"x": 1.0}}],  # nested twice
        [{"a": [1.0]}],  # a list inside
        [{1: 1.0}],  # a key that is not a string
        [{"a": float("inf")}],  # not finite
        [{f"k{i}": 1.0} for i in range(257)],  # more key orders than a uint8 code names
    ],
    ids=["float-and-int", "dict-and-scalar", "nested", "list", "int-key", "inf", "257-layouts"],
)
def test_dicts_that_are_not_uniform_scalars_inside_stay_dicts(values):
    infos = [{"r": v} for v in values]
    batch = encode_outcomes(outcomes_with(infos))
    assert isinstance(batch.infos, list)
    if not any(isinstance(v, dict) and (1 in v or v.get("a") == float("inf")) for v in values):
        round_trips(outcomes_with(infos))


def test_concatenated_mapping_columns_merge_fields_and_layouts():
    a = outcomes_with([{"r": {"x": 1.0, "y": 2.0}}] * 3)
    b = outcomes_with([{"r": {"z": 3.0}}, {"r": {"y": 4.0, "x": 5.0}}])
    merged = concat_outcomes([encode_outcomes(a), encode_outcomes(b)])
    col = merged.infos.columns[0]
    assert isinstance(col, MappingColumn) and col.fields == ("x", "y", "z") and len(col.layouts) == 3
    assert same(decode_outcomes(merged), a + b)
    ints = outcomes_with([{"r": {"x": 1}}])  # int64 values: not the same column as a's floats
    mixed = concat_outcomes([encode_outcomes(a), encode_outcomes(ints)])
    assert isinstance(mixed.infos, list) and same(decode_outcomes(mixed), a + ints)
    many = [encode_outcomes(outcomes_with([{"r": {f"k{i}": 1.0}}])) for i in range(257)]
    assert isinstance(concat_outcomes(many).infos, list)  # past 256 key orders: dicts again


def test_a_team_env_pool_sends_its_infos_as_columns():
    """A real PettingZoo pool's reports: the mapping column, not dicts (`recorded_traffic.py` measures the cost)."""
    pytest.importorskip("pettingzoo", reason="pettingzoo is in the base requirements")
    from openended.envs.registry import env_task_space
    from openended.runtime.client import LocalTeacherClient
    from openended.runtime.core import TeacherServiceCore
    from openended.runtime.envpool import EnvPoolCore

    core = TeacherServiceCore()
    core.add_curriculum("c", "random", env_task_space("simple_spread").to_dict(), config={"seed": 0})
    sent = []
    report = core.report

    def keep(curriculum, batch):
        sent.append(batch)
        return report(curriculum, batch)

    core.report = keep  # type: ignore[method-assign]
    client = LocalTeacherClient(core, "c", flush_every=8)
    pool = EnvPoolCore("simple_spread", None, 4, client, steps_per_call=25, seed=0)
    while pool.total_episodes < 16:
        pool.step()
    client.flush()
    pool.close()
    assert sent and all(isinstance(b.infos, InfoColumns) for b in sent)
    assert all(isinstance(b.infos.columns[b.infos.keys.index("agent_returns")], MappingColumn) for b in sent)
    assert all(set(info["agent_returns"]) >= {"agent_0", "agent_1"} for b in sent for info in b.infos)


def test_concatenating_column_and_dict_infos_keeps_every_row():
    a = outcomes_with([{"terminated": True}] * 3)
    b = outcomes_with([{"agent_returns": [1.0]}] * 2)
    c = outcomes_with([{"terminated": 1}] * 2)  # columns too, but int64: not the same columns as a's
    merged = concat_outcomes([encode_outcomes(a), encode_outcomes(b), encode_outcomes(c)])
    assert isinstance(merged.infos, list) and same(decode_outcomes(merged), a + b + c)
    both = concat_outcomes([encode_outcomes(a), encode_outcomes(a)])
    assert isinstance(both.infos, InfoColumns) and same(decode_outcomes(both), a + a)


def test_columns_read_as_the_list_of_dicts_they_replace():
    cols = InfoColumns.of([{"t": True}, {"t": False}, {"t": True}])
    assert cols is not None and len(cols) == 3 and cols[-1] == {"t": True} and cols[1:] == [{"t": False}, {"t": True}]
    assert cols == [{"t": True}, {"t": False}, {"t": True}] and cols != [{"t": True}]
    with pytest.raises(ValueError, match="one column per key"):
        InfoColumns(("a", "b"), (np.zeros(2),))


scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=3),
)
agent_ids = st.sampled_from(["a0", "a1", "a2", "adv"])


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.sampled_from(["terminated", "k", "z"]), min_size=1, max_size=3, unique=True),
    st.integers(min_value=1, max_value=12),
    st.data(),
)
def test_any_infos_round_trip_exactly(keys, n, data):
    uniform = data.draw(st.booleans())
    if uniform:  # the common case: one type per key, or dicts of one type (a team's returns)
        kinds = {
            k: data.draw(
                st.sampled_from(
                    [
                        st.booleans(),
                        st.integers(-5, 5),
                        st.floats(-1e6, 1e6),
                        st.dictionaries(agent_ids, st.floats(-1e6, 1e6), max_size=4),
                    ]
                )
            )
            for k in keys
        }
        infos = [{k: data.draw(kinds[k]) for k in keys} for _ in range(n)]
    else:
        values = st.one_of(scalars, st.dictionaries(agent_ids, scalars, max_size=3))
        infos = [data.draw(st.dictionaries(st.sampled_from(keys), values, max_size=len(keys))) for _ in range(n)]
    round_trips(outcomes_with(infos))
