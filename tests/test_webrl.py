"""WebRLTeacher: only novel, feasible, in-band tasks are admitted, with lineage; text stays data."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pytest

from openended.errors import ConfigError
from openended.moi.embedding import hashing_embed
from openended.tasks import Discrete, Outcome, Task, TextSpace
from openended.teachers import make_teacher
from openended.teachers.webrl import WebRLTeacher
from openended.teachers.webrl_generation import GeneratedTask, GrammarMutationGenerator

SEEDS = ["collect_wood", "collect_wood_2", "place_table", "collect_drink", "make_wood_pickaxe"]


class ListGenerator:
    """Returns a fixed list of proposals (an LLM stand-in)."""

    name = "list"

    def __init__(self, texts: Sequence[str]) -> None:
        self.texts = list(texts)
        self.seen: list[list[str]] = []

    def generate(self, failures: Sequence[Task], n: int) -> list[str]:
        self.seen.append([f.text for f in failures])
        return list(self.texts)


class TablePredictor:
    """Predicted success from a table keyed by the candidate's position (NaN = unknown)."""

    name = "table"

    def __init__(self, values: Sequence[float]) -> None:
        self.values = list(values)

    def predict(self, cand_vecs, known_vecs, known_success, known_attempts):
        return np.asarray(self.values[: len(cand_vecs)], dtype=float)


def _fail_all(t: WebRLTeacher, success: float = 0.2) -> None:
    outs = []
    for task in t.known_tasks():
        k = int(success * 10)
        outs += [Outcome(task.id, 1.0, success=True)] * k + [Outcome(task.id, 0.0, success=False)] * (10 - k)
    t.update(outs)


CRAFTER_VALIDATOR = "openended.envs.crafter:validate_crafter_task"


def _teacher(gen, predictor="knn", validator=CRAFTER_VALIDATOR, **kw) -> WebRLTeacher:
    return make_teacher(
        "webrl",
        TextSpace(SEEDS, max_length=200),
        generator=gen,
        predictor=predictor,
        validator=validator,
        embed=hashing_embed,
        phase_every=1000,
        generation_turns=1,
        **kw,
    )  # type: ignore


def test_admits_only_novel_feasible_in_band_with_lineage() -> None:
    cands = [
        "collect_wood",  # exact duplicate of the pool
        "Collect_Wood ",  # duplicate after normalisation
        "collect_unicorn_3",  # infeasible (not in the grammar)
        "dummy_task_0001",  # infeasible (impossible)
        "collect_wood_3",  # in band -> admitted
        "place_table then collect_drink",  # out of band (0.9)
        "make_wood_sword",
    ]  # in band -> admitted
    # feasible candidates in order: collect_wood_3, place_table then collect_drink, make_wood_sword
    t = _teacher(ListGenerator(cands), predictor=TablePredictor([0.3, 0.9, 0.06]))
    _fail_all(t)
    phase = t.run_phase_now()
    f = phase["funnel"]
    assert (f["generated"], f["duplicate"], f["infeasible"], f["out_of_band"], f["admitted"]) == (7, 2, 2, 1, 2)
    gen = t.generated_tasks()
    assert [g.text for g in gen] == ["collect_wood_3", "make_wood_sword"]
    seed_ids = {x.id for x in t.known_tasks() if x.origin != "generated"}
    for g in gen:
        assert g.origin == "generated" and g.parent_ids and set(g.parent_ids) <= seed_ids
    assert "infeasible" in phase["examples"] and "out_of_band" in phase["examples"]
    assert t.stats()["webrl/generated"] == 2
    ids = {x.id for x in t.sample(200)}
    assert ids <= {x.id for x in t.known_tasks()}


def test_near_duplicates_are_dropped_by_embedding_similarity() -> None:
    t = _teacher(
        ListGenerator(["wood collect", "collect wood and place table", "place table and collect wood"]),
        predictor=TablePredictor([0.3, 0.3, 0.3]),
        validator=None,
        dedupe_threshold=0.95,
    )
    _fail_all(t)
    f = t.run_phase_now()["funnel"]
    # "wood collect" has the same words as "collect_wood"; the reordered compound duplicates the first
    assert f["duplicate"] == 2 and f["admitted"] == 1


