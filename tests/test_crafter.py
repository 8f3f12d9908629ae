"""Crafter task env (grammar, task sets, check_env, success detection, set_task timing) and the sim learner."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from openended.envs import make_env
from openended.envs.crafter import (
    bow_task_encoding,
    crafter_task_set,
    parse_crafter_task,
    validate_crafter_task,
)
from openended.envs.crafter_sim import CrafterSimLearner
from openended.errors import ConfigError, TaskNotInSpace

NOOP = 0


@pytest.fixture(scope="module")
def env():
    e = make_env("crafter", area=(32, 32), impossible=3, space="text", max_episode_steps=50)
    yield e
    e.close()


def test_task_set_sizes_match_omni() -> None:
    for name, n in (("tr", 105), ("trc", 210), ("trs", 630)):
        ts = crafter_task_set(name, impossible=1023)
        assert len(ts) == n + 1023 and len(set(ts)) == len(ts)
        assert all(parse_crafter_task(t) is not None for t in ts)
    with pytest.raises(ConfigError):
        crafter_task_set("nope")


@pytest.mark.parametrize("impossible", [-1, 10**12, 2.5, "1023", True])
def test_a_dummy_count_out_of_range_is_refused_before_any_list_is_built(impossible) -> None:
    """A count from an experiment file (10**12 once filled the machine's memory in the config fuzz)."""
    with pytest.raises(ConfigError, match=r"env\.crafter\.impossible: must be a whole number in 0\.\.1,000,000"):
        crafter_task_set("tr", impossible=impossible)
    assert len(crafter_task_set("tr", impossible=np.int64(2))) == 107  # numpy ints are whole numbers too


@pytest.mark.parametrize(
    "text,comps,ordered",
    [
        ("collect_wood", (("collect_wood", 1),), False),
        ("collect_wood_3", (("collect_wood", 3),), False),
        ("harvest_wood_3", (("collect_wood", 3),), False),
        ("craft_wood_pickaxe", (("make_wood_pickaxe", 1),), False),
        ("collect_wood then place_table", (("collect_wood", 1), ("place_table", 1)), True),
        ("place_table and collect_drink_2", (("place_table", 1), ("collect_drink", 2)), False),
    ],
)
def test_grammar_parses(text: str, comps: tuple, ordered: bool) -> None:
    spec = parse_crafter_task(text)
    assert spec is not None and spec.components == comps and spec.ordered == ordered


@pytest.mark.parametrize(
    "text",
    [
        "",
        "collect_unicorn",
        "collect_wood_0",
        "__import__('os').system('x')",
        "<script>alert(1)</script>",
        "collect_wood" * 100,
        "a and b then c",
    ],
)
def test_grammar_rejects_without_evaluating(text: str) -> None:
    assert parse_crafter_task(text) is None
    assert validate_crafter_task(text)[0] is False


def test_validator_reasons() -> None:
    assert validate_crafter_task("dummy_task_0003") == (False, "impossible dummy task")
    assert validate_crafter_task("collect_wood_25")[0] is False
    assert "repeats" in validate_crafter_task("collect_wood and collect_wood_2")[1]
    assert validate_crafter_task("collect_wood then place_table") == (True, "ok")


def test_bow_encoding() -> None:
    v = bow_task_encoding("collect_wood_3 then place_table")
    assert v.shape == (35,) and v.dtype == np.float32 and v.sum() > 0
    assert not np.array_equal(bow_task_encoding("dummy_task_0001"), bow_task_encoding("dummy_task_0002"))


def test_check_env_passes(env) -> None:
    check_env(env, skip_render_check=True)  # text space, bag-of-words task vector
    disc = make_env("crafter", area=(32, 32), impossible=3)  # discrete space, task index
    check_env(disc, skip_render_check=True)


def test_text_space_env_with_embedding_fn() -> None:
    e = make_env("crafter", area=(32, 32), impossible=0, space="text", task_embed_fn=lambda t: np.ones(4) * len(t))
    obs, info = e.reset(seed=0)
    assert obs["task"].shape == (4,)
    e.set_task(e.task_space().task("collect_wood_2 then place_table"))  # not in the listed set: fine in text mode
    with pytest.raises(TaskNotInSpace):
        e.set_task(e.task_space().task("fly to the moon"))


def _bump(env, achievement: str, k: int = 1) -> None:
    env._env._player.achievements[achievement] += k  # what Crafter does when the event happens


def test_success_detected_from_achievement_counters(env) -> None:
    env.set_task(env.task_space().task("collect_wood_2"))
    obs, info = env.reset(seed=1)
    assert info["task"] == "collect_wood_2"
    _bump(env, "collect_wood")
    _, r, term, trunc, info = env.step(NOOP)
    assert (r, term, info["progress"]) == (0.0, False, 0.5)
    _bump(env, "collect_wood")
    _, r, term, trunc, info = env.step(NOOP)
    assert r == 1.0 and term and not trunc and info["success"] is True


def test_ordered_composition_needs_order(env) -> None:
    env.set_task(env.task_space().task("collect_wood then place_table"))
    env.reset(seed=2)
    _bump(env, "place_table")  # too early: does not count
    _, _, term, _, _ = env.step(NOOP)
    assert not term
    _bump(env, "collect_wood")
    _, _, term, _, _ = env.step(NOOP)
    assert not term
    _bump(env, "place_table")
    _, r, term, _, info = env.step(NOOP)
    assert term and info["success"]


def test_impossible_task_truncates_without_success(env) -> None:
    env.set_task(env.task_space().task("dummy_task_0001"))
    env.reset(seed=3)
    for _ in range(50):
        _, _, term, trunc, info = env.step(NOOP)
        if term or trunc:
            break
    assert trunc and info["success"] is False


def test_set_task_applies_at_next_reset(env) -> None:
    sp = env.task_space()
    env.set_task(sp.task("collect_drink"))
    obs, _ = env.reset(seed=4)
    first = obs["task"]
    env.set_task(sp.task("place_table"))
    obs2, _, _, _, info = env.step(NOOP)
    assert env.current_task.text == "collect_drink" and np.array_equal(obs2["task"], first)
    obs3, info3 = env.reset()
    assert env.current_task.text == "place_table" and info3["task_id"] == sp.task("place_table").id
    assert not np.array_equal(obs3["task"], first)


# ----------------------------------------------------------------------------- sim
def test_sim_prerequisites_impossible_and_practice() -> None:
    tasks = ["collect_wood", "collect_stone", "dummy_task_0000"]
    sim = CrafterSimLearner(tasks, seed=0)
    p = sim.success_prob()
    assert p[0] > 0 and p[1] == 0 and p[2] == 0  # stone needs a wood pickaxe first
    before = p[0]
    sim.run_episodes(np.zeros(200, dtype=int))
    assert sim.success_prob()[0] > before
    sim.run_episodes(np.full(500, 2))
    assert sim.success_prob()[2] == 0.0


def test_sim_unlocks_along_the_graph() -> None:
    chain = ["collect_wood", "place_table", "make_wood_pickaxe", "collect_stone"]
    sim = CrafterSimLearner(chain, seed=0)
    for _ in range(200):
        sim.run_episodes(np.arange(4).repeat(8))
    assert sim.success_prob()[3] > 0


def test_sim_variants_share_competence_partially() -> None:
    tasks = ["collect_wood_3", "collect_wood_5", "gather_wood_3", "collect_drink"]
    a = CrafterSimLearner(tasks, seed=0)
    base = a.success_prob()
    a.run_episodes(np.zeros(300, dtype=int))
    gain = a.success_prob() - base
    assert gain[0] > gain[1] > 0  # the practised count gains most, a nearby count some
    assert gain[0] > gain[2] > 0  # a synonym needs grounding first
    assert gain[3] == 0


def test_sim_is_seeded_and_round_trips() -> None:
    tasks = crafter_task_set("tr", 5)
    idx = np.random.default_rng(0).integers(0, len(tasks), size=(20, 16))
    a, b = CrafterSimLearner(tasks, seed=7), CrafterSimLearner(tasks, seed=7)
    ra = [a.run_episodes(i) for i in idx[:10]]
    rb = [b.run_episodes(i) for i in idx[:10]]
    assert all(np.array_equal(x, y) for x, y in zip(ra, rb))
    c = CrafterSimLearner([], seed=0)
    c.load_state_dict(a.state_dict())
    for i in idx[10:]:
        assert np.array_equal(a.run_episodes(i), c.run_episodes(i))
    np.testing.assert_allclose(a.success_prob(), c.success_prob())
    assert c.indices(["collect_wood then place_table"])[0] == len(tasks)  # new texts extend the table


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("size", {}, "size: must be two integers"),
        ("size", "", "size: must be two integers"),
        ("size", "64", "size: must be two integers"),
        ("size", [16, 64], "size: each value must be >= 32"),
        ("area", [0, 5], "area: each value must be >= 1"),
        ("area", [64, True], "area: must be two integers"),
        ("view", [3, 3], "view: 3 columns need 6 inventory rows"),
    ],
)
def test_bad_grid_sizes_are_refused_naming_the_field(field: str, value: object, match: str) -> None:
    """Each of these crashed inside Crafter (KeyError, IndexError, negative dimensions)."""
    with pytest.raises(ConfigError, match=f"env.crafter.{match}"):
        make_env("crafter", impossible=0, **{field: value})
