"""The VPT policy network (Baker et al. 2022), project-owned and weight-compatible with OpenAI's files.

`VPTPolicy` is the architecture of OpenAI's ``MinecraftAgentPolicy``: frames (uint8,
``(B, T, 128, 128, 3)``) scaled to [0, 1] -> ImpalaCNN -> dense -> residual blocks of
masked attention over a memory of past frames -> ReLU -> dense -> layer norm -> a
``buttons`` head (8641 joint choices, `openended.priors.vpt_actions`), a ``camera`` head
(121 choices) and a value head, with its parameters named as in OpenAI's ``.weights`` state
dicts, so `load_vpt` reads the released ``.model`` / ``.weights`` pairs directly.

`VPTConfig` (`openended.priors.vpt_config`) reads the ``policy_kwargs`` of a ``.model``
file. The released models all use the transformer recurrence; the options they do not use
(LSTMs, input image statistics, unnormalised convolutions) are refused with an error
naming the field, rather than silently building something else.

>>> import torch
>>> policy = VPTPolicy(VPTConfig.small())
>>> state = policy.initial_state(2)
>>> out, state = policy(torch.zeros(2, 3, 32, 32, 3, dtype=torch.uint8), torch.zeros(2, 3, dtype=torch.bool), state)
>>> out["buttons"].shape, out["camera"].shape, out["value"].shape
(torch.Size([2, 3, 8641]), torch.Size([2, 3, 121]), torch.Size([2, 3]))
"""

from __future__ import annotations

import functools
import os
import pickle
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from openended.errors import ConfigError
from openended.priors.vpt_actions import CAMERA_NULL, N_BUTTON_CHOICES, N_CAMERA_CHOICES, button_table
from openended.priors.vpt_attention import AttentionState, RecurrentBlocks
from openended.priors.vpt_config import VPT_1X_KWARGS, VPTConfig
from openended.priors.vpt_layers import FanInLayer, ImageEncoder, ImpalaCNN

__all__ = [
    "VPTConfig",
    "VPTNet",
    "VPTPolicy",
    "VPT_1X_KWARGS",
    "ENV_ACTION_NVEC",
    "factored_log_probs",
    "frame_marginals",
    "prepare_frames",
    "load_vpt",
    "save_vpt",
    "read_model_file",
]


class _Frames(nn.Module):
    """uint8 frames -> float in [0, 1] (VPT's ``img_preprocess``; no parameters)."""

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """Scale by 1/255."""
        return img.to(torch.float32) / 255.0


class VPTNet(nn.Module):
    """The trunk (VPT's ``MinecraftPolicy``, the ``net.`` prefix): frames -> latent of width ``hidsize``."""

    def __init__(self, config: VPTConfig) -> None:
        super().__init__()
        config.check()
        self.config = config
        chans = tuple(int(config.impala_width * c) for c in config.impala_chans)
        cnn = ImpalaCNN(
            config.img_shape, chans, 256, 2, config.group_norm_groups, config.post_pool_groups, config.first_conv_norm
        )
        self.img_preprocess = _Frames()
        self.img_process = ImageEncoder(cnn, 256, config.hidsize)
        self.pre_lstm_ln = nn.LayerNorm(config.hidsize) if config.use_pre_lstm_ln else None
        self.recurrent_layer = RecurrentBlocks(
            config.hidsize,
            config.n_recurrence_layers,
            config.attention_heads,
            config.memory,
            config.pointwise_ratio,
            config.pointwise_use_activation,
        )
        self.lastlayer = FanInLayer(config.hidsize, config.hidsize, kind="linear", layer_norm=True)
        self.final_ln = nn.LayerNorm(config.hidsize)

    def initial_state(self, batch: int, device: torch.device | None = None) -> list[AttentionState]:
        """The state before an episode's first frame."""
        return self.recurrent_layer.initial_state(batch, device)

    def forward(
        self, img: torch.Tensor, first: torch.Tensor, state: list[AttentionState]
    ) -> tuple[torch.Tensor, list[AttentionState]]:
        """``img`` (B, T, H, W, 3) uint8, ``first`` (B, T) -> latent (B, T, hidsize), new state."""
        return self.latent(self.img_preprocess(img), first, state)

    def latent(
        self, frames: torch.Tensor, first: torch.Tensor, state: list[AttentionState], extra: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, list[AttentionState]]:
        """`forward` on frames already scaled to [0, 1]; ``extra`` (B, T, hidsize) is added to the image features.

        ``extra`` is where VPT itself adds goal embeddings (its ``diff_obs_process``): a
        conditioning input (a task embedding) that leaves the pretrained weights untouched.
        """
        x = self.img_process(frames)
        if extra is not None:
            x = x + extra
        if self.pre_lstm_ln is not None:
            x = self.pre_lstm_ln(x)
        x, state = self.recurrent_layer(x, first, state)
        x = self.final_ln(self.lastlayer(F.relu(x)))
        return x, state


