"""PPO's RLModule with the VPT trunk (`openended.runtime.rllib_vpt`), built without a Ray
cluster on Crafter-like and minecraft-like spaces; a small random-init VPT (no pretrained
behaviour claimed). The trunk starts from OpenAI-format files when given; the KL-to-prior
term works on the module; the experiment's algo section resolves to the module."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from openended.components.kl_prior import KLPrior
from openended.errors import ConfigError
from openended.priors.vpt import VPTConfig, VPTPolicy, factored_log_probs, save_vpt
from openended.runtime.rllib_vpt import VPTPPOModule, vpt_module_spec

torch.set_num_threads(1)
CRAFTER_OBS = gym.spaces.Dict(
    {"image": gym.spaces.Box(0.0, 1.0, (48, 48, 3), np.float32), "task": gym.spaces.Discrete(5)}
)


def build(obs_space=CRAFTER_OBS, action_space=None, **model_config) -> VPTPPOModule:
    torch.manual_seed(0)
    spec = vpt_module_spec({"vpt": "small", **model_config})
    spec.observation_space, spec.action_space = obs_space, action_space or gym.spaces.Discrete(17)
    return spec.build()


def crafter_batch(n: int = 4, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "obs": {
            "image": torch.as_tensor(rng.random((n, 48, 48, 3)), dtype=torch.float32),
            "task": torch.as_tensor(rng.integers(0, 5, n)),
        }
    }


def test_crafter_frames_through_the_vpt_trunk():
    module = build()
    out = module.forward_train(crafter_batch())
    assert out["action_dist_inputs"].shape == (4, 17) and out["embeddings"].shape == (4, 32)
    values = module.compute_values(crafter_batch())
    assert values.shape == (4,) and torch.allclose(values, module.compute_values(crafter_batch(), out["embeddings"]))
    assert out["action_dist_inputs"].abs().max() < 0.5  # the new policy head starts near uniform
    # the task embedding starts at zero (the trunk's features as pretrained) and then conditions the policy
    b = crafter_batch()
    other = {"obs": {**b["obs"], "task": (b["obs"]["task"] + 1) % 5}}
    assert torch.allclose(module.forward_train(b)["embeddings"], module.forward_train(other)["embeddings"])
    with torch.no_grad():
        module.task_embedding.weight.normal_()
    assert not torch.allclose(module.forward_train(b)["embeddings"], module.forward_train(other)["embeddings"])
    action = module.get_inference_action_dist_cls().from_logits(out["action_dist_inputs"]).sample()
    assert action.shape == (4,) and int(action.max()) < 17


MINECRAFT_OBS = gym.spaces.Dict({"pov": gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)})
MINECRAFT_ACTIONS = gym.spaces.MultiDiscrete([2] * 20 + [11, 11])


def test_on_minecraft_actions_the_initial_policy_is_vpts(tmp_path):
    torch.manual_seed(7)
    vpt = VPTPolicy(VPTConfig.small(image=64)).eval()
    save_vpt(vpt, tmp_path / "m.model", tmp_path / "m.weights")
    module = build(
        MINECRAFT_OBS, MINECRAFT_ACTIONS, model_path=str(tmp_path / "m.model"), weights_path=str(tmp_path / "m.weights")
    )
    frames = torch.randint(0, 256, (3, 64, 64, 3), dtype=torch.uint8)
    logits = module.forward_train({"obs": {"pov": frames}})["action_dist_inputs"]
    assert logits.shape == (3, 62)
    with torch.no_grad():
        out, _ = vpt(frames[:, None], torch.ones(3, 1, dtype=torch.bool), vpt.initial_state(3))
    expected = factored_log_probs({k: v[:, 0] for k, v in out.items()})
    assert torch.allclose(logits, expected, atol=1e-5)  # VPT's own heads, read through their marginals
    action = module.get_train_action_dist_cls().from_logits(logits).sample()
    assert action.shape == (3, 22)
    logits.sum().backward()  # fine-tuning reaches the joint heads
    assert module.vpt_heads["buttons"].linear_layer.weight.grad.abs().sum() > 0
    new_heads = build(MINECRAFT_OBS, MINECRAFT_ACTIONS, heads="new")
    assert new_heads.vpt_heads is None
    assert new_heads.forward_train({"obs": {"pov": frames}})["action_dist_inputs"].abs().max() < 0.5
    with pytest.raises(ConfigError, match="heads: 'vpt' needs the minecraft env's actions"):
        build(heads="vpt")


def test_the_trunk_starts_from_openai_format_files(tmp_path):
    torch.manual_seed(5)
    source = VPTPolicy(VPTConfig.small(image=64))
    save_vpt(source, tmp_path / "m.model", tmp_path / "m.weights")
    module = build(model_path=str(tmp_path / "m.model"), weights_path=str(tmp_path / "m.weights"))
    for k, v in source.net.state_dict().items():
        assert torch.equal(module.trunk.state_dict()[k], v), k
    with pytest.raises(ConfigError, match="both model_path and weights_path"):
        vpt_module_spec({"model_path": str(tmp_path / "m.model")})


def test_the_kl_prior_term_trains_the_module_not_the_prior():
    module = build()
    kl = KLPrior({"coef": 1.0})
    assert kl.loss_term(module=module, batch=crafter_batch(), fwd_out=None).item() == pytest.approx(0, abs=1e-6)
    opt = torch.optim.SGD(module.parameters(), lr=1.0)
    logits = module.forward_train(crafter_batch())["action_dist_inputs"]
    (-logits[:, 0].mean()).backward()  # drift towards action 0
    opt.step()
    opt.zero_grad()
    term = kl.loss_term(module=module, batch=crafter_batch(), fwd_out=module.forward_train(crafter_batch()))
    assert term.item() > 0
    term.backward()
    assert module.pi.weight.grad is not None and module.pi.weight.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in kl.prior.parameters())


def test_bad_observations_and_config_are_clear_errors():
    with pytest.raises(ConfigError, match="flatten_observations: false"):
        build(gym.spaces.Box(0.0, 1.0, (100,), np.float32))
    with pytest.raises(ConfigError, match=r"model_config.vpt"):
        vpt_module_spec({"vpt": "3x"})
    with pytest.raises(ConfigError, match=r"model_config.heads"):
        vpt_module_spec({"heads": "joint"})


def test_the_algo_section_selects_the_module():
    from openended.runtime.rllib import build_algo_config

    cfg = build_algo_config("ppo", "CartPole-v1", {"rl_module": "vpt", "model_config": {"vpt": "small"}})
    assert cfg.rl_module_spec.module_class is VPTPPOModule
    with pytest.raises(ConfigError, match=r"algo\.config\.rl_module: one of \['vpt'\]"):
        build_algo_config("ppo", "CartPole-v1", {"rl_module": "lstm"})
    with pytest.raises(ConfigError, match="PPO module"):
        build_algo_config("sac", "Pendulum-v1", {"rl_module": "vpt"})


def test_rllib_default_model_keys_are_ignored_by_the_module():
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    spec = RLModuleSpec(
        module_class=VPTPPOModule,
        observation_space=CRAFTER_OBS,
        action_space=gym.spaces.Discrete(17),
        model_config={"vpt": "small", "vf_share_layers": True, "fcnet_hiddens": [256]},  # PPO merges its own
    )
    assert spec.build().forward_train(crafter_batch())["action_dist_inputs"].shape == (4, 17)


def test_a_pretrained_vpt_as_behaviour_prior_for_exploration(tmp_path):
    torch.manual_seed(11)
    prior = VPTPolicy(VPTConfig.small(image=64)).eval()
    save_vpt(prior, tmp_path / "p.model", tmp_path / "p.weights")
    files = {"model_path": str(tmp_path / "p.model"), "weights_path": str(tmp_path / "p.weights")}
    module = build(MINECRAFT_OBS, MINECRAFT_ACTIONS, exploration_prior=0.25, heads="new", **files)
    frames = torch.randint(0, 256, (3, 64, 64, 3), dtype=torch.uint8)
    batch = {"obs": {"pov": frames}}
    policy_logits = module.forward_inference(batch)["action_dist_inputs"]  # the policy alone
    explore = module.forward_exploration(batch)["action_dist_inputs"]
    with torch.no_grad():
        out, _ = prior(frames[:, None], torch.ones(3, 1, dtype=torch.bool), prior.initial_state(3))
        prior_p = factored_log_probs({k: v[:, 0] for k, v in out.items()}).exp()
    start = 0
    for n in (2,) * 20 + (11, 11):  # per action dimension: the 75 / 25 mixture of policy and prior
        got = torch.softmax(explore[:, start : start + n], -1)
        want = 0.75 * torch.softmax(policy_logits[:, start : start + n], -1) + 0.25 * prior_p[:, start : start + n]
        assert torch.allclose(got, want / want.sum(-1, keepdim=True), atol=1e-5)
        start += n
    assert not any(
        p is prior_param for p in module.parameters() for prior_param in module._behaviour_prior[0].parameters()
    )
    assert torch.allclose(module.forward_train(batch)["action_dist_inputs"], policy_logits)  # training: the policy
    with pytest.raises(ConfigError, match="exploration_prior: needs model_path"):
        vpt_module_spec({"vpt": "small", "exploration_prior": 0.1})
    with pytest.raises(ConfigError, match=r"exploration_prior: a number in \[0, 1\)"):
        vpt_module_spec({"exploration_prior": 1.5, **files})


@pytest.mark.ray
@pytest.mark.slow
def test_crafter_vpt_experiment_trains_one_iteration_with_the_kl_prior(tmp_path):
    """experiments/crafter_vpt.yaml from the CLI with the small VPT: PPO + kl_prior end to end (~1 min)."""
    import json
    import os
    import pathlib
    import subprocess
    import sys

    root = pathlib.Path(__file__).resolve().parents[1]
    sets = ["algo.config.model_config.vpt=small", "run.iterations=1", "algo.config.train_batch_size_per_learner=256"]
    args = ["run", "experiments/crafter_vpt.yaml", "--run-dir", str(tmp_path), "--no-progress"]
    for s in sets:
        args += ["--set", s]
    res = subprocess.run(
        [sys.executable, "-m", "openended.cli", *args],
        cwd=root,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    (rd,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    (learner,) = (rd / "checkpoints").glob("iter_*/components-learner-default.json")
    kl = json.loads(learner.read_text())["0:KLPrior"]
    assert kl["steps"] >= 4 and kl["last_kl"] >= 0.0  # >= 256 / 128 minibatches x 2 epochs (RLlib may sample more)
    assert kl["coef"] == pytest.approx(0.2 + (0.02 - 0.2) * kl["steps"] / 2000)  # the linear schedule moved


@pytest.mark.ray
@pytest.mark.slow
def test_minecraft_ppo_from_vpt_files_with_kl_and_exploration_priors(tmp_path):
    """The minecraft family (fake backend) under PPO whose policy starts as a saved VPT, with that VPT
    as KL prior and as exploration prior: all three uses of the prior in one run (~1 min)."""
    import json
    import os
    import pathlib
    import subprocess
    import sys

    torch.manual_seed(0)
    model, weights = tmp_path / "s.model", tmp_path / "s.weights"
    save_vpt(VPTPolicy(VPTConfig.small()), model, weights)
    files = f"model_path: {model}, weights_path: {weights}"
    (tmp_path / "mc.yaml").write_text(
        f"""
