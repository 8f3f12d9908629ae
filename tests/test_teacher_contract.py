"""Every registered teacher through the same invariants (`check_teacher`), with readable ids."""

import re

import pytest
from support import bounded_address_space

from openended.errors import ConfigError, TeacherStateError, UnknownName
from openended.tasks import Box, Discrete, Outcome, TextSpace
from openended.teachers import list_teachers, make_teacher, teacher_class
from openended.teachers.checker import check_teacher

SPACES = {
    "box": Box([0, 0], [1, 1]),
    "discrete": Discrete(list(range(20))),
    "text": TextSpace([f"collect_wood_{i}" for i in range(1, 6)] + ["place_table", "make_wood_pickaxe"]),
}


def _cases():
    for name in list_teachers():
        cls = teacher_class(name)  # every registered teacher must import
        for kind in cls.space_kinds:
            presets = [None, *sorted(cls.PRESETS)] if kind == "box" else [None]
            for p in presets:
                yield pytest.param(name, (kind, p), id=f"{name}-{kind}-{p or 'default'}")


@pytest.mark.parametrize("name,case", list(_cases()))
def test_registered_teacher_honours_contract(name, case):
    kind, preset = case
    space = SPACES[kind]
    kw = {"preset": preset} if preset else {}
    kw.update(teacher_class(name).CHECK_OVERRIDES)
    check_teacher(lambda seed: make_teacher(name, space, seed=seed, **kw), rounds=40, batch=8)


def test_unknown_teacher_name_lists_choices():
    with pytest.raises(UnknownName, match=r"^unknown teacher 'alp-gmn'\. Did you mean 'alp_gmm'\? Registered: "):
        make_teacher("alp-gmn", SPACES["box"])


def test_aliases_and_case_are_accepted():
    assert make_teacher("Random", SPACES["box"]).name == "random"
    assert make_teacher("uniform", SPACES["box"]).name == "random"


def test_bad_config_names_field():
    msg = (
        "invalid configuration for teacher.random:\n"
        "teacher.random.max_tracked_tasks: Input should be greater than or equal to 1, got 0"
    )
    with pytest.raises(ConfigError, match=f"^{re.escape(msg)}$"):
        make_teacher("random", SPACES["box"], max_tracked_tasks=0)
    with pytest.raises(
        ConfigError,
        match=r"teacher\.random\.sed: unknown field\. Did you mean 'seed'\? Valid fields: "
        r"max_tracked_tasks, seed$",
    ):
        make_teacher("random", SPACES["box"], sed=1)
    with pytest.raises(ConfigError, match=r"teacher\.random\.preset: unknown preset 'x'"):
        make_teacher("random", SPACES["box"], preset="x")


def test_state_for_other_teacher_is_rejected():
    t = make_teacher("random", SPACES["box"])
    state = t.state_dict()
    state["teacher"] = "riac"
    with pytest.raises(TeacherStateError, match="^state is for teacher 'riac', not 'random'$"):
        make_teacher("random", SPACES["box"]).load_state_dict(state)
    other = make_teacher("random", Box([0], [1]))
    with pytest.raises(TeacherStateError, match="state was saved for space"):
        other.load_state_dict(t.state_dict())


def test_sample_argument_is_validated():
    t = make_teacher("random", SPACES["box"])
    with pytest.raises(ConfigError, match=r"^sample\(n\): n must be a positive int, got 0$"):
        t.sample(0)


def test_late_and_unknown_outcomes():
    t = make_teacher("random", SPACES["box"], max_tracked_tasks=4)
    first = t.sample(4)
    t.sample(4)  # pushes the first batch out of the bounded table
    with pytest.warns(RuntimeWarning, match="never issued"):
        t.update([Outcome(task_id=first[0].id, episode_return=0.0)])
    assert t.stats()["unknown_task_outcomes"] == 1
    t.register_tasks(first[:1])
    t.update([Outcome(task_id=first[0].id, episode_return=0.0)])
    assert t.stats()["outcomes"] == 1


def test_reissued_tasks_survive_eviction_of_their_older_batch():
    space = Discrete(list(range(6)))
    tasks = [space.task(v) for v in range(6)]
    t = make_teacher("random", space, max_tracked_tasks=4)
    t.register_tasks(tasks[:3])  # batch 1: 0 1 2
    t.register_tasks([tasks[0], tasks[3]])  # batch 2: 0 again, 3
    t.register_tasks([tasks[4]])  # 5 tracked > 4: batch 1 goes, but 0 was re-issued since
    assert [t.task_for_id(x.id) is not None for x in tasks] == [True, False, False, True, True, False]
    restored = make_teacher("random", space, max_tracked_tasks=4)
    restored.load_state_dict(t.state_dict())
    for teacher in (t, restored):
        teacher.register_tasks([tasks[5]])  # 0 3 4 5: at the limit, nothing goes
        teacher.register_tasks([tasks[1]])  # batch 2 goes (0 and 3) -- in the restored copy too
        assert [teacher.task_for_id(x.id) is not None for x in tasks] == [False, True, False, False, True, True]


def test_issued_tasks_stay_bounded_and_known_without_updates():
    t = make_teacher("random", SPACES["box"], max_tracked_tasks=100)
    first = t.sample(30)
    first_id = first[0].id
    first.clear()  # the caller owns the returned list
    assert t.task_for_id(first_id) is not None
    for _ in range(20):  # sampling with no update in between
        t.sample(30)
        assert t.stats()["tracked_tasks"] <= 200
    last = t.sample(30)
    with pytest.warns(RuntimeWarning, match="never issued"):
        t.update([Outcome(task_id=first_id, episode_return=0.0)])  # long evicted
    t.update([Outcome(task_id=x.id, episode_return=0.0) for x in last])
    assert t.stats()["outcomes"] == 30 and t.stats()["tracked_tasks"] <= 100


def _size_fields():
    """Every whole-number field of every registered teacher's config (seeds aside)."""
    for name in list_teachers():
        cls = teacher_class(name)
        for field, info in cls.Config.model_fields.items():
            if "int" in str(info.annotation) and "seed" not in field:
                yield pytest.param(name, field, id=f"{name}-{field}")


@pytest.mark.parametrize("name,field", list(_size_fields()))
def test_a_huge_size_in_a_teacher_config_is_refused_or_costs_nothing(name, field):
    """10**12 in any size field: a `ConfigError` naming the field, or a teacher that builds and samples.

    Never a MemoryError or a machine filled slowly (sizes come from experiment files).
    """
    space = SPACES[teacher_class(name).space_kinds[0]]
    make_teacher(name, space).close()  # the teacher's own imports first, unbounded (`bounded_address_space`)
    with bounded_address_space():
        try:
            teacher = make_teacher(name, space, **{field: 10**12})
        except ConfigError as e:
            assert field in str(e)
            return
        teacher.sample(4)
        teacher.close()
