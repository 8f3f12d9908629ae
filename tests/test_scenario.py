"""Lifelong scenarios: the block sequences of every L2M scenario type, and config errors."""

from __future__ import annotations

import pytest

from openended.errors import ConfigError
from openended.metrics.scenario import Block, ScenarioConfig, build_blocks, ste_configs
from openended.validation import validate_model


def _learning(blocks: list[Block]) -> list[tuple[str, int]]:
    return [(b.tasks[0], b.episodes) for b in blocks if b.block_type == "train" and b.subtype == "wake"]


def test_condensed_interleaves_evaluation_of_every_task():
    blocks = build_blocks(ScenarioConfig(type="condensed", tasks=["a", "b", "c"], train_episodes=5, eval_episodes=2))
    assert [b.num for b in blocks] == list(range(7))
    assert [b.block_type for b in blocks] == ["test", "train"] * 3 + ["test"]
    assert _learning(blocks) == [("a", 5), ("b", 5), ("c", 5)]
    for b in blocks:
        if b.block_type == "test":
            assert b.tasks == ("a", "b", "c") and b.episodes == 2 and not b.learning_allowed
        else:
            assert b.learning_allowed


def test_dispersed_splits_the_same_total_over_repetitions():
    cfg = ScenarioConfig(type="dispersed", tasks=["a", "b"], train_episodes=7, repetitions=3)
    learning = _learning(build_blocks(cfg))
    assert [t for t, _ in learning] == ["a", "b"] * 3
    assert sum(n for t, n in learning if t == "a") == 7
    assert [n for t, n in learning if t == "a"] == [3, 2, 2]


def test_alternating_returns_to_the_first_task():
    cfg = ScenarioConfig(type="alternating", tasks=["a", "b", "c"], repetitions=2)
    assert [t for t, _ in _learning(build_blocks(cfg))] == ["a", "b", "a", "c"] * 2


def test_permuted_is_a_seeded_permutation_per_repetition():
    cfg = ScenarioConfig(type="permuted", tasks=["a", "b", "c", "d"], repetitions=5, seed=3)
    order = [t for t, _ in _learning(build_blocks(cfg))]
    cycles = [order[i : i + 4] for i in range(0, 20, 4)]
    assert all(sorted(c) == ["a", "b", "c", "d"] for c in cycles)
    assert len({tuple(c) for c in cycles}) > 1  # not the same order every time
    assert order == [t for t, _ in _learning(build_blocks(cfg))]  # reproducible
    other = [t for t, _ in _learning(build_blocks(cfg.model_copy(update={"seed": 4})))]
    assert other != order


def test_sleep_adds_a_sleep_phase_and_sleep_evaluation():
    blocks = build_blocks(ScenarioConfig(tasks=["a"], sleep=True, sleep_steps=50))
    kinds = [(b.block_type, b.subtype) for b in blocks]
    assert kinds == [("test", "wake"), ("train", "wake"), ("test", "wake"), ("train", "sleep"), ("test", "sleep")]
    assert blocks[3].is_sleep_phase and blocks[3].episodes == 0 and blocks[3].sleep_steps == 50


def test_evaluation_blocks_reuse_the_same_fixed_seeds():
    blocks = build_blocks(ScenarioConfig(tasks=["a", "b"], eval_episodes=3, eval_seed=100))
    seeds = [b.episode_seeds() for b in blocks if b.block_type == "test"]
    assert seeds == [[100, 101, 102]] * 3
    assert all(b.episode_seeds() is None for b in blocks if b.block_type == "train")


def test_evaluate_end_only():
    blocks = build_blocks(ScenarioConfig(tasks=["a", "b"], evaluate="end"))
    assert [b.block_type for b in blocks] == ["train", "train", "test"]
    assert build_blocks(ScenarioConfig(tasks=["a"], evaluate="none"))[-1].block_type == "train"


def test_ste_configs_train_each_task_alone_with_the_same_total():
    cfg = ScenarioConfig(type="dispersed", tasks=["a", "b"], train_episodes=9, repetitions=3)
    stes = ste_configs(cfg)
    assert [(s.type, s.tasks, s.train_episodes) for s in stes] == [("ste", ["a"], 9), ("ste", ["b"], 9)]
    assert [b.tasks for b in build_blocks(stes[0])] == [("a",), ("a",), ("a",)]


def test_custom_blocks_as_listed():
    cfg = ScenarioConfig(
        type="custom",
        tasks=["a", "b"],
        blocks=[
            {"type": "train", "tasks": ["b"], "episodes": 4},
            {"type": "test", "tasks": ["a", "b"], "episodes": 2, "subtype": "sleep"},
        ],
    )
    blocks = build_blocks(cfg)
    assert [(b.block_type, b.tasks, b.episodes, b.subtype) for b in blocks] == [
        ("train", ("b",), 4, "wake"),
        ("test", ("a", "b"), 2, "sleep"),
    ]
    assert ste_configs(cfg)[1].train_episodes == 4


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"tasks": []}, "scenario.tasks"),
        ({"tasks": ["a b"]}, "tasks[0]"),
        ({"tasks": ["A", "a"]}, "case-insensitively"),
        ({"tasks": ["a"], "train_episodes": 0}, "scenario.train_episodes"),
        ({"tasks": ["a"], "type": "alternating"}, "at least 2 tasks"),
        ({"tasks": ["a", "b"], "type": "ste"}, "ste_configs"),
        ({"tasks": ["a"], "type": "custom"}, "lists its blocks"),
        ({"tasks": ["a"], "type": "custom", "blocks": [{"type": "train", "tasks": ["z"], "episodes": 1}]}, "blocks[0]"),
        (
            {"tasks": ["a", "b"], "type": "custom", "blocks": [{"type": "train", "tasks": ["a", "b"], "episodes": 1}]},
            "exactly one task",
        ),
        ({"tasks": ["a"], "blocks": [{"type": "test", "tasks": ["a"], "episodes": 1}]}, "only read by type: custom"),
        ({"tasks": ["a"], "type": "spiral"}, "scenario.type"),
        ({"tasks": ["a"], "tpye": "condensed"}, "Did you mean 'type'"),
        ({"tasks": ["a"], "type": "dispersed", "train_episodes": 2, "repetitions": 3}, "cannot be split"),
    ],
)
def test_bad_configs_name_the_field(data, field):
    with pytest.raises(ConfigError, match=None) as e:
        validate_model(ScenarioConfig, data, prefix="scenario")
    assert field in str(e.value)


def test_episode_slots_walk_the_scenario_and_resume():
    from openended.metrics.scenario import episode_slots

    blocks = build_blocks(ScenarioConfig(tasks=["a", "b"], train_episodes=3, eval_episodes=2, eval_seed=7, sleep=True))
    slots = list(episode_slots(blocks))
    n_eval = sum(1 for b in blocks if b.block_type == "test")
    assert len(slots) == 2 * 3 + n_eval * 2 * 2
    assert [s.exp_num for s in slots] == list(range(len(slots)))
    assert all(not s.block.is_sleep_phase for s in slots)
    assert [s.seed for s in slots if s.block.block_type == "test"][:4] == [7, 8, 7, 8]
    assert [(s.block.num, s.task, s.index) for s in slots[4:8]] == [(1, "a", 0), (1, "a", 1), (1, "a", 2), (2, "a", 0)]
    for start in (0, 1, 5, len(slots) - 1, len(slots), len(slots) + 3):
        assert list(episode_slots(blocks, start)) == slots[start:]
    with pytest.raises(ConfigError, match="start"):
        next(episode_slots(blocks, -1))