class _CategoricalHead(nn.Module):
    """Linear -> logits / temperature -> log-softmax (VPT's ``CategoricalActionHead``)."""

    def __init__(self, size: int, n: int, temperature: float) -> None:
        super().__init__()
        self.linear_layer = nn.Linear(size, n)
        self.temperature = temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised log-probabilities."""
        return F.log_softmax(self.linear_layer(x) / self.temperature, dim=-1)


class _ValueNormalizer(nn.Module):
    """VPT's EWMA return normaliser: its running statistics only (denormalises predictions)."""

    def __init__(self) -> None:
        super().__init__()
        self.running_mean: torch.Tensor
        self.running_mean_sq: torch.Tensor
        self.debiasing_term: torch.Tensor
        self.register_buffer("running_mean", torch.zeros(1))
        self.register_buffer("running_mean_sq", torch.zeros(1))
        self.register_buffer("debiasing_term", torch.tensor(0.0))

    def denormalize(self, v: torch.Tensor) -> torch.Tensor:
        """Normalised value -> return scale."""
        d = self.debiasing_term.clamp(min=1e-5)
        mean, mean_sq = self.running_mean / d, self.running_mean_sq / d
        return v * (mean_sq - mean**2).clamp(min=1e-2).sqrt() + mean


class _ValueHead(nn.Module):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.linear = nn.Linear(size, 1)
        self.normalizer = _ValueNormalizer()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)[..., 0]


class VPTPolicy(nn.Module):
    """Trunk + action heads + value head (VPT's ``MinecraftAgentPolicy``; module doc)."""

    def __init__(self, config: VPTConfig) -> None:
        super().__init__()
        self.config = config
        self.net = VPTNet(config)
        self.value_head = _ValueHead(config.hidsize)
        self.pi_head = nn.ModuleDict(
            {
                "buttons": _CategoricalHead(config.hidsize, N_BUTTON_CHOICES, config.temperature),
                "camera": _CategoricalHead(config.hidsize, N_CAMERA_CHOICES, config.temperature),
            }
        )

    def initial_state(self, batch: int, device: torch.device | None = None) -> list[AttentionState]:
        """The recurrent state before an episode's first frame."""
        return self.net.initial_state(batch, device)

    def forward(
        self, img: torch.Tensor, first: torch.Tensor, state: list[AttentionState]
    ) -> tuple[dict[str, torch.Tensor], list[AttentionState]]:
        """``img`` (B, T, H, W, 3) uint8, ``first`` (B, T) -> ``buttons`` / ``camera`` log-probs, ``value``."""
        if img.ndim != 5 or tuple(img.shape[2:]) != self.config.img_shape:
            raise ValueError(
                f"VPTPolicy: frames must be (B, T, {', '.join(map(str, self.config.img_shape))}), "
                f"got {tuple(img.shape)}"
            )
        x, state = self.net(img, first, state)
        out = {name: head(x) for name, head in self.pi_head.items()}
        out["value"] = self.value_head(x)
        return out, state

    def value(self, normalized: torch.Tensor) -> torch.Tensor:
        """A normalised value prediction on the return scale."""
        return self.value_head.normalizer.denormalize(normalized)

    @torch.no_grad()
    def act(
        self, img: torch.Tensor, first: torch.Tensor, state: list[AttentionState], deterministic: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, list[AttentionState]]:
        """One step for a batch: ``img`` (B, H, W, 3), ``first`` (B,) -> joint (buttons, camera) choices, new state."""
        out, state = self(img[:, None], first[:, None], state)
        choices = []
        for name in ("buttons", "camera"):
            logp = out[name][:, 0]
            pick = logp.argmax(-1) if deterministic else torch.distributions.Categorical(logits=logp).sample()
            choices.append(pick)
        return choices[0], choices[1], state


