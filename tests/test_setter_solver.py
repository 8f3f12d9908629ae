"""Setter-Solver: an exact flow density, a judge that learns feasibility, a setter steered by feasibility."""

import numpy as np
import pytest

from openended.errors import ConfigError
from openended.tasks import Box, Discrete, Outcome
from openended.teachers import make_teacher
from openended.teachers.rnvp import flow_log_prob, flow_sample_t, init_flow, sample_flow

SPACE = Box([0.0, 0.0], [4.0, 4.0])
SMALL = {"setter_hidden_size": 32, "block_layers": 2, "judge_layers": [32, 32], "refit_executor": "inline"}


def _trained_flow(d, seed=0):
    """A flow whose couplings are not the identity (random last layers)."""
    rng = np.random.default_rng(seed + 1)
    flow = init_flow(d, 3, 16, 2, np.random.default_rng(seed))
    for block in flow:
        w, b = block[-1]
        block[-1] = (rng.normal(0, 0.3, w.shape), rng.normal(0, 0.3, b.shape))
    return flow


@pytest.mark.parametrize("d", [1, 3])
def test_flow_density_is_exact_and_numpy_sampling_matches_torch(d):
    import torch

    from openended.teachers.mlp import to_torch

    flow = _trained_flow(d)
    params = [to_torch(block) for block in flow]
    z = np.random.default_rng(2).normal(size=(6, d))
    f = np.linspace(0.1, 0.9, 6)
    u_np = sample_flow(flow, z, f)
    u_t, log_p = flow_sample_t(params, torch.tensor(z, dtype=torch.float32), torch.tensor(f, dtype=torch.float32))
    assert np.allclose(u_np, u_t.detach().numpy(), atol=1e-5)
    back = flow_log_prob(params, u_t.detach(), torch.tensor(f, dtype=torch.float32))
    assert np.allclose(back.detach().numpy(), log_p.detach().numpy(), atol=1e-3)  # inverse pass = forward pass
    if d == 1:  # integrates to 1 over (0, 1)
        grid = torch.linspace(1e-4, 1 - 1e-4, 20001).reshape(-1, 1)
        dens = torch.exp(flow_log_prob(params, grid, torch.full((20001,), 0.5))).detach().numpy()
        assert abs(np.trapezoid(dens, grid.numpy()[:, 0]) - 1.0) < 1e-2


def _run(t, rounds, batch=50, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(rounds):
        tasks = t.sample(batch)
        t.update([Outcome(x.id, 0.0, success=bool(x.params[0] < 2.0 and rng.random() < 0.9)) for x in tasks])


def test_judge_learns_feasibility():
    t = make_teacher("setter_solver", SPACE, seed=0, update_frequency=100, train_steps=120, **SMALL)
    _run(t, 8)  # 400 outcomes: 4 trainings
    assert t.stats()["trainings"] == 4
    left, right = SPACE.tasks(np.array([[0.5, 2.0], [1.0, 3.0]])), SPACE.tasks(np.array([[3.0, 2.0], [3.5, 1.0]]))
    assert t.feasibility(left).min() > 0.6 and t.feasibility(right).max() < 0.3


@pytest.mark.slow
def test_setter_follows_the_asked_feasibility():
    t = make_teacher("setter_solver", SPACE, seed=0, update_frequency=100, train_steps=150, **SMALL)
    _run(t, 16)  # 800 outcomes: 8 trainings
    z = t.rng.standard_normal((2000, 2))
    easy = sample_flow(t.setter, z, np.full(2000, 0.95))
    hard = sample_flow(t.setter, z, np.full(2000, 0.05))
    assert np.mean(easy[:, 0] < 0.5) > np.mean(hard[:, 0] < 0.5) + 0.2  # asked-for feasibility steers the goals


def test_trains_every_update_frequency_outcomes_and_round_trips():
    kw = {**SMALL, "refit_executor": "thread", "update_frequency": 40, "train_steps": 5}
    a = make_teacher("setter_solver", SPACE, seed=1, **kw)
    _run(a, 3, batch=30)  # 90 outcomes: two trainings submitted, the second staged
    b = make_teacher("setter_solver", SPACE, seed=2, **kw)
    b.load_state_dict(a.state_dict())
    _run(a, 3, batch=30, seed=5)
    _run(b, 3, batch=30, seed=5)
    assert a.sample(10) == b.sample(10) and a.trained == b.trained >= 2
    assert all(SPACE.contains(x) for x in a.sample(300))
    for t in (a, b):
        t.close()
    with pytest.raises(ConfigError, match="works on box"):
        make_teacher("setter_solver", Discrete(3))
    assert make_teacher("setter_solver", SPACE, preset="teachmyagent").config.setter_hidden_size == 64
