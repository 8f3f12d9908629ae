"""The VPT policy network (`openended.priors.vpt`) on a small random-init config: no pretrained
behaviour is claimed or tested. Forward shapes over batch and time, the recurrent memory
(chunked = step by step, episode starts forget), VPT's joint actions <-> the minecraft env's
action space, OpenAI-format checkpoints, and the 1x architecture's parameter names and shapes
against those of OpenAI's reference implementation (tests/data/vpt_1x_state_dict_shapes.json,
dumped from OpenAI's ``lib/policy.py`` with the 1x ``policy_kwargs``)."""

from __future__ import annotations

import json
import pathlib
import pickle

import numpy as np
import pytest
import torch

from openended.envs import make_env
from openended.envs.minecraft_actions import VPT_BUTTONS
from openended.errors import ConfigError
from openended.priors.vpt import VPTConfig, VPTPolicy, load_vpt, read_model_file, save_vpt
from openended.priors.vpt_actions import (
    BUTTON_GROUPS,
    CAMERA_NULL,
    INVENTORY_CHOICE,
    N_BUTTON_CHOICES,
    N_CAMERA_CHOICES,
    button_table,
    factored_to_joint,
    joint_to_factored,
)

torch.set_num_threads(1)
DATA = pathlib.Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def policy() -> VPTPolicy:
    torch.manual_seed(0)
    return VPTPolicy(VPTConfig.small()).eval()


def frames(b: int, t: int, seed: int = 0, size: int = 32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, t, size, size, 3), generator=g, dtype=torch.uint8)


def run(policy: VPTPolicy, img: torch.Tensor, first: torch.Tensor, state):
    with torch.no_grad():
        return policy(img, first, state)


# ---------------------------------------------------------------------------- forward


@pytest.mark.parametrize("b,t", [(1, 1), (3, 1), (2, 5)])
def test_forward_shapes_over_batch_and_time(policy, b, t):
    out, state = run(policy, frames(b, t), torch.zeros(b, t, dtype=torch.bool), policy.initial_state(b))
    assert out["buttons"].shape == (b, t, N_BUTTON_CHOICES) and out["camera"].shape == (b, t, N_CAMERA_CHOICES)
    assert out["value"].shape == (b, t)
    for name in ("buttons", "camera"):  # normalised log-probabilities
        assert torch.allclose(out[name].exp().sum(-1), torch.ones(b, t), atol=1e-5)
    memory = policy.config.memory
    assert len(state) == policy.config.n_recurrence_layers
    for valid, k, v in state:
        assert valid.shape == (b, memory) and k.shape == v.shape == (b, memory, policy.config.hidsize)
        assert int(valid.sum()) == b * min(t, memory)  # the frames seen so far are valid memory


def test_wrong_frame_shape_is_a_clear_error(policy):
    with pytest.raises(ValueError, match=r"frames must be \(B, T, 32, 32, 3\)"):
        policy(
            torch.zeros(1, 1, 64, 64, 3, dtype=torch.uint8),
            torch.zeros(1, 1, dtype=torch.bool),
            policy.initial_state(1),
        )


def test_a_chunk_equals_the_same_frames_step_by_step(policy):
    img, t = frames(2, 6), 6
    first = torch.zeros(2, t, dtype=torch.bool)
    first[:, 0] = True
    whole, whole_state = run(policy, img, first, policy.initial_state(2))
    state, steps = policy.initial_state(2), []
    for i in range(t):
        out, state = run(policy, img[:, i : i + 1], first[:, i : i + 1], state)
        steps.append(out["buttons"])
    assert torch.allclose(torch.cat(steps, 1), whole["buttons"], atol=1e-4)
    for (va, ka, _), (vb, kb, _) in zip(state, whole_state):
        assert torch.equal(va, vb) and torch.allclose(ka, kb, atol=1e-5)


