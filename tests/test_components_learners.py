"""The built-in components on a real (small) learner (`component_learners.PGLearner`, a
REINFORCE learner on two partly conflicting rules): without help it forgets rule A while
learning rule B; EWC keeps A; replay + sleep consolidation restores A and keeps B; the
task-change detector finds the unannounced switch and EWC consolidates on its bus event;
component state survives a save / load."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from component_learners import RULE_A, RULE_B, PGLearner

from openended.components import Block, ComponentHost, Placement, TaskChange
from openended.components.detector import TaskChangeDetector
from openended.components.evaluation import PeriodicEvaluation, evaluation_block, evaluation_due
from openended.components.ewc import EWC
from openended.components.replay import ExperienceReplay, SleepConsolidation

UPDATES = 100  # per task: rule A reaches ~0.98 accuracy; 32 one-step episodes per update


@pytest.fixture(scope="module")
def baseline() -> tuple[float, float, float]:
    learner = PGLearner(0)
    learner.train(RULE_A, UPDATES)
    before = learner.accuracy(RULE_A)
    learner.train(RULE_B, UPDATES)
    return before, learner.accuracy(RULE_A), learner.accuracy(RULE_B)


def test_without_components_the_learner_forgets(baseline):
    before, a_after, b_after = baseline
    assert before > 0.9 and b_after > 0.9
    assert a_after < 0.7  # catastrophic forgetting: the setting the components are for


def test_ewc_keeps_the_first_task(baseline):
    ewc = EWC({"lam": 100.0})
    learner = PGLearner(0, learner_components=[ewc])
    learner.train(RULE_A, UPDATES)
    learner.train(RULE_B, UPDATES)  # announced: on_task_end consolidates on rule A's observations
    assert ewc.consolidations == 1
    assert learner.accuracy(RULE_A) > baseline[1] + 0.25
    restored = EWC({"lam": 100.0})
    restored.load_state_dict(ewc.state_dict())
    import torch

    batch = {"obs": torch.zeros(4, 6)}
    a = ewc.loss_term(module=learner.net, batch=batch, fwd_out=None)
    b = restored.loss_term(module=learner.net, batch=batch, fwd_out=None)
    assert a.item() > 0 and a.item() == pytest.approx(b.item())


def test_replay_and_sleep_consolidation_restore_the_first_task(baseline):
    replay, sleep = ExperienceReplay({"capacity": 500}), SleepConsolidation()
    learner = PGLearner(0, env_components=[replay], learner_components=[sleep])
    learner.learner_host.block_start(Block(0, "train"))
    learner.train(RULE_A, UPDATES)
    learner.train(RULE_B, UPDATES)
    assert replay.store.tasks() == {RULE_A.id: 500, RULE_B.id: 500}
    assert set(sleep.memories) == {RULE_A.id}
    forgotten = learner.accuracy(RULE_A)
    learner.learner_host.block_end()
    learner.learner_host.block_start(Block(1, "evaluation"))
    assert learner.sleep(50) == 0  # no learning in evaluation blocks: the host skips sleep
    learner.learner_host.block_end()
    learner.learner_host.block_start(Block(2, "train", "sleep"))
    assert learner.sleep(200) == 200
    assert learner.accuracy(RULE_A) > forgotten + 0.25
    assert learner.accuracy(RULE_B) > 0.8  # the new task is kept while the old one comes back


def test_detector_finds_an_unannounced_change_and_ewc_consolidates_on_its_event():
    detector, ewc = TaskChangeDetector({"window": 30}), EWC({"lam": 100.0})
    learner = PGLearner(1, env_components=[detector], learner_components=[ewc])
    events: list[TaskChange] = []
    from openended.components import TASK_CHANGE

    learner.bus.subscribe(TASK_CHANGE, events.append)
    learner.train(RULE_A, 60, announce=False)
    assert detector.detections == [] and ewc.consolidations == 0  # learning A is not a task change
    switch = detector.episodes
    learner.train(RULE_B, 10, announce=False)
    assert len(detector.detections) == 1 and switch < detector.detections[0] <= switch + 2 * 30
    assert len(events) == 1 and not events[0].announced and events[0].source == "task_change_detector"
    assert ewc.consolidations == 1  # through the bus: nobody told the learner
    again = TaskChangeDetector({"window": 30})
    again.load_state_dict(detector.state_dict())
    assert again.detections == detector.detections and again.episodes == detector.episodes


def test_periodic_evaluation_blocks_hide_rewards_and_forbid_sleep_on_a_real_learner():
    schedule = PeriodicEvaluation({"every": 15})
    replay, sleep = ExperienceReplay({"capacity": 5000}), SleepConsolidation()
    learner = PGLearner(2, env_components=[replay], learner_components=[sleep])
    driver = ComponentHost([schedule], bus=learner.bus, placement=Placement.DRIVER)
    hosts = [driver, learner.env_host, learner.learner_host]
    for host in hosts:
        host.block_start(Block(0, "train"))
    learner.learner_host.task_start(RULE_A, None, module=learner.net)
    skipped = []

    def evaluate() -> dict:
        skipped.append(learner.sleep(5))  # inside the block: no learning
        return learner.evaluate(RULE_A)

    for it in range(1, 46):
        learner.train(RULE_A, 1, announce=False)
        if evaluation_due(driver, it):
            stored = len(replay.store)
            evaluation_block(hosts, evaluate)
            assert len(replay.store) == stored  # evaluation episodes taught nothing
    assert skipped == [0, 0, 0] and learner.learner_host.sleeps_skipped == 3
    accuracies = [r["accuracy"] for r in schedule.results]
    assert len(accuracies) == 3 and accuracies[-1] > accuracies[0] and accuracies[-1] > 0.85
    assert all(r["episodes"] == 128 for r in schedule.results)
    assert [h.block.index for h in hosts] == [6, 6, 6] and all(h.block.kind == "train" for h in hosts)
    learner.learner_host.task_end(RULE_A, RULE_B, module=learner.net)  # memories of rule A to consolidate
    assert learner.sleep(5) == 5  # back in a train block: sleep runs
    restored = PeriodicEvaluation({"every": 15})
    restored.load_state_dict(schedule.state_dict())
    assert restored.results == schedule.results
