"""The KL-to-prior learner component (`openended.components.kl_prior`): the coefficient
schedule, the gradient reaching the learner's module and never the frozen prior, the term
pulling a drifted policy back, the VPT prior's marginals (small random-init VPT: no
pretrained behaviour claimed), an RLlib RLModule's own distribution, registration."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from openended.components.kl_prior import KLPrior, multi_categorical_kl
from openended.components.registry import available_components, check_component_specs, component_class
from openended.errors import ConfigError
from openended.priors.vpt import ENV_ACTION_NVEC, VPTConfig, VPTPolicy, factored_log_probs, save_vpt
from openended.priors.vpt_actions import joint_to_factored

torch.set_num_threads(1)


def mlp(seed: int = 0, out: int = 4) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, out))


def batch(n: int = 32, seed: int = 0) -> dict:
    return {"obs": torch.as_tensor(np.random.default_rng(seed).normal(size=(n, 6)), dtype=torch.float32)}


def test_schedules():
    constant = KLPrior({"coef": 0.3})
    assert [constant.coefficient(s) for s in (0, 10, 10**6)] == [0.3, 0.3, 0.3]
    linear = KLPrior({"coef": 1.0, "schedule": "linear", "final_coef": 0.2, "decay_steps": 100})
    assert [linear.coefficient(s) for s in (0, 50, 100, 500)] == pytest.approx([1.0, 0.6, 0.2, 0.2])
    module = mlp()
    for _ in range(50):  # every loss term is one learner step
        linear.loss_term(module=module, batch=batch(), fwd_out=None)
    assert linear.steps == 50 and linear.coefficient() == pytest.approx(0.6)
    restored = KLPrior(linear.config)
    restored.load_state_dict(linear.state_dict())
    assert restored.coefficient() == pytest.approx(0.6)  # a resumed run continues the schedule


def test_the_gradient_reaches_the_learner_and_not_the_frozen_prior():
    module = mlp()
    kl = KLPrior({"coef": 1.0})
    first = kl.loss_term(module=module, batch=batch(), fwd_out=None)
    assert first.item() == pytest.approx(0.0, abs=1e-7)  # the prior is the module as it started
    opt = torch.optim.SGD(module.parameters(), lr=0.5)
    prior_before = [p.clone() for p in kl.prior.parameters()]
    for _ in range(5):  # drift: push the logits of action 0 up
        opt.zero_grad()
        (-module(batch()["obs"])[:, 0].mean()).backward()
        opt.step()
    opt.zero_grad()
    term = kl.loss_term(module=module, batch=batch(), fwd_out=None)
    assert term.item() > 1e-3 and kl.last_kl == pytest.approx(term.item())
    term.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())
    assert all(not p.requires_grad and p.grad is None for p in kl.prior.parameters())
    assert all(torch.equal(a, b) for a, b in zip(prior_before, kl.prior.parameters()))


def test_each_rllib_module_gets_its_own_prior():
    kl, a, b = KLPrior({"coef": 1.0}), mlp(0), mlp(1)
    assert kl.loss_term(module=a, batch=batch(), fwd_out=None, module_id="a").item() == pytest.approx(0, abs=1e-7)
    assert kl.loss_term(module=b, batch=batch(), fwd_out=None, module_id="b").item() == pytest.approx(0, abs=1e-7)
    assert set(kl.priors) == {"a", "b"}


def test_the_term_pulls_a_drifted_policy_back_to_the_prior():
    module, kl = mlp(), KLPrior({"coef": 1.0})
    kl.loss_term(module=module, batch=batch(), fwd_out=None)  # snapshot
    with torch.no_grad():
        module[2].bias.add_(torch.tensor([2.0, -1.0, 0.0, 0.5]))
    opt = torch.optim.Adam(module.parameters(), lr=0.02)
    start = kl.loss_term(module=module, batch=batch(), fwd_out=None).item()
    for i in range(100):
        opt.zero_grad()
        kl.loss_term(module=module, batch=batch(seed=i), fwd_out=None).backward()
        opt.step()
    end = kl.loss_term(module=module, batch=batch(seed=999), fwd_out=None).item()
    assert start > 0.3 and end < start / 10


def test_coefficient_zero_adds_nothing_and_max_obs_bounds_the_batch():
    module = mlp()
    assert KLPrior({"coef": 0.0}).loss_term(module=module, batch=batch(), fwd_out=None) is None
    seen = []
    kl = KLPrior({"coef": 1.0, "max_obs": 5})
    kl.loss_term(module=module, batch=batch(), fwd_out=None)
    kl.prior.register_forward_hook(lambda m, inp, out: seen.append(len(inp[0])))
    kl.loss_term(module=module, batch=batch(), fwd_out={"action_dist_inputs": torch.zeros(32, 4)})
    assert seen == [5]


# ---------------------------------------------------------------------------- VPT prior


def test_factored_marginals_of_the_joint_heads_are_exact():
    rng = np.random.default_rng(0)
    support = rng.choice(8641, size=40, replace=False)
    pb = np.zeros(8641)
    pb[support] = rng.dirichlet(np.ones(40))
    pc = rng.dirichlet(np.ones(121))
    out = {
        "buttons": torch.as_tensor(np.log(np.maximum(pb, 1e-30)), dtype=torch.float32)[None],
        "camera": torch.as_tensor(np.log(pc), dtype=torch.float32)[None],
    }
    got = factored_log_probs(out)[0].exp().numpy()
    # brute force: every (button choice, camera choice) pair -> its env action, weighted by its probability
    b, c = np.repeat(support, 121), np.tile(np.arange(121), len(support))
    weight = pb[b] * pc[c]
    actions = joint_to_factored(b, c)
    expected = []
    for dim, n in enumerate(ENV_ACTION_NVEC):
        expected += [weight[actions[:, dim] == k].sum() for k in range(n)]
    assert got.shape == (sum(ENV_ACTION_NVEC),)
    assert np.allclose(got, expected, atol=1e-5)


class FramePolicy(torch.nn.Module):
    """A learner module on frames with the minecraft env's 62 MultiDiscrete logits."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(32 * 32 * 3, sum(ENV_ACTION_NVEC)))

    def forward(self, obs: dict | torch.Tensor) -> torch.Tensor:
        frames = obs["pov"] if isinstance(obs, dict) else obs
        return self.net(frames.float() / 255.0)


