"""GoalGAN: goals are labelled by success rate, solved goals fill the buffer, the GAN learns the GOID region."""

import numpy as np
import pytest

from openended.errors import ConfigError
from openended.tasks import Box, Discrete, Outcome
from openended.teachers import make_teacher
from openended.teachers.mlp import forward, init_mlp

SPACE = Box([0.0, 0.0], [2.0, 2.0])
SMALL = {"generator_layers": [32, 32], "discriminator_layers": [32, 32], "refit_executor": "inline"}


def _succeeds(x, rng):
    """Half the time in the band 1.2 <= x0 <= 1.8 (intermediate), always below it, never above."""
    if x[0] < 1.2:
        return True
    return bool(x[0] <= 1.8 and rng.random() < 0.5)


def _run(t, rounds, batch=20, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(rounds):
        tasks = t.sample(batch)
        t.update([Outcome(x.id, 0.0, success=_succeeds(x.array, rng)) for x in tasks])


def test_numpy_forward_matches_torch():
    import torch

    from openended.teachers.mlp import to_torch, torch_forward

    w = init_mlp([3, 5, 2], np.random.default_rng(0))
    x = np.random.default_rng(1).normal(size=(4, 3))
    ref = torch_forward(to_torch(w), torch.tensor(x, dtype=torch.float32), tanh_out=True).detach().numpy()
    assert np.allclose(forward(w, x, tanh_out=True), ref, atol=1e-5)


def test_each_goal_runs_n_rollouts_times_and_is_labelled_then():
    t = make_teacher("goal_gan", SPACE, seed=0, n_rollouts=3, update_size=1000, **SMALL)
    tasks = t.sample(7)
    assert [x.id for x in tasks[:3]] == [tasks[0].id] * 3 and tasks[3].id == tasks[4].id == tasks[5].id
    assert t.sample(2)[0].id == tasks[6].id  # the third goal's remaining rollouts come first
    g = tasks[0]
    t.update([Outcome(g.id, 0.0, success=s) for s in (True, False)])
    assert t.stats()["goid_labelled"] == 0  # 2 of 3 rollouts
    t.update([Outcome(g.id, 0.0, success=False)])
    assert t.stats()["goid_labelled"] == 1  # 1/3 in [0.25, 0.75]


def test_solved_goals_join_the_success_buffer_once_and_are_replayed():
    t = make_teacher("goal_gan", SPACE, seed=1, p_old=1.0, state_noise_level=0.0, update_size=1000, **SMALL)
    g = t.sample(2)[0]
    t.update([Outcome(g.id, 1.0, success=True)] * 2)
    assert t.stats()["success_buffer"] == 1
    replayed = t.sample(10)
    assert {x.origin for x in replayed} == {"old"} and {x.params for x in replayed} == {g.params}
    t.update([Outcome(x.id, 1.0, success=True) for x in replayed])
    assert t.stats()["success_buffer"] == 1  # the same goal again: within the distance threshold


def test_gan_learns_to_generate_goals_of_intermediate_difficulty():
    t = make_teacher(
        "goal_gan", SPACE, seed=2, p_old=0.0, state_noise_level=0.0, update_size=100, gan_iters=300, **SMALL
    )
    _run(t, 40)  # 400 goals: 4 trainings
    assert t.stats()["gan_trainings"] >= 3 and t.stats()["goid_labelled"] > 20
    goals = np.array([x.params for x in t.sample(400)])
    in_band = np.mean((goals[:, 0] >= 1.2) & (goals[:, 0] <= 1.8))
    assert in_band > 0.5  # uniform: 0.3


def test_state_round_trip_with_a_staged_fit_and_errors():
    kw = {**SMALL, "refit_executor": "thread", "update_size": 40, "gan_iters": 20}
    a = make_teacher("goal_gan", SPACE, seed=3, **kw)
    _run(a, 5)  # 50 goals labelled: one fit submitted, staged until the next update
    b = make_teacher("goal_gan", SPACE, seed=4, **kw)
    b.load_state_dict(a.state_dict())
    _run(a, 6, seed=9)
    _run(b, 6, seed=9)
    assert a.sample(12) == b.sample(12) and a.trained == b.trained >= 1
    for t in (a, b):
        t.close()
    with pytest.raises(ConfigError, match="works on box"):
        make_teacher("goal_gan", Discrete(4))