def test_knn_band_and_unpredicted_policy() -> None:
    t = _teacher(ListGenerator(["collect_wood_4", "eat_cow"]), admit_unpredicted=False)
    _fail_all(t, success=0.4)  # collect_wood* known at 0.4 -> wood_4 predicted ~0.4 (in band)
    f = t.run_phase_now()["funnel"]
    assert f["admitted"] == 1 and f["unpredicted"] == 1  # eat_cow shares no word with a known task
    t2 = _teacher(ListGenerator(["collect_wood_4"]))
    _fail_all(t2, success=0.0)  # predicted 0 -> below the band
    assert t2.run_phase_now()["funnel"]["out_of_band"] == 1


def test_no_failures_no_generation() -> None:
    gen = ListGenerator(["collect_wood_3"])
    t = _teacher(gen)
    _fail_all(t, success=1.0)
    assert t.run_phase_now()["funnel"]["generated"] == 0 and gen.seen == []


@pytest.mark.parametrize(
    "payload",
    [
        "<script>alert('x')</script>",
        "__import__('os').system('touch PWNED')",
        "'; DROP TABLE tasks; --",
        "\x1b[2J\x1b[31mred\u202e",
        "{{7*7}} ${jndi:ldap://x}",
    ],
)
def test_hostile_text_is_stored_verbatim_and_never_executed(payload: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    t = _teacher(ListGenerator([payload, "y" * 10_000]), predictor=TablePredictor([0.3, 0.3]), validator=None)
    _fail_all(t)
    f = t.run_phase_now()["funnel"]
    assert f["admitted"] == 1 and f["invalid"] == 1  # the huge one is over max_length
    (g,) = t.generated_tasks()
    assert g.text == payload.strip()
    assert not (tmp_path / "PWNED").exists()
    json.dumps(t.stats())
    state = json.loads(json.dumps(t.state_dict()))
    t2 = _teacher(ListGenerator([]), predictor=TablePredictor([]), validator=None)
    t2.load_state_dict(state)
    assert [x.text for x in t2.generated_tasks()] == [payload.strip()]


def test_crafter_validator_rejects_hostile_text() -> None:
    t = _teacher(ListGenerator(["<b>collect_wood_3</b>", "collect_wood_3; rm -rf /"]))
    _fail_all(t)
    assert t.run_phase_now()["funnel"]["infeasible"] == 2


def test_grammar_generator_is_seeded_and_mostly_valid() -> None:
    from openended.envs.crafter import crafter_task_set, validate_crafter_task

    space = TextSpace(crafter_task_set("tr", 0))
    fails = [space.task(x) for x in ["collect_wood_3", "place_table", "collect_drink then place_table"]]
    a = GrammarMutationGenerator(seed=1).generate(fails, 50)
    b = GrammarMutationGenerator(seed=1).generate(fails, 50)
    assert a == b and all(isinstance(g, GeneratedTask) for g in a)
    valid = sum(validate_crafter_task(g.text)[0] for g in a)
    assert valid >= 40
    assert all(set(g.parent_ids) <= {f.id for f in fails} for g in a)
    assert any(" and " in g.text or " then " in g.text for g in a)


def test_state_round_trip_including_generated_tasks_and_determinism() -> None:
    from openended.envs.crafter import crafter_task_set
    from openended.envs.crafter_sim import CrafterSimLearner

    tasks = crafter_task_set("tr", 10)

    def run(t, sim, rounds):
        out = []
        for _ in range(rounds):
            ts = t.sample(16)
            out += [x.id for x in ts]
            s = sim.run_episodes(sim.indices([x.text for x in ts]))
            t.update([Outcome(x.id, float(v), success=bool(v)) for x, v in zip(ts, s)])
        return out

    def make(seed=0):
        return make_teacher("webrl", TextSpace(tasks), seed=seed, phase_every=10, lp_update_every=5)

    a, b = make(), make()
    sa, sb = CrafterSimLearner(tasks, seed=0), CrafterSimLearner(tasks, seed=0)
    assert run(a, sa, 60) == run(b, sb, 60)
    assert a.stats()["webrl/phases"] >= 5
    state = json.loads(json.dumps(a.state_dict()))
    c = make(seed=9)
    c.load_state_dict(state)
    sc = CrafterSimLearner([], seed=0)
    sc.load_state_dict(sa.state_dict())
    assert [x.to_dict() for x in c.known_tasks()] == [x.to_dict() for x in a.known_tasks()]
    assert run(a, sa, 30) == run(c, sc, 30)
    for t in (a, b, c):
        t.close()


def test_discrete_space_admits_only_space_values() -> None:
    space = Discrete(["collect_wood", "collect_wood_2", "place_table", "collect_drink"])
    t = make_teacher(
        "webrl",
        space,
        tasks=["collect_wood", "place_table"],
        embed=hashing_embed,
        generator=ListGenerator(["collect_wood_2", "collect_wood_9"]),
        predictor=TablePredictor([0.3, 0.3]),
        phase_every=1000,
        generation_turns=1,
    )
    assert len(t.known_tasks()) == 2
    _fail_all(t)
    f = t.run_phase_now()["funnel"]
    assert f["admitted"] == 1 and f["invalid"] == 1
    assert [x.text for x in t.generated_tasks()] == ["collect_wood_2"]


def test_config_errors() -> None:
    with pytest.raises(ConfigError):
        make_teacher("webrl", TextSpace(SEEDS), band_low=0.8, band_high=0.2)
    with pytest.raises(ConfigError):
        make_teacher("webrl", TextSpace(SEEDS), validator="nope")
    with pytest.raises(ConfigError):
        make_teacher("webrl", TextSpace(SEEDS), generator=object())


def test_without_a_validator_grammar_invalid_text_is_admitted() -> None:
    """The teacher knows no env: by default nothing is filtered for feasibility."""
    t = make_teacher(
        "webrl",
        TextSpace(SEEDS, max_length=200),
        generator=ListGenerator(["collect_unicorn_3", "dummy_task_0001"]),
        predictor=TablePredictor([0.3, 0.3]),
        embed=hashing_embed,
        phase_every=1000,
        generation_turns=1,
    )
    assert t.config.validator is None and t.validator is None
    _fail_all(t)
    f = t.run_phase_now()["funnel"]
    assert f["infeasible"] == 0 and f["admitted"] == 2


def test_validator_as_callable_or_import_path() -> None:
    by_bool = _teacher(ListGenerator(["collect_wood_3", "make_wood_sword"]), TablePredictor([0.3, 0.3]), "x".__ne__)
    by_path = _teacher(ListGenerator(["collect_unicorn_3", "make_wood_sword"]), TablePredictor([0.3, 0.3]))
    for t in (by_bool, by_path):
        _fail_all(t)
        assert t.run_phase_now()["funnel"]["admitted"] == 2 - (t is by_path)
    assert by_path.validator("collect_unicorn_3") == (False, "not in the Crafter task grammar")
    assert by_bool.validator("x") == (False, "rejected")
    assert by_path.config.model_dump(mode="json")["validator"] == CRAFTER_VALIDATOR  # travels as plain data


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("no_such_module_xyz:check", "cannot import module 'no_such_module_xyz'"),
        ("openended.envs.crafter:no_such_function", "module 'openended.envs.crafter' has no attribute"),
        ("openended.envs.crafter:ACHIEVEMENTS", "is a tuple, not a function or other callable"),
        ("crafter", "is not an import path; write 'package.module:function'"),
    ],
)
def test_bad_validator_import_path_is_a_config_error_naming_the_field(path: str, says: str) -> None:
    with pytest.raises(ConfigError, match=r"teacher\.webrl\.validator: ") as err:
        make_teacher("webrl", TextSpace(SEEDS), validator=path)
    assert says in str(err.value)


