"""The l2logger log format: our writer's files against l2logger's own writer, reader and validator."""

from __future__ import annotations

import csv
import json
import math

import pytest

from openended.errors import LogFormatError
from openended.metrics.l2log import (
    STANDARD_FIELDS,
    EpisodeLogger,
    L2LogWriter,
    find_scenario_dirs,
    new_scenario_dir,
    read_log,
)
from openended.metrics.scenario import ScenarioConfig, build_blocks

CFG = ScenarioConfig(type="condensed", tasks=["reach_easy", "push_easy"], train_episodes=3, eval_episodes=2)


def _run(logger: EpisodeLogger) -> list[float]:
    """Log every episode of CFG's scenario with made-up returns; the returns in order."""
    returns = []
    for block in build_blocks(CFG):
        for task in block.tasks:
            for i in range(block.episodes):
                r = float(block.num * 10 + i) + (0.5 if task == "push_easy" else 0.0)
                logger.episode(block, task, r, success=r > 20, length=7 + i, task_params={"goal": [1, 2]})
                returns.append(r)
    logger.close()
    return returns


def test_layout_and_files(tmp_path):
    logger = EpisodeLogger.create(tmp_path, "lifelong_toy.yaml", CFG)
    returns = _run(logger)
    (scen,) = find_scenario_dirs(tmp_path)
    assert scen.name.startswith("lifelong_toy-")
    assert json.loads((scen / "logger_info.json").read_text()) == {
        "metrics_columns": ["reward", "success"],
        "log_format_version": "1.1",
    }
    assert json.loads((scen / "scenario_info.json").read_text()) == {
        "complexity": "1-low",
        "difficulty": "2-medium",
        "scenario_type": "condensed",
    }
    blocks = sorted(p.name for p in (scen / "worker-default").iterdir())
    assert blocks == ["0-test", "1-train", "2-test", "3-train", "4-test"]
    with (scen / "worker-default" / "1-train" / "data-log.tsv").open() as f:
        header = f.readline().rstrip("\n").split("\t")
    assert tuple(header[: len(STANDARD_FIELDS)]) == STANDARD_FIELDS
    assert header[len(STANDARD_FIELDS) :] == ["episode_step_count", "reward", "success"]
    _, info, rows = read_log(scen)
    assert info["scenario_type"] == "condensed"
    assert [r.values["reward"] for r in rows] == returns
    assert [r.exp_num for r in rows] == list(range(len(returns)))
    assert rows[0].task_params == '{"goal": [1, 2]}'


def test_writer_rejects_what_l2logger_rejects(tmp_path):
    scen = new_scenario_dir(tmp_path, "s", ["reward"], {"scenario_type": "custom"})
    w = L2LogWriter(scen)
    ok = {"block_num": 1, "exp_num": 5, "block_type": "train", "task_name": "a_b", "task_params": {}, "reward": 1.0}
    w.log_record(ok)
    for bad, field in [
        ({**ok, "block_num": 0}, "block_num"),
        ({**ok, "exp_num": 4}, "exp_num"),
        ({**ok, "block_type": "eval"}, "block_type"),
        ({**ok, "block_subtype": "nap"}, "block_subtype"),
        ({**ok, "exp_status": "done"}, "exp_status"),
        ({**ok, "worker_id": "w 1"}, "worker_id"),
        ({**ok, "task_params": "x"}, "task_params"),
        ({**ok, "task_params": {"f": object()}}, "task_params"),
        ({**ok, "extra": 1}, "fields differ"),
        ({**ok, "timestamp": "now"}, "timestamp"),
    ]:
        with pytest.raises(LogFormatError, match=field):
            w.log_record(bad)
    w.close()
    with pytest.raises(LogFormatError, match="metrics_columns"):
        new_scenario_dir(tmp_path, "s", [], {})
    with pytest.raises(LogFormatError, match="scenario_type"):
        new_scenario_dir(tmp_path, "s", ["reward"], {"scenario_type": "weird"})
    scen2 = new_scenario_dir(tmp_path, "t", ["reward", "score"], {})
    with pytest.raises(LogFormatError, match="missing fields.*score"):
        L2LogWriter(scen2).log_record(ok)


def test_episode_logger_guards(tmp_path):
    logger = EpisodeLogger.create(tmp_path, "g", CFG)
    blocks = build_blocks(CFG)
    with pytest.raises(LogFormatError, match="not a task of block 1"):
        logger.episode(blocks[1], "push_easy", 1.0)
    with pytest.raises(LogFormatError, match="NaN"):
        logger.episode(blocks[1], "reach_easy", math.nan)
    sleepy = build_blocks(CFG.model_copy(update={"sleep": True}))[3]
    with pytest.raises(LogFormatError, match="sleep phase"):
        logger.episode(sleepy, "reach_easy", 1.0)
    assert logger.episode(blocks[1], "reach_easy", 1.0) == 0
    assert logger.episode(blocks[1], "reach_easy", 2.0, success=None) == 1
    logger.close()
    _, _, rows = read_log(find_scenario_dirs(tmp_path)[0])
    assert math.isnan(rows[1].values["success"])


def test_resume_appends_to_the_block_file(tmp_path):
    logger = EpisodeLogger.create(tmp_path, "r", CFG)
    block = build_blocks(CFG)[1]
    logger.episode(block, "reach_easy", 1.0)
    logger.close()
    scen = find_scenario_dirs(tmp_path)[0]
    again = EpisodeLogger(L2LogWriter(scen), start_exp_num=1)
    again.episode(block, "reach_easy", 2.0)
    again.close()
    text = (scen / "worker-default" / "1-train" / "data-log.tsv").read_text().splitlines()
    assert len(text) == 3 and text[0].startswith("block_num")  # one header, two rows


