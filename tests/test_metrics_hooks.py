"""EpisodeLogHook on the runtime's real episode host: every finished episode becomes one l2logger row."""

from __future__ import annotations

import numpy as np
import pytest
from support import SPACE, CountEnv, ScriptedClient

from openended.errors import LogFormatError
from openended.metrics.hooks import EpisodeLogHook
from openended.metrics.l2log import EpisodeLogger, find_scenario_dirs, read_log
from openended.metrics.lifelong import compute_from_logs
from openended.metrics.scenario import ScenarioConfig, build_blocks, episode_slots
from openended.runtime.episodes import EpisodeHost

TASKS = {"short_a": SPACE.task([0.2]), "long_b": SPACE.task([0.8])}
CFG = ScenarioConfig(type="alternating", tasks=list(TASKS), train_episodes=3, eval_episodes=2, repetitions=2)


def _run(host: EpisodeHost) -> None:
    host.begin(0)
    while True:
        _, _, term, trunc, _ = host.step(0, np.zeros(1, np.float32))
        if term or trunc:
            return


def test_a_scenario_through_the_episode_host_is_logged_row_for_row(tmp_path):
    slots = list(episode_slots(build_blocks(CFG)))
    client = ScriptedClient([TASKS[s.task] for s in slots])
    host = EpisodeHost([CountEnv()], client)
    hook = EpisodeLogHook(EpisodeLogger.create(tmp_path, "hosted", CFG), names={t.id: n for n, t in TASKS.items()})
    host.add_hooks(hook)
    for slot in slots:
        if hook.block is not slot.block:
            hook.set_block(slot.block)
        _run(host)
    hook.logger.close()
    _, info, rows = read_log(find_scenario_dirs(tmp_path)[0])
    assert info["scenario_type"] == "alternating"
    assert len(rows) == len(slots) == len(client.reported)
    for row, slot, outcome in zip(rows, slots, client.reported):
        assert (row.block_num, row.block_type, row.task_name) == (slot.block.num, slot.block.block_type, slot.task)
        assert row.values["reward"] == pytest.approx(outcome.episode_return)
        assert row.values["success"] == float(outcome.success)
        assert f'"task_id": "{outcome.task_id}"' in row.task_params
    m = compute_from_logs(find_scenario_dirs(tmp_path)[0])
    assert m.tasks["short_a"]["num_lx"] == m.tasks["long_b"]["num_lx"] == 2 * 3  # A B A B


def test_misuse_is_an_error(tmp_path):
    client = ScriptedClient([TASKS["short_a"], SPACE.task([0.5])])
    host = EpisodeHost([CountEnv()], client)
    hook = EpisodeLogHook(EpisodeLogger.create(tmp_path, "bad", CFG))
    host.add_hooks(hook)
    with pytest.raises(LogFormatError, match="set_block"):
        _run(host)
    hook.set_block(build_blocks(CFG)[1])
    with pytest.raises(LogFormatError, match="not a task of block 1"):  # unnamed task: task_<id>
        _run(host)
    with pytest.raises(LogFormatError, match="without its start"):
        hook.episode_end(env_index=3, outcome=client.reported[0])