#: The `minecraft` env's action (``MultiDiscrete``): 20 buttons, then camera pitch and yaw bins.
ENV_ACTION_NVEC: tuple[int, ...] = (2,) * 20 + (11, 11)


@functools.lru_cache(maxsize=1)
def _button_tensors() -> tuple[torch.Tensor, torch.Tensor]:
    pressed, moves = button_table()
    return torch.as_tensor(pressed, dtype=torch.float32), torch.as_tensor(moves, dtype=torch.float32)


def factored_log_probs(out: dict[str, torch.Tensor]) -> torch.Tensor:
    """The joint heads' distribution as per-dimension log-probs of the env's action (..., 62).

    Each of the 20 buttons gets ``log P(not pressed), log P(pressed)`` summed over the joint
    choices; pitch and yaw each get the camera head's marginal where the meta-action moves
    the camera and the still bin where it does not. The layout is that of an RLlib
    ``MultiDiscrete`` distribution's inputs (``ENV_ACTION_NVEC``). This is the product of
    the joint distribution's marginals: what a factored policy can be compared to.
    """
    pressed, moves = (t.to(out["buttons"].device) for t in _button_tensors())
    p_buttons = out["buttons"].exp()
    p_pressed = (p_buttons @ pressed).clamp(1e-12, 1 - 1e-12)  # (..., 20)
    p_move = (p_buttons @ moves)[..., None]
    cam = out["camera"].exp().reshape(*out["camera"].shape[:-1], 11, 11)
    still = torch.zeros(11, dtype=cam.dtype, device=cam.device)
    still[CAMERA_NULL] = 1.0
    pitch = p_move * cam.sum(-1) + (1 - p_move) * still
    yaw = p_move * cam.sum(-2) + (1 - p_move) * still
    buttons = torch.stack([1 - p_pressed, p_pressed], dim=-1).flatten(-2)
    return torch.cat([buttons, pitch, yaw], dim=-1).clamp_min(1e-12).log()


def prepare_frames(frames: torch.Tensor, img_shape: tuple[int, int, int]) -> torch.Tensor:
    """Frames (B, H, W, 3), uint8 or float in [0, 1], -> float (B, 1, h, w, 3) in [0, 1] at ``img_shape``.

    A different size is resized bilinearly, as OpenAI resized MineRL's frames for VPT.
    """
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (B, H, W, 3), got {tuple(frames.shape)}")
    img = frames.float() / 255.0 if frames.dtype == torch.uint8 else frames.float()
    h, w, _ = img_shape
    if tuple(img.shape[1:3]) != (h, w):
        img = F.interpolate(img.permute(0, 3, 1, 2), size=(h, w), mode="bilinear", align_corners=False)
        img = img.permute(0, 2, 3, 1)
    return img[:, None]


