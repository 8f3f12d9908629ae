"""The teachers from other libraries hosted by the teacher service: sample, report,
checkpoint, crash and resume continue exactly where an uninterrupted service would be."""

from __future__ import annotations

import pytest
from service_support import BOX, outcomes_for

from openended.runtime.codec import decode_tasks, encode_outcomes
from openended.runtime.service import TeacherServiceActor
from openended.tasks import Discrete

POOL = Discrete([f"ckpt_{i}" for i in range(6)])
NETS = {"refit_executor": "inline", "update_size": 10, "gan_iters": 3, "generator_layers": [8]}
CASES = {
    "adr": (BOX, {"preset": "toy", "queue_len": 2}),
    "sfl": (BOX, {"n_candidates": 4, "n_rollouts": 2, "refresh_every": 20}),
    "sequential": (BOX, {"stages": [{"teacher": "random", "until": {"episodes": 12}}, {"teacher": "adr"}]}),
    "self_play": (POOL, {"add_every": 10}),
    "spdl": (BOX, {"update_offset": 0, "update_frequency": 10}),
    "accel": (BOX, {"buffer_size": 8, "min_fill": 0.5}),
    "goal_gan": (BOX, {**NETS, "discriminator_layers": [8]}),
    "setter_solver": (
        BOX,
        {"refit_executor": "inline", "update_frequency": 10, "train_steps": 2, "setter_hidden_size": 8},
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hosted_checkpointed_and_resumed(name, tmp_path):
    space, cfg = CASES[name]
    preset = cfg.get("preset")
    config = {k: v for k, v in cfg.items() if k != "preset"}
    spec = {"walk": {"teacher": name, "space": space.to_dict(), "config": config, "preset": preset}}
    kw = dict(event_log=str(tmp_path / "e.jsonl"), checkpoint_dir=str(tmp_path / "ckpt"), metrics=False)

    def play(service, rounds, start):
        for r in range(rounds):
            tasks = decode_tasks(service.sample("walk", "s", 6))
            assert service.report("walk", encode_outcomes(outcomes_for(tasks, start + 6 * r, "s"))) == 6

    a = TeacherServiceActor(curricula=spec, **kw)
    play(a, 4, 0)
    a.checkpoint()
    play(a, 3, 1000)  # logged after the checkpoint: replayed on resume
    a.close()
    b = TeacherServiceActor(curricula=spec, resume=True, **kw)
    c = TeacherServiceActor(curricula=spec, event_log=str(tmp_path / "other.jsonl"), metrics=False)
    play(c, 4, 0)
    play(c, 3, 1000)  # the same history, uninterrupted
    try:
        assert decode_tasks(b.sample("walk", "s", 6)) == decode_tasks(c.sample("walk", "s", 6))
    finally:
        b.close()
        c.close()