@pytest.fixture(scope="module")
def vpt_files(tmp_path_factory):
    path = tmp_path_factory.mktemp("vpt")
    torch.manual_seed(0)
    save_vpt(VPTPolicy(VPTConfig.small()), path / "s.model", path / "s.weights")
    return str(path / "s.model"), str(path / "s.weights")


def test_a_vpt_prior_regularises_a_minecraft_policy(vpt_files):
    kl = KLPrior({"coef": 0.5, "prior": "vpt", "model_path": vpt_files[0], "weights_path": vpt_files[1]})
    module = FramePolicy()
    frames = torch.randint(0, 256, (6, 32, 32, 3), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    term = kl.loss_term(module=module, batch={"obs": {"pov": frames}}, fwd_out=None)
    term.backward()
    assert term.item() > 0
    assert module.net[1].weight.grad is not None and module.net[1].weight.grad.abs().sum() > 0
    assert all(not p.requires_grad and p.grad is None for p in kl.prior.parameters())
    # a policy that outputs the prior's own marginals has KL 0 to it
    with torch.no_grad():
        out, _ = kl.prior(frames[:, None], torch.ones(6, 1, dtype=torch.bool), kl.prior.initial_state(6))
        marginals = factored_log_probs({k: v[:, 0] for k, v in out.items()})
    assert multi_categorical_kl(marginals, marginals, ENV_ACTION_NVEC).abs().max() < 1e-5
    # RLlib scales images to floats in [0, 1]: the prior reads the same frames the same way
    with torch.no_grad():
        as_uint8 = kl._prior_logits(kl.prior, {"pov": frames})
        as_float = kl._prior_logits(kl.prior, {"pov": frames.float() / 255.0})
    assert torch.allclose(as_uint8, as_float, atol=1e-5) and torch.allclose(as_uint8, marginals, atol=1e-5)
    with pytest.raises(ConfigError, match=r"must carry \(N, H, W, 3\) frames"):
        kl.loss_term(module=module, batch={"obs": torch.zeros(6, 6)}, fwd_out=None)


def test_registered_and_validated():
    assert "kl_prior" in available_components() and component_class("kl_prior") is KLPrior
    check_component_specs([{"class": "kl_prior", "config": {"coef": 0.1, "schedule": "linear"}}])
    with pytest.raises(ConfigError, match=r"components\[0\]\.config.*model_path and weights_path"):
        check_component_specs([{"class": "kl_prior", "config": {"prior": "vpt"}}])
    with pytest.raises(ConfigError, match=r"components\[0\]\.config\.schedule"):
        check_component_specs([{"class": "kl_prior", "config": {"schedule": "cosine"}}])


def test_an_rllib_module_uses_its_own_distribution():
    import gymnasium as gym
    from ray.rllib.algorithms.ppo.ppo_catalog import PPOCatalog
    from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import DefaultPPOTorchRLModule
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    torch.manual_seed(0)
    module = RLModuleSpec(
        module_class=DefaultPPOTorchRLModule,
        observation_space=gym.spaces.Box(-5, 5, (6,), np.float32),
        action_space=gym.spaces.MultiDiscrete([2, 3]),
        model_config={"fcnet_hiddens": [16]},
        catalog_class=PPOCatalog,
    ).build()
    kl = KLPrior({"coef": 1.0})
    assert kl.loss_term(module=module, batch=batch(), fwd_out=None).item() == pytest.approx(0.0, abs=1e-6)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.3 * torch.randn_like(p))
    fwd = module.forward_train(batch())
    term = kl.loss_term(module=module, batch=batch(), fwd_out=fwd)  # reuses the learner's forward outputs
    expected = multi_categorical_kl(
        fwd["action_dist_inputs"], kl.prior.forward_train(batch())["action_dist_inputs"], (2, 3)
    )
    assert term.item() == pytest.approx(expected.mean().item(), rel=1e-5)
    term.backward()
    assert any(p.grad is not None for p in module.parameters())
    assert all(p.grad is None for p in kl.prior.parameters())