def test_experiment_on_the_crafter_family_gets_the_crafter_validator() -> None:
    """The family declares its validator; the experiment config hands it to the teacher."""
    from openended.config import load_experiment, teacher_config

    exp = load_experiment("experiments/crafter_webrl.yaml")
    assert "validator" not in exp.teacher.config
    cfg = teacher_config(exp)
    assert cfg["validator"] == CRAFTER_VALIDATOR and cfg["seed"] == exp.seed
    t = make_teacher(exp.teacher.name, TextSpace(SEEDS, max_length=200), preset=exp.teacher.preset, **cfg)
    assert t.validator("collect_unicorn_3")[0] is False and t.validator("collect_wood_3") == (True, "ok")
    t.close()
    # an explicit null turns the filter off; an explicit path wins over the family's
    off = load_experiment("experiments/crafter_webrl.yaml", ["teacher.config.validator=null"])
    assert teacher_config(off)["validator"] is None
    mine = load_experiment("experiments/crafter_webrl.yaml", ["teacher.config.validator=json:loads"])
    assert teacher_config(mine)["validator"] == "json:loads"


def test_family_without_a_validator_adds_none_and_a_bad_path_stops_the_experiment() -> None:
    from openended.config import load_experiment, teacher_config

    exp = load_experiment({"name": "t", "env": {"family": "toy"}, "teacher": {"name": "webrl"}})
    assert "validator" not in teacher_config(exp)
    lp = load_experiment({"name": "t", "env": {"family": "crafter"}, "teacher": {"name": "lp"}})
    assert "validator" not in teacher_config(lp)  # the teacher has no such field
    with pytest.raises(ConfigError, match=r"teacher\.config\.validator: .*cannot import module 'nope'"):
        load_experiment("experiments/crafter_webrl.yaml", ["teacher.config.validator=nope:check"])