def test_the_memory_is_carried_and_an_episode_start_forgets_it(policy):
    no_first = torch.zeros(1, 1, dtype=torch.bool)
    fresh, _ = run(policy, frames(1, 1, seed=9), no_first, policy.initial_state(1))
    _, state = run(policy, frames(1, 4, seed=1), torch.zeros(1, 4, dtype=torch.bool), policy.initial_state(1))
    remembered, _ = run(policy, frames(1, 1, seed=9), no_first, state)
    assert not torch.allclose(remembered["buttons"], fresh["buttons"], atol=1e-4)  # past frames change the output
    restarted, new_state = run(policy, frames(1, 1, seed=9), torch.ones(1, 1, dtype=torch.bool), state)
    assert torch.allclose(restarted["buttons"], fresh["buttons"], atol=1e-5)  # first=True: the old episode is masked
    assert int(new_state[0][0].sum()) == 1


def test_only_the_frames_in_the_attention_window_matter(policy):
    # each layer sees the frame and the memory - 1 before it: n_layers * (memory - 1) + 1 frames in all
    m = policy.config.n_recurrence_layers * (policy.config.memory - 1) + 1
    a = torch.cat([frames(1, 3, seed=1), frames(1, m, seed=2)], dim=1)
    b = torch.cat([frames(1, 3, seed=3), frames(1, m, seed=2)], dim=1)  # differs only beyond the window
    no_first = torch.zeros(1, a.shape[1], dtype=torch.bool)
    out_a, _ = run(policy, a, no_first, policy.initial_state(1))
    out_b, _ = run(policy, b, no_first, policy.initial_state(1))
    assert torch.allclose(out_a["buttons"][:, -1], out_b["buttons"][:, -1], atol=1e-5)
    assert not torch.allclose(out_a["buttons"][:, -2], out_b["buttons"][:, -2], atol=1e-4)


def test_frames_are_scaled_and_resized_to_the_network_input(policy):
    from openended.priors.vpt import frame_marginals, prepare_frames

    raw = frames(1, 2, size=64)[0]  # (2, 64, 64, 3) uint8
    x = prepare_frames(raw, (32, 32, 3))
    assert x.shape == (2, 1, 32, 32, 3) and 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert torch.allclose(prepare_frames(raw.float() / 255.0, (32, 32, 3)), x)  # floats in [0, 1] as they are
    same = prepare_frames(raw, (64, 64, 3))
    assert torch.equal(same[:, 0], raw.float() / 255.0)  # no resize at the input size
    with torch.no_grad():
        m = frame_marginals(policy, raw)
    assert m.shape == (2, 62)
    assert torch.allclose(m[:, :2].exp().sum(-1), torch.ones(2), atol=1e-5)


# ---------------------------------------------------------------------------- actions


def test_the_joint_spaces_have_vpt_sizes():
    assert N_BUTTON_CHOICES == 8641 and N_CAMERA_CHOICES == 121 and INVENTORY_CHOICE == 8640
    pressed, moves = button_table()
    assert pressed.shape == (8641, len(VPT_BUTTONS)) and moves.sum() == 8640 // 2
    assert len({tuple(row) + (m,) for row, m in zip(pressed, moves)}) == 8641  # every choice distinct


def test_every_joint_choice_round_trips_through_the_env_action():
    buttons = np.arange(N_BUTTON_CHOICES)
    _, moves = button_table()
    rng = np.random.default_rng(0)
    camera = np.where(moves, rng.choice(np.delete(np.arange(121), 60), size=len(buttons)), 60)
    actions = joint_to_factored(buttons, camera)
    assert actions.shape == (N_BUTTON_CHOICES, 22)
    b, c = factored_to_joint(actions)
    assert np.array_equal(b, buttons) and np.array_equal(c, camera)


