"""The generated tech tree (universe2 of benchmarks/open_ended.py): graph, grammar, judges, sim learner."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support import load_script

from openended.envs.crafter_sim import achievement_depth
from openended.envs.techtree import TechTree, techtree_learner
from openended.errors import ConfigError
from openended.moi.base import JudgeContext
from openended.moi.oracle import RuleOracleJudge
from openended.moi.structure import relation


@pytest.fixture(scope="module")
def tree() -> TechTree:
    return TechTree(levels=10, width=4, seed=0)


def test_depth_is_the_number_of_levels_minus_one(tree: TechTree) -> None:
    depth = tree.depth()
    assert max(depth.values()) == 9 > max(achievement_depth().values())  # deeper than Crafter (7)
    assert all(depth[a] == tree.level[a] for a in tree.concepts)
    for lv in range(10):
        row = [a for a in tree.concepts if tree.level[a] == lv]
        assert len(row) == 4
        for a in row:
            pre = tree.prerequisites[a]
            assert (lv == 0) == (not pre)
            assert lv == 0 or tree.level[pre[0]] == lv - 1
            assert all(tree.level[b] < lv for b in pre) and len(set(pre)) == len(pre) <= 3
    assert len(set(tree.concepts)) == 40
    with pytest.raises(ConfigError):
        TechTree(levels=0)


def test_grammar_reads_every_phrasing_as_its_concept(tree: TechTree) -> None:
    tasks = tree.task_set(counts=5, impossible=7)
    assert len(tasks) == 40 * 25 + 6 * 25 + 7 and len(set(tasks)) == len(tasks)
    a = tree.concepts[13]
    for k in (1, 3):
        specs = [tree.parse(t) for t in tree.phrasings(a, k)]
        assert all(s is not None and s.components == ((a, k),) and not s.impossible for s in specs)
        assert [s.verbs[0] for s in specs if s is not None][1:3] == ["x", "times"]
    assert tree.parse(tree.phrasings(a, 4)[2].upper().replace(" ", "_")).components == ((a, 4),)  # type: ignore[union-attr]
    impossible = [tree.parse(t) for t in ("dummy_task_0003", "make perpetual engine x2", "gather 4 dragon scale")]
    assert all(s is not None and s.impossible for s in impossible)
    for bad in ("collect 3 clay x2", "collect 0 clay", "eat clay", "make unknown thing", "", "import os"):
        assert tree.parse(bad) is None


def test_task_set_sizes_out_of_range_are_refused_before_anything_is_built(tree: TechTree) -> None:
    with pytest.raises(ConfigError, match=r"task_set\(impossible\): must be a whole number in 0\.\.1,000,000"):
        tree.task_set(impossible=10**12)
    for counts in (0, 10**12, 2.0):
        with pytest.raises(ConfigError, match=r"task_set\(counts\): must be a whole number in 1\.\.1000"):
            tree.task_set(counts=counts, impossible=0)


def test_a_task_is_never_learned_before_its_prerequisites(tree: TechTree) -> None:
    tasks = tree.task_set(counts=3, impossible=20)
    sim = techtree_learner(tree, tasks, seed=1)
    spec = [tree.parse(t) for t in tasks]
    concept = np.array([tree.concepts.index(s.components[0][0]) if s and not s.impossible else -1 for s in spec])
    pre = {i: [tree.concepts.index(b) for b in tree.prerequisites[a]] for i, a in enumerate(tree.concepts)}
    # practise only the still-locked concepts at first: nothing moves
    locked = np.flatnonzero(np.isin(concept, [i for i, a in enumerate(tree.concepts) if tree.level[a] >= 1]))
    u0 = sim.u.copy()
    for _ in range(20):
        assert not sim.run_episodes(locked[::7]).any()
    np.testing.assert_array_equal(sim.u, u0)
    rng = np.random.default_rng(0)
    real = np.flatnonzero(sim.possible())
    seen = set()
    for step in range(300):
        sim.run_episodes(rng.choice(real, 64))
        if step % 10:
            continue
        done = sim.mastered()
        ok = np.array([done[a] for a in tree.concepts])
        for i in np.flatnonzero(ok):
            assert all(ok[j] for j in pre[i])
        p = sim.success_prob()
        unlocked = np.array([all(ok[j] for j in pre[c]) if c >= 0 else False for c in concept])
        assert np.all(p[~unlocked] == 0)
        seen |= {tree.level[a] for a in tree.concepts if done[a]}
    assert {0, 1} <= seen  # learning happened
    assert np.all(sim.success_prob()[~sim.possible()] == 0)


def test_judges_call_phrasings_of_a_learned_concept_boring(tree: TechTree) -> None:
    a, b = tree.concepts[5], tree.concepts[6]
    family = [t for k in range(1, 6) for t in tree.phrasings(a, k)]
    others = [t for k in (1, 2) for t in tree.phrasings(b, k)] + ["make perpetual engine"]
    got = RuleOracleJudge().judge(family + others, JudgeContext(mastered=(tree.phrasings(a, 2)[0],)))
    assert [j.interesting for j in got] == [False] * len(family) + [True] * len(others)
    # the embedding judge's structure check (no model needed) sees the same families
    assert all(relation(t, family[0])[0] == "variant" for t in family)
    assert all(relation(t, family[0])[0] == "conflict" for t in others)


def test_tree_and_learner_are_seeded(tree: TechTree) -> None:
    again = TechTree(levels=10, width=4, seed=0)
    assert again.concepts == tree.concepts and again.prerequisites == tree.prerequisites
    assert TechTree(levels=10, width=4, seed=1).prerequisites != tree.prerequisites
    tasks = tree.task_set(counts=2, impossible=3)
    idx = np.random.default_rng(0).integers(0, len(tasks), size=(30, 32))
    x, y = techtree_learner(tree, tasks, seed=4), techtree_learner(tree, tasks, seed=4)
    assert all(np.array_equal(x.run_episodes(i), y.run_episodes(i)) for i in idx[:20])
    z = techtree_learner(tree, seed=0)
    z.load_state_dict(x.state_dict())
    for i in idx[20:]:
        assert np.array_equal(x.run_episodes(i), z.run_episodes(i))
    np.testing.assert_allclose(x.success_prob(), z.success_prob())


def test_benchmark_universe2_orders_teachers_on_one_seed() -> None:
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "open_ended.py"
    bench = load_script(path, "open_ended_bench_tt")
    tasks, learner = bench.techtree_universe(6, 3)
    got = {m: bench.run_one(m, tasks, 0, 120, 32, 25, 10, learner=learner) for m in ("uniform", "lp", "omni_oracle")}
    assert got["omni_oracle"]["n_above_0.2"] >= got["lp"]["n_above_0.2"] > got["uniform"]["n_above_0.2"]
    assert got["omni_oracle"]["depth_reached"] >= got["uniform"]["depth_reached"]
