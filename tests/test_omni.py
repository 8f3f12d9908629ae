"""OMNITeacher: Algorithm 1 on a hand-built table, x0.001 weighting, background judge, determinism, state."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence

import numpy as np
import pytest

from openended.errors import ConfigError
from openended.moi.base import Judge, JudgeContext, Judgement, candidate_text
from openended.tasks import Discrete, Outcome, Task
from openended.teachers import make_teacher
from openended.teachers.omni import BORING, INTERESTING, OMNITeacher, partition_tasks


def family(text: str) -> str:
    return text.rsplit("_", 1)[0] if text[-1].isdigit() else text


class FamilyJudge:
    """Deterministic rule judge: B is boring given A iff they share a family (wood_1 ~ wood_2)."""

    name = "family"

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def judge(self, candidates: Sequence[Task | str], context: JudgeContext) -> list[Judgement]:
        a = context.mastered[0]
        self.calls.append((a, len(candidates)))
        return [
            Judgement(0.0 if family(candidate_text(c)) == family(a) else 1.0, f"same family as {a}", True, self.name)
            for c in candidates
        ]


class TableJudge:
    """Answers from a hand-written table interesting[A][B] (OMNI's cached-prediction format)."""

    name = "table"

    def __init__(self, table: dict[str, dict[str, bool]]) -> None:
        self.table = table

    def judge(self, candidates, context):
        row = self.table[context.mastered[0]]
        return [
            Judgement(1.0 if row.get(candidate_text(c), True) else 0.0, "table", True, self.name) for c in candidates
        ]


TEXTS = ["wood_1", "wood_2", "wood_3", "table", "pickaxe", "dummy"]


def test_algorithm1_on_hand_built_table() -> None:
    # interesting[A][B] = False entries; everything else interesting
    table = {t: {} for t in TEXTS}
    table["wood_2"] = {"wood_1": False, "wood_3": False}
    table["wood_1"] = {"wood_2": False, "wood_3": False, "table": False}
    table["table"] = {"pickaxe": False}
    success = np.array([0.5, 0.9, 0.1, 0.3, 0.0, 0.0])
    res = partition_tasks(TableJudge(table), TEXTS, TEXTS, success, cache={})
    lab = dict(zip(TEXTS, res["labels"].tolist()))
    # order: wood_2 (0.9) -> interesting, marks wood_1, wood_3 boring; wood_1 is skipped (labelled),
    # so its row never applies and table stays unlabelled; table (0.3) -> interesting, marks pickaxe;
    # dummy (0.0) -> interesting.
    assert lab == {
        "wood_2": INTERESTING,
        "wood_1": BORING,
        "wood_3": BORING,
        "table": INTERESTING,
        "pickaxe": BORING,
        "dummy": INTERESTING,
    }
    assert "given 'wood_2'" in res["reasons"][0]


def test_ties_keep_task_order_and_failed_verdicts_count_as_interesting() -> None:
    class Flaky:
        name = "flaky"

        def judge(self, candidates, context):
            return [Judgement(0.0, "x", ok=False) for _ in candidates]

    res = partition_tasks(Flaky(), TEXTS, TEXTS, np.zeros(6), cache={})
    assert res["labels"].tolist() == [INTERESTING] * 6 and res["errors"] > 0 and res["fresh"] == {}

    class Raises:
        name = "raises"

        def judge(self, candidates, context):
            raise RuntimeError("backend down")

    res = partition_tasks(Raises(), TEXTS, TEXTS, np.zeros(6), cache={})
    assert res["labels"].tolist() == [INTERESTING] * 6 and "backend down" in res["last_error"]


def _omni(space: Discrete, judge, **kw) -> OMNITeacher:
    return make_teacher("omni", space, judge=judge, seed=kw.pop("seed", 0), **kw)  # type: ignore[return-value]


def _success(t: OMNITeacher, rates: dict[str, float], rounds: int) -> None:
    tasks = {x.text: x for x in t.known_tasks()}
    for _ in range(rounds):
        outs = []
        for text, r in rates.items():
            k = int(round(r * 10))
            outs += [Outcome(tasks[text].id, 1.0, success=True)] * k
            outs += [Outcome(tasks[text].id, 0.0, success=False)] * (10 - k)
        t.update(outs)


def test_boring_weight_and_renormalisation() -> None:
    space = Discrete(TEXTS)
    judge = FamilyJudge()
    t = _omni(space, judge, partition_every=1, refit_executor="inline", explore=0.0)  # the formula alone
    _success(t, {"wood_1": 0.5, "wood_2": 0.9, "wood_3": 0.1, "table": 0.3}, 3)
    t.refresh_partition()
    part = t.partition()
    ids = {x.text: x.id for x in t.known_tasks()}
    assert set(part["boring"]) == {ids["wood_1"], ids["wood_3"]}
    base = t.base.probabilities()
    w = np.array([0.001 if x.id in part["boring"] else 1.0 for x in t.known_tasks()])
    np.testing.assert_allclose(t.probabilities(), base * w / (base * w).sum())
    s = t.stats()
    assert s["omni/boring"] == 2 and any("same family" in b["reason"] for b in s["omni/boring_tasks"])
    # verdicts are cached: a second partition asks nothing new
    n = len(judge.calls)
    t.refresh_partition()
    assert len(judge.calls) == n


class BlockingJudge:
    """Blocks until released: stands in for a slow LLM."""

    name = "blocking"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()

    def judge(self, candidates, context):
        self.entered.set()
        self.release.wait(10)
        return [Judgement(1.0, "ok", True, self.name) for _ in candidates]


@pytest.mark.parametrize("swap", ["next_update", "asap"])
def test_sampling_never_waits_on_a_slow_judge(swap: str) -> None:
    space = Discrete(TEXTS)
    judge = BlockingJudge()
    t = _omni(space, judge, partition_every=1, refit_swap=swap)
    try:
        _success(t, {"wood_1": 0.5}, 1)  # submits a partition, which blocks in the judge
        assert judge.entered.wait(5)
        worst = 0.0
        for _ in range(200):
            t0 = time.perf_counter()
            t.sample(1)
            worst = max(worst, time.perf_counter() - t0)
        assert t.refitter.busy  # the judge is still running
        assert worst < 0.05
        if swap == "asap":  # updates do not wait either; the due partition is postponed
            t0 = time.perf_counter()
            _success(t, {"wood_1": 0.5}, 1)
            assert time.perf_counter() - t0 < 0.5
    finally:
        judge.release.set()
        t.close()
    assert t.stats()["sample_ms_p99"] < 50


def _run(t: OMNITeacher, rounds: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    p = {x.id: (i % 4) / 4 for i, x in enumerate(t.known_tasks())}
    out = []
    for _ in range(rounds):
        ts = t.sample(8)
        out += [x.id for x in ts]
        t.update([Outcome(x.id, 0.0, success=bool(rng.random() < p[x.id])) for x in ts])
    return out


def test_determinism_and_state_round_trip_with_a_pending_partition() -> None:
    space = Discrete([f"wood_{i}" for i in range(1, 6)] + [f"stone_{i}" for i in range(1, 6)] + ["table"])
    # next_update: the reproducible swap (the default, asap, installs whenever the thread is done)
    a = _omni(space, FamilyJudge(), partition_every=3, base_config={"update_every": 3}, refit_swap="next_update")
    b = _omni(space, FamilyJudge(), partition_every=3, base_config={"update_every": 3}, refit_swap="next_update")
    assert _run(a, 12, 0) == _run(b, 12, 0)  # the 12th update submitted a partition (pending)
    state = json.loads(json.dumps(a.state_dict()))
    assert state["has_staged_fit"]
    c = _omni(
        space, FamilyJudge(), partition_every=3, base_config={"update_every": 3}, seed=5, refit_swap="next_update"
    )
    c.load_state_dict(state)
    assert _run(a, 9, 1) == _run(c, 9, 1)
    assert a.partition() == c.partition() and a.stats()["omni/boring"] > 0
    for t in (a, b, c):
        t.close()


def test_real_rule_oracle_on_crafter_tasks() -> None:
    from openended.envs.crafter import crafter_task_set

    space = Discrete(crafter_task_set("tr", impossible=0))
    t = _omni(space, "oracle", partition_every=1, refit_executor="inline")
    _success(t, {"collect_wood_3": 0.9, "collect_drink": 0.6}, 2)
    t.refresh_partition()
    boring = {x.text for x in t.known_tasks() if x.id in set(t.partition()["boring"])}
    assert "collect_wood_5" in boring and "collect_drink_2" in boring
    assert "place_table" not in boring and "collect_wood_3" not in boring
    t.close()


def test_embedding_judge_with_injected_embedder() -> None:
    from openended.moi.embedding import hashing_embed

    space = Discrete(["collect wood", "collect wood again", "place table"])
    t = _omni(
        space,
        "embedding",
        judge_config={"embed_fn": hashing_embed, "duplicate_similarity": 0.6},
        partition_every=1,
        refit_executor="inline",
    )
    _success(t, {"collect wood": 0.9}, 1)
    t.refresh_partition()
    boring = {x.text for x in t.known_tasks() if x.id in set(t.partition()["boring"])}
    assert boring == {"collect wood again"}
    t.close()


def test_config_errors() -> None:
    with pytest.raises(ConfigError):
        make_teacher("omni", Discrete(3), judge=object())
    with pytest.raises(ConfigError):
        make_teacher("omni", Discrete(3), judge=FamilyJudge(), base="random")
    assert isinstance(FamilyJudge(), Judge)


def test_partition_and_lp_step_on_evaluation_sweeps_not_flushes() -> None:
    # OMNI's protocol through a service: update() runs per client flush, so the cadence counts
    # evaluation sweeps (update() calls carrying eval-flagged outcomes) instead.
    space = Discrete(TEXTS)
    judge = FamilyJudge()
    t = _omni(space, judge, partition_every=1, partition_unit="evaluations", refit_executor="inline")
    ids = [x.id for x in t.known_tasks()]
    for _ in range(7):  # training flushes only: no LP step, no partition
        t.update([Outcome(ids[0], 1.0, success=True), Outcome(ids[1], 0.0, success=False)])
    assert t.stats()["omni/base/lp/steps"] == 0 and t.stats()["partitions"] == 0 and judge.calls == []
    sweep = [Outcome(i, 1.0, success=k < 2, info={"eval": True}) for k, i in enumerate(ids)]
    t.update(sweep)
    s = t.stats()
    assert s["omni/base/lp/steps"] == 1 and s["omni/base/lp/source"] == "eval"
    assert s["partitions"] == 1 and judge.calls and s["omni/boring"] > 0


def test_partition_every_counts_outcomes() -> None:
    t = _omni(Discrete(TEXTS), FamilyJudge(), partition_every=20, partition_unit="outcomes", refit_executor="inline")
    ids = [x.id for x in t.known_tasks()]
    t.update([Outcome(ids[0], 1.0, success=True)] * 19)
    assert t.stats()["partitions"] == 0
    t.update([Outcome(ids[0], 1.0, success=True)])
    assert t.stats()["partitions"] == 1 and t.stats()["omni/base/lp/steps"] == 1


def test_boring_labels_record_the_learned_task_and_score_in_stats_view_and_state() -> None:
    space = Discrete(TEXTS)
    t = _omni(space, FamilyJudge(), partition_every=1, refit_executor="inline")
    _success(t, {"wood_1": 0.5, "wood_2": 0.9, "wood_3": 0.1, "table": 0.3}, 3)
    t.refresh_partition()
    ids = {x.text: x.id for x in t.known_tasks()}
    why = t.boring_reasons()
    assert set(why) == {ids["wood_1"], ids["wood_3"]}
    w = why[ids["wood_3"]]
    assert w["given_id"] == ids["wood_2"] and w["given"] == "wood_2" and w["score"] == 0.0
    assert w["given_success"] == pytest.approx(t.base.success_estimates()[1])
    listed = {b["id"]: b for b in t.stats()["omni/boring_tasks"]}
    assert listed[ids["wood_1"]]["given_id"] == ids["wood_2"] and "same family" in listed[ids["wood_1"]]["reason"]
    rows = {r["id"]: r for r in t.view()["rows"]}
    assert rows[ids["wood_3"]]["given"] == "wood_2" and rows[ids["wood_3"]]["judge_score"] == 0.0
    c = _omni(space, FamilyJudge(), partition_every=1, refit_executor="inline")
    c.load_state_dict(json.loads(json.dumps(t.state_dict())))
    assert c.boring_reasons() == why and c.stats()["omni/judge_cache_pairs"] == t.stats()["omni/judge_cache_pairs"]


class CountingJudge(FamilyJudge):
    """FamilyJudge that counts the (A, B) pairs it is asked."""

    def __init__(self) -> None:
        super().__init__()
        self.pairs: list[tuple[str, str]] = []

    def judge(self, candidates, context):
        self.pairs += [(context.mastered[0], candidate_text(c)) for c in candidates]
        return super().judge(candidates, context)


def test_partitions_only_judge_pairs_never_asked() -> None:
    from openended.tasks import TextSpace

    space = TextSpace(TEXTS)
    judge = CountingJudge()
    t = _omni(space, judge, partition_every=1, refit_executor="inline")
    _success(t, {"wood_1": 0.5, "wood_2": 0.9, "wood_3": 0.1, "table": 0.3}, 3)
    t.refresh_partition()
    first = list(judge.pairs)
    assert len(first) == len(set(first)) > 0
    t.refresh_partition()
    assert judge.pairs == first  # nothing changed: nothing asked
    t.add_tasks([space.task("wood_4"), space.task("stone")])
    t.refresh_partition()
    new = judge.pairs[len(first) :]
    assert new and {b for _, b in new} <= {"wood_4", "stone"}  # only the new candidates were judged
    assert not set(new) & set(first)
    assert t.partition()["boring"].count(t.known_tasks()[6].id) == 1  # wood_4 is boring given wood_2


def test_exploration_floor_goes_to_interesting_tasks_lp_dropped_not_to_boring_ones() -> None:
    space = Discrete(TEXTS)
    t = _omni(space, FamilyJudge(), partition_every=1, refit_executor="inline")
    ids = {x.text: x.id for x in t.known_tasks()}
    # wood_2 solved; everything else observed and failed: LP keeps wood_2 only
    t.update([Outcome(ids["wood_2"], 1.0, success=True)] + [Outcome(i, 0.0, success=False) for i in ids.values()])
    t.refresh_partition()
    p = dict(zip([x.text for x in t.known_tasks()], t.probabilities()))
    assert t.base.probabilities()[[x.text for x in t.known_tasks()].index("table")] == 0.0  # LP dropped it
    # interesting and dropped by LP: table, pickaxe, dummy share the floor (0.2); wood_1/wood_3 are boring
    for text in ("table", "pickaxe", "dummy"):
        assert p[text] == pytest.approx(0.2 / 3)
    assert p["wood_1"] == 0.0 and p["wood_3"] == 0.0 and p["wood_2"] == pytest.approx(0.8)
    ref = _omni(
        space,
        FamilyJudge(),
        preset="omni",
        partition_every=1,
        refit_executor="inline",
        base_config={"update_every": 1, "explore": 0.0, "optimistic_new": False},
    )
    ref.update([Outcome(ids["wood_2"], 1.0, success=True)] + [Outcome(i, 0.0, success=False) for i in ids.values()])
    ref.refresh_partition()
    assert ref.probabilities()[[x.text for x in ref.known_tasks()].index("table")] == 0.0