def _all_fail_after_one_step(**kw) -> WebRLTeacher:
    t = make_teacher("webrl", TextSpace(SEEDS, max_length=200), lp_update_every=1, phase_every=1000, seed=0, **kw)
    assert isinstance(t, WebRLTeacher)
    t.update([Outcome(x.id, 0.0, success=False) for x in t.known_tasks()])  # every seed observed, none solved
    return t


def test_newly_admitted_tasks_are_tried() -> None:
    t = _all_fail_after_one_step()
    new = t.add_tasks(["collect_stone", "collect_wood"])  # the second is already in the pool
    assert [x.text for x in new] == ["collect_stone"] and new[0].origin == "user"
    p = t.probabilities()
    assert p[-1] == p.max() and p[-1] > 1 / len(p)  # optimistic: the unobserved task leads
    assert "collect_stone" in {x.text for x in t.sample(50)}
    # reference (no prior, no floor): never-solved pool and the new task all flat -> new one ties
    ref = _all_fail_after_one_step(optimistic_new=False, explore=0.0)
    ref.update([Outcome(ref.known_tasks()[0].id, 1.0, success=True)])  # one solved: the rest drop to 0
    ref.add_tasks(["collect_stone"])
    assert ref.probabilities()[-1] == 0.0


def test_add_tasks_checks_the_space_first() -> None:
    t = make_teacher("webrl", TextSpace(SEEDS, max_length=20), seed=0)
    assert isinstance(t, WebRLTeacher)
    with pytest.raises(Exception, match="max_length|long"):
        t.add_tasks(["collect_stone", "x" * 40])
    assert len(t.known_tasks()) == len(SEEDS)


def test_phase_and_lp_cadence_count_outcomes_when_asked() -> None:
    t = make_teacher(
        "webrl",
        TextSpace(SEEDS, max_length=200),
        seed=0,
        update_unit="outcomes",
        lp_update_every=10,
        phase_every=20,
        refit_executor="inline",
    )
    assert isinstance(t, WebRLTeacher)
    a = t.known_tasks()[0].id
    for _ in range(3):  # three "flushes" of 3 outcomes: 9 < 10, no step yet
        t.update([Outcome(a, 0.0, success=False)] * 3)
    assert t._tracker.steps == 0 and t.stats()["webrl/phases"] == 0
    t.update([Outcome(a, 0.0, success=False)] * 11)
    assert t._tracker.steps == 1 and t.stats()["webrl/phases"] == 1