def random_canonical_actions(n: int, seed: int = 0) -> np.ndarray:
    """Env actions with at most one key per VPT group (inventory alone, camera still, some of the time)."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n, 22), dtype=np.int64)
    index = {name: i for i, name in enumerate(VPT_BUTTONS)}
    for row in out:
        if rng.random() < 0.05:
            row[index["inventory"]] = 1
            row[20:] = CAMERA_NULL
            continue
        for group in BUTTON_GROUPS[:-1]:
            pick = group[rng.integers(len(group))]
            if pick != "none":
                row[index[pick]] = 1
        row[20:] = rng.integers(0, 11, 2) if rng.random() < 0.7 else CAMERA_NULL
    return out


def test_canonical_env_actions_round_trip_through_the_joint_space():
    actions = random_canonical_actions(2000)
    b, c = factored_to_joint(actions)
    assert b.max() < N_BUTTON_CHOICES and c.max() < N_CAMERA_CHOICES
    assert np.array_equal(joint_to_factored(b, c), actions)


def test_conflicting_keys_resolve_as_vpt_recorded_them():
    index = {name: i for i, name in enumerate(VPT_BUTTONS)}

    def act(*keys: str, camera=(CAMERA_NULL, CAMERA_NULL)) -> np.ndarray:
        a = np.zeros(22, dtype=np.int64)
        for k in keys:
            a[index[k]] = 1
        a[20:] = camera
        return a

    def back(a: np.ndarray) -> set[str]:
        f = joint_to_factored(*factored_to_joint(a))
        return {VPT_BUTTONS[i] for i in np.flatnonzero(f[:20])}

    assert back(act("forward", "back", "jump")) == {"jump"}  # opposite keys cancel
    assert back(act("sprint", "sneak")) == {"sneak"}  # the later key of a group wins
    assert back(act("hotbar.2", "hotbar.7")) == {"hotbar.7"}
    only_inventory = act("inventory", "attack", camera=(0, 10))
    assert back(only_inventory) == {"inventory"}
    assert factored_to_joint(only_inventory)[1] == CAMERA_NULL * 11 + CAMERA_NULL  # the camera stays still


def test_bad_actions_are_clear_errors():
    with pytest.raises(ValueError, match="dimension of 22"):
        factored_to_joint(np.zeros((3, 21)))
    with pytest.raises(ValueError, match=r"buttons must be in \[0, 8641\)"):
        joint_to_factored(np.array([8641]), np.array([0]))


def test_policy_actions_drive_the_minecraft_env(policy):
    env = make_env("minecraft", backend="fake", image_size=(32, 32))
    obs, _ = env.reset(seed=0)
    state, first = policy.initial_state(1), torch.ones(1, dtype=torch.bool)
    torch.manual_seed(0)
    for _ in range(5):
        img = torch.as_tensor(obs["pov"])[None]
        buttons, camera, state = policy.act(img, first, state)
        action = joint_to_factored(buttons.numpy(), camera.numpy())[0]
        assert env.action_space.contains(action)
        obs, *_ = env.step(action)
        first = torch.zeros(1, dtype=torch.bool)
    env.close()


# ---------------------------------------------------------------------------- files


def test_checkpoint_save_and_load_give_the_same_policy(policy, tmp_path):
    save_vpt(policy, tmp_path / "p.model", tmp_path / "p.weights")
    with open(tmp_path / "p.model", "rb") as f:  # OpenAI's layout, readable with plain pickle
        raw = pickle.load(f)
    assert raw["model"]["args"]["net"]["args"]["hidsize"] == 32 and "pi_head_opts" in raw["model"]["args"]
    loaded = load_vpt(tmp_path / "p.model", tmp_path / "p.weights").eval()
    img, first = frames(2, 3), torch.zeros(2, 3, dtype=torch.bool)
    a, _ = run(policy, img, first, policy.initial_state(2))
    b, _ = run(loaded, img, first, loaded.initial_state(2))
    for name in ("buttons", "camera", "value"):
        assert torch.equal(a[name], b[name])


def write_release_format(tmp_path: pathlib.Path, kwargs: dict, state: dict) -> tuple[pathlib.Path, pathlib.Path]:
    """A ``.model`` / ``.weights`` pair as OpenAI ships them: numpy temperature, extra unused kwargs."""
    model = {
        "model": {
            "args": {
                "net": {"args": {**kwargs, "active_reward_monitors": None, "input_shape": None}},
                "pi_head_opts": {"temperature": np.float64(2.0)},
            }
        },
        "extra": "ignored",
    }
    (tmp_path / "r.model").write_bytes(pickle.dumps(model))
    torch.save(state, tmp_path / "r.weights")
    return tmp_path / "r.model", tmp_path / "r.weights"


def small_release_kwargs() -> dict:
    return VPTConfig.small().to_kwargs()[0]


def test_release_format_files_load(tmp_path):
    torch.manual_seed(1)
    kwargs = small_release_kwargs()
    source = VPTPolicy(VPTConfig.from_kwargs(kwargs, {"temperature": 2.0}))
    state = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in source.state_dict().items()}
    model_path, weights_path = write_release_format(tmp_path, kwargs, state)
    policy_kwargs, head = read_model_file(model_path)
    assert policy_kwargs["hidsize"] == 32 and float(head["temperature"]) == 2.0
    loaded = load_vpt(model_path, weights_path)
    assert loaded.config.temperature == 2.0 and loaded.config.memory == 8
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_mismatched_weights_name_the_keys(tmp_path):
    kwargs = small_release_kwargs()
    state = VPTPolicy(VPTConfig.from_kwargs(kwargs)).state_dict()
    state.pop("net.final_ln.weight")
    state["net.extra.weight"] = torch.zeros(1)
    model_path, weights_path = write_release_format(tmp_path, kwargs, state)
    with pytest.raises(ConfigError, match=r"missing \['net.final_ln.weight'\].*unexpected \['net.extra.weight'\]"):
        load_vpt(model_path, weights_path)
    assert isinstance(load_vpt(model_path, weights_path, strict=False), VPTPolicy)  # what matches, as OpenAI's agent
    wide = write_release_format(
        tmp_path, dict(kwargs, hidsize=64), VPTPolicy(VPTConfig.from_kwargs(kwargs)).state_dict()
    )
    with pytest.raises(ConfigError, match="shape mismatches"):
        load_vpt(*wide, strict=False)


@pytest.mark.parametrize(
    "change,field",
    [
        ({"recurrence_type": "multi_layer_lstm"}, "policy_kwargs.recurrence_type"),
        ({"img_statistics": "stats.npz"}, "policy_kwargs.img_statistics"),
        ({"init_norm_kwargs": {"batch_norm": True}}, "policy_kwargs.init_norm_kwargs"),
        ({"attention_memory_size": 4}, "policy_kwargs.attention_memory_size"),
        ({"attention_heads": 5}, "policy_kwargs.attention_heads"),
        ({"img_shape": [32, 32]}, "policy_kwargs.img_shape"),
        ({"hidsize": 0}, "policy_kwargs.hidsize"),
        ({"n_recurrence_layers": 0}, "policy_kwargs.n_recurrence_layers"),
        ({"hidsize": "wide"}, "policy_kwargs: a value has the wrong type"),
        ({"init_norm_kwargs": [3]}, "policy_kwargs: a value has the wrong type"),
    ],
)
def test_unsupported_model_kwargs_name_the_field(change, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        VPTConfig.from_kwargs({**small_release_kwargs(), **change})


def test_a_model_file_cannot_run_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "evil.model").write_bytes(pickle.dumps({"model": Evil()}))
    with pytest.raises(ConfigError, match="builtins.print is not allowed"):
        read_model_file(tmp_path / "evil.model")
    with pytest.raises(ConfigError, match="does not exist"):
        read_model_file(tmp_path / "missing.model")


def test_the_1x_architecture_has_the_reference_parameter_names_and_shapes():
    expected = json.loads((DATA / "vpt_1x_state_dict_shapes.json").read_text())
    with torch.device("meta"):  # no memory, no compute: names and shapes only
        policy = VPTPolicy(VPTConfig.vpt_1x())
    got = {k: list(v.shape) for k, v in policy.state_dict().items()}
    assert got == expected
    assert sum(v.numel() for v in policy.state_dict().values()) == 71_326_654