name: mc_vpt
seed: 0
env:
  family: minecraft
  config: {{backend: fake, image_size: [32, 32], max_episode_steps: 50}}
teacher: {{name: lp, config: {{}}}}
algo:
  name: ppo
  num_env_runners: 0
  flatten_observations: false
  config:
    rl_module: vpt
    model_config: {{{files}, exploration_prior: 0.2}}
    train_batch_size_per_learner: 128
    minibatch_size: 64
    num_epochs: 1
components:
  - class: kl_prior
    config: {{prior: vpt, {files}, coef: 0.1}}
run: {{iterations: 1, checkpoint_every: 1}}
ray: {{num_cpus: 1}}
"""
    )
    root = pathlib.Path(__file__).resolve().parents[1]
    res = subprocess.run(
        [sys.executable, "-m", "openended.cli", "run", str(tmp_path / "mc.yaml"), "--run-dir", str(tmp_path / "runs")],
        cwd=root,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    (learner,) = (tmp_path / "runs").glob("*/checkpoints/iter_*/components-learner-default.json")
    kl = json.loads(learner.read_text())["0:KLPrior"]
    # the policy starts as the prior: after one small PPO update it is still close to it
    assert kl["steps"] >= 2 and 0.0 <= kl["last_kl"] < 0.1