def frame_marginals(policy: VPTPolicy, frames: torch.Tensor) -> torch.Tensor:
    """``policy``'s `factored_log_probs` on each frame alone (empty memory): (B, 62) for frames (B, H, W, 3)."""
    x = prepare_frames(frames, policy.config.img_shape)
    b = x.shape[0]
    latent, _ = policy.net.latent(
        x, torch.ones(b, 1, dtype=torch.bool, device=x.device), policy.initial_state(b, x.device)
    )
    return factored_log_probs({name: head(latent[:, 0]) for name, head in policy.pi_head.items()})


class _ModelUnpickler(pickle.Unpickler):
    """Unpickles a ``.model`` file's plain data only (dicts, lists, numbers, numpy scalars): no code runs."""

    _ALLOWED = {
        ("builtins", "dict"),
        ("builtins", "list"),
        ("builtins", "tuple"),
        ("builtins", "set"),
        ("collections", "OrderedDict"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a .model file")


def read_model_file(model_path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(policy_kwargs, pi_head_kwargs)`` of an OpenAI ``.model`` file.

    Its layout: ``{"model": {"args": {"net": {"args": policy_kwargs}, "pi_head_opts": pi_head_kwargs}}}``.
    """
    try:
        with open(model_path, "rb") as f:
            data = _ModelUnpickler(f).load()
    except FileNotFoundError as exc:
        raise ConfigError(
            f"VPT model file {str(model_path)!r} does not exist (the .model file of OpenAI's VPT release)"
        ) from exc
    except (pickle.UnpicklingError, EOFError) as exc:
        raise ConfigError(f"VPT model file {str(model_path)!r}: not a VPT .model pickle ({exc})") from exc
    try:
        args = data["model"]["args"]
        return dict(args["net"]["args"]), dict(args.get("pi_head_opts") or {})
    except (KeyError, TypeError) as exc:
        raise ConfigError(
            f"VPT model file {str(model_path)!r}: expected model.args.net.args and "
            f"model.args.pi_head_opts, missing {exc}"
        ) from exc


def load_vpt(
    model_path: str | os.PathLike[str], weights_path: str | os.PathLike[str] | None = None, strict: bool = True
) -> VPTPolicy:
    """A `VPTPolicy` built from an OpenAI ``.model`` file, with the ``.weights`` state dict loaded (if given).

    ``strict``: every parameter of the network must be in the file and nothing else (a
    mismatch raises `ConfigError` listing the keys); ``False`` loads what matches, as
    OpenAI's own agent does.
    """
    policy = VPTPolicy(VPTConfig.from_kwargs(*read_model_file(model_path)))
    if weights_path is not None:
        try:
            state = torch.load(weights_path, map_location="cpu", weights_only=True)
        except FileNotFoundError as exc:
            raise ConfigError(f"VPT weights file {str(weights_path)!r} does not exist") from exc
        load_weights(policy, state, strict=strict, where=str(weights_path))
    return policy


def load_weights(policy: VPTPolicy, state: dict[str, torch.Tensor], strict: bool = True, where: str = "state") -> None:
    """Load a VPT state dict into ``policy``; a key or shape mismatch raises `ConfigError` naming the keys."""
    own = policy.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [
        f"{k} {tuple(state[k].shape)} != {tuple(own[k].shape)}"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    if wrong or (strict and (missing or unexpected)):
        raise ConfigError(
            f"VPT weights {where!r} do not fit the .model's architecture: "
            f"shape mismatches {wrong[:5]}, missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''} "
            "(is the .weights file from the same width as the .model file?)"
        )
    policy.load_state_dict(state, strict=False)


def save_vpt(policy: VPTPolicy, model_path: str | os.PathLike[str], weights_path: str | os.PathLike[str]) -> None:
    """Write ``policy`` as an OpenAI-format ``.model`` pickle and ``.weights`` state dict (`load_vpt` reads them)."""
    policy_kwargs, pi_head_kwargs = policy.config.to_kwargs()
    with open(model_path, "wb") as f:
        pickle.dump({"model": {"args": {"net": {"args": policy_kwargs}, "pi_head_opts": pi_head_kwargs}}}, f)
    torch.save(policy.state_dict(), weights_path)