def test_resume_cuts_back_what_the_checkpoint_does_not_cover(tmp_path):
    from openended.metrics.scenario import episode_slots

    slots = list(episode_slots(build_blocks(CFG)))
    first = EpisodeLogger.create(tmp_path, "cut", CFG)
    for slot in slots[:9]:  # block 0 (4 rows), block 1 (3), block 2 (2 of 4); then a crash
        first.episode(slot.block, slot.task, float(slot.exp_num), exp_num=slot.exp_num)
    first.close()
    (scen,) = find_scenario_dirs(tmp_path)
    assert EpisodeLogger.resume(scen).exp_num == 9  # no checkpoint given: go on after the last row
    again = EpisodeLogger.resume(scen, next_exp_num=6)  # the checkpoint covered 6 episodes
    assert not (scen / "worker-default" / "2-test").exists()
    for slot in slots[6:]:
        again.episode(slot.block, slot.task, float(slot.exp_num), exp_num=slot.exp_num)
    again.close()
    _, _, rows = read_log(scen)
    assert [r.exp_num for r in rows] == list(range(len(slots)))
    assert [r.values["reward"] for r in rows] == [float(i) for i in range(len(slots))]


def test_read_log_errors(tmp_path):
    with pytest.raises(LogFormatError, match="missing"):
        read_log(tmp_path)
    scen = new_scenario_dir(tmp_path, "e", ["reward"], {})
    with pytest.raises(LogFormatError, match="no data-log.tsv rows"):
        read_log(scen)
    d = scen / "worker-default" / "0-train"
    d.mkdir(parents=True)
    (d / "data-log.tsv").write_text("block_num\texp_num\nx\t1\n")
    with pytest.raises(LogFormatError, match="data-log.tsv:2"):
        read_log(scen)
    good = EpisodeLogger(L2LogWriter(scen))
    good.episode(build_blocks(CFG)[1], "reach_easy", 1.0)
    good.close()
    (d / "data-log.tsv").unlink()
    tsv = scen / "worker-default" / "1-train" / "data-log.tsv"
    tsv.write_text(tsv.read_text().replace("\t1.0\t", "\tlots\t"))
    with pytest.raises(LogFormatError, match=r"1-train/data-log.tsv:2: .*lots"):
        read_log(scen)


def test_logging_along_episode_slots(tmp_path):
    from openended.metrics.scenario import episode_slots

    logger = EpisodeLogger.create(tmp_path, "slots", CFG)
    slots = list(episode_slots(build_blocks(CFG)))
    for slot in slots[:3] + slots[5:]:  # two episodes lost (e.g. a crash between log writes)
        assert logger.episode(slot.block, slot.task, 1.0, exp_num=slot.exp_num) == slot.exp_num
    with pytest.raises(LogFormatError, match="exp_num: must not decrease"):
        logger.episode(slots[-1].block, slots[-1].task, 1.0, exp_num=0)
    logger.close()
    _, _, rows = read_log(find_scenario_dirs(tmp_path)[0])
    assert [r.exp_num for r in rows] == [s.exp_num for s in slots[:3] + slots[5:]]


l2logger = pytest.importorskip("l2logger", reason="l2logger not installed (pip install -r requirements/lifelong.txt)")


def test_same_files_as_l2logger(tmp_path):
    """The same records through l2logger's DataLogger and ours give identical files (timestamps aside)."""
    from l2logger import l2logger as l2l

    ours = EpisodeLogger.create(tmp_path / "ours", "same", CFG)
    _run(ours)
    ref = l2l.DataLogger(
        str(tmp_path / "ref"),
        "same",
        {"metrics_columns": ["reward", "success"]},
        {"complexity": "1-low", "difficulty": "2-medium", "scenario_type": "condensed"},
    )

    class Shim:  # EpisodeLogger's writer interface over l2logger
        def log_record(self, record):
            ref.log_record(record)

        def close(self):
            ref.close()

    _run(EpisodeLogger(Shim()))  # type: ignore[arg-type]
    (a,) = find_scenario_dirs(tmp_path / "ours")
    (b,) = find_scenario_dirs(tmp_path / "ref")
    for name in ("logger_info.json", "scenario_info.json"):
        assert json.loads((a / name).read_text()) == json.loads((b / name).read_text())
    files_a = sorted(p.relative_to(a) for p in a.rglob("data-log.tsv"))
    assert files_a == sorted(p.relative_to(b) for p in b.rglob("data-log.tsv"))
    for rel in files_a:
        rows_a = list(csv.reader((a / rel).open(), delimiter="\t"))
        rows_b = list(csv.reader((b / rel).open(), delimiter="\t"))
        ts = rows_a[0].index("timestamp")
        assert rows_a[0] == rows_b[0]
        assert [r[:ts] + r[ts + 1 :] for r in rows_a] == [r[:ts] + r[ts + 1 :] for r in rows_b]


def test_l2logger_reads_and_validates_our_log(tmp_path):
    from l2logger import util as l2util

    _run(EpisodeLogger.create(tmp_path, "valid", CFG))
    (scen,) = find_scenario_dirs(tmp_path)
    data = l2util.read_log_data(scen)
    l2util.validate_log(data, l2util.read_logger_info(scen)["metrics_columns"])
    assert l2util.read_scenario_info(scen)["scenario_type"] == "condensed"
    _, _, rows = read_log(scen)
    assert list(data["reward"]) == [r.values["reward"] for r in rows]
    assert list(data["task_name"]) == [r.task_name for r in rows]
