"""The VPT policy network (Baker et al. 2022), project-owned and weight-compatible with OpenAI's files.

`VPTPolicy` is the architecture of OpenAI's ``MinecraftAgentPolicy``: frames (uint8,
``(B, T, 128, 128, 3)``) scaled to [0, 1] -> ImpalaCNN -> dense -> residual blocks of
masked attention over a memory of past frames -> ReLU -> dense -> layer norm -> a
``buttons`` head (8641 joint choices, `openended.priors.vpt_actions`), a ``camera`` head
(121 choices) and a value head, with its parameters named as in OpenAI's ``.weights`` state
dicts, so `load_vpt` reads the released ``.model`` / ``.weights`` pairs directly.

`VPTConfig` reads the ``policy_kwargs`` of a ``.model`` file. The released models all use
the transformer recurrence; the options they do not use (LSTMs, input image statistics,
unnormalised convolutions) are refused with an error naming the field, rather than
silently building something else.

>>> import torch
>>> policy = VPTPolicy(VPTConfig.small())
>>> state = policy.initial_state(2)
>>> out, state = policy(torch.zeros(2, 3, 32, 32, 3, dtype=torch.uint8), torch.zeros(2, 3, dtype=torch.bool), state)
>>> out["buttons"].shape, out["camera"].shape, out["value"].shape
(torch.Size([2, 3, 8641]), torch.Size([2, 3, 121]), torch.Size([2, 3]))
"""

from __future__ import annotations

import dataclasses
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
from openended.priors.vpt_layers import FanInLayer, ImageEncoder, ImpalaCNN

__all__ = [
    "VPTConfig",
    "VPTNet",
    "VPTPolicy",
    "VPT_1X_KWARGS",
    "ENV_ACTION_NVEC",
    "factored_log_probs",
    "load_vpt",
    "save_vpt",
    "read_model_file",
]

#: ``policy_kwargs`` of OpenAI's 1x foundation model (``foundation-model-1x.model``); see docs/minecraft.md.
VPT_1X_KWARGS: dict[str, Any] = {
    "attention_heads": 16,
    "attention_mask_style": "clipped_causal",
    "attention_memory_size": 256,
    "diff_mlp_embedding": False,
    "hidsize": 1024,
    "img_shape": [128, 128, 3],
    "impala_chans": [16, 32, 32],
    "impala_kwargs": {"post_pool_groups": 1},
    "impala_width": 4,
    "init_norm_kwargs": {"batch_norm": False, "group_norm_groups": 1},
    "n_recurrence_layers": 4,
    "only_img_input": True,
    "pointwise_ratio": 4,
    "pointwise_use_activation": False,
    "recurrence_is_residual": True,
    "recurrence_type": "transformer",
    "timesteps": 128,
    "use_pointwise_layer": True,
    "use_pre_lstm_ln": False,
}
#: Options a released model may carry that this implementation supports only at one value.
_FIXED: dict[str, Any] = {
    "recurrence_type": "transformer",
    "attention_mask_style": "clipped_causal",
    "recurrence_is_residual": True,
    "use_pointwise_layer": True,
    "diff_mlp_embedding": False,
    "img_statistics": None,
    "scale_input_img": True,
    "single_output": False,
}


@dataclasses.dataclass(frozen=True)
class VPTConfig:
    """The architecture knobs of a ``.model`` file's ``policy_kwargs`` (plus the head temperature)."""

    hidsize: int = 1024
    img_shape: tuple[int, int, int] = (128, 128, 3)
    impala_chans: tuple[int, ...] = (16, 32, 32)
    impala_width: int = 4
    group_norm_groups: int | None = 1
    post_pool_groups: int | None = 1
    first_conv_norm: bool = False
    attention_heads: int = 16
    attention_memory_size: int = 256
    timesteps: int = 128
    n_recurrence_layers: int = 4
    pointwise_ratio: int = 4
    pointwise_use_activation: bool = False
    use_pre_lstm_ln: bool = False
    temperature: float = 1.0

    @property
    def memory(self) -> int:
        """Frames of past keys and values each attention layer keeps."""
        return self.attention_memory_size - self.timesteps

    @classmethod
    def from_kwargs(cls, policy_kwargs: dict[str, Any], pi_head_kwargs: dict[str, Any] | None = None) -> VPTConfig:
        """Validate a ``.model`` file's kwargs; unsupported settings raise `ConfigError` naming the field."""
        try:
            config = cls._parse(dict(policy_kwargs), dict(pi_head_kwargs or {}))
        except ConfigError:
            raise
        except (TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"policy_kwargs: a value has the wrong type ({exc})") from exc
        config.check()
        return config

    @classmethod
    def _parse(cls, kw: dict[str, Any], head: dict[str, Any]) -> VPTConfig:
        for name, value in _FIXED.items():
            if name in kw and kw[name] != value:
                raise ConfigError(
                    f"policy_kwargs.{name}: {kw[name]!r} is not supported "
                    f"(only {value!r}, what the released VPT models use)"
                )
        norm = dict(kw.get("init_norm_kwargs") or {})
        if norm.get("batch_norm") or norm.get("layer_norm"):
            raise ConfigError(
                "policy_kwargs.init_norm_kwargs: only group_norm_groups is supported (batch_norm / layer_norm off)"
            )
        extra_impala = set(kw.get("impala_kwargs") or {}) - {"post_pool_groups"}
        if extra_impala:
            raise ConfigError(
                f"policy_kwargs.impala_kwargs: unsupported keys {sorted(extra_impala)} (only post_pool_groups)"
            )
        if "img_shape" not in kw or kw["img_shape"] is None:
            raise ConfigError("policy_kwargs.img_shape: required, e.g. [128, 128, 3]")
        defaults = cls()
        return cls(
            hidsize=int(kw.get("hidsize", 512)),
            img_shape=_image_shape(kw["img_shape"]),
            impala_chans=tuple(int(v) for v in kw.get("impala_chans", defaults.impala_chans)),
            impala_width=int(kw.get("impala_width", 1)),
            group_norm_groups=norm.get("group_norm_groups"),
            post_pool_groups=(kw.get("impala_kwargs") or {}).get("post_pool_groups"),
            first_conv_norm=bool(kw.get("first_conv_norm", False)),
            attention_heads=int(kw.get("attention_heads", 8)),
            attention_memory_size=int(kw.get("attention_memory_size", 2048)),
            timesteps=int(kw["timesteps"]) if kw.get("timesteps") is not None else 0,
            n_recurrence_layers=int(kw.get("n_recurrence_layers", 1)),
            pointwise_ratio=int(kw.get("pointwise_ratio", 4)),
            pointwise_use_activation=bool(kw.get("pointwise_use_activation", False)),
            use_pre_lstm_ln=bool(kw.get("use_pre_lstm_ln", True)),
            temperature=float(head.get("temperature", 1.0)),
        )

    def check(self) -> None:
        """Raise `ConfigError` (naming the field) where the sizes cannot build a network."""
        if len(self.img_shape) != 3 or self.img_shape[2] != 3:
            raise ConfigError(f"policy_kwargs.img_shape: expected [height, width, 3], got {list(self.img_shape)}")
        sizes = {
            "hidsize": self.hidsize,
            "impala_width": self.impala_width,
            "attention_heads": self.attention_heads,
            "n_recurrence_layers": self.n_recurrence_layers,
            "pointwise_ratio": self.pointwise_ratio,
            "img_shape": min(self.img_shape),
            "impala_chans": min(self.impala_chans, default=0),
        }
        for name, value in sizes.items():
            if value < 1:
                raise ConfigError(f"policy_kwargs.{name}: sizes must be >= 1, got {value}")
        if self.memory < 1:
            raise ConfigError(
                "policy_kwargs.attention_memory_size: must exceed timesteps "
                f"({self.timesteps}), got {self.attention_memory_size}"
            )
        if self.hidsize % self.attention_heads:
            raise ConfigError(
                f"policy_kwargs.attention_heads: {self.attention_heads} does not divide hidsize {self.hidsize}"
            )
        if self.temperature <= 0:
            raise ConfigError(f"pi_head_kwargs.temperature: must be > 0, got {self.temperature}")

    def to_kwargs(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(policy_kwargs, pi_head_kwargs)`` in the ``.model`` file's format (inverse of `from_kwargs`)."""
        policy_kwargs = {
            **{k: v for k, v in VPT_1X_KWARGS.items() if k in _FIXED or k == "only_img_input"},
            "hidsize": self.hidsize,
            "img_shape": list(self.img_shape),
            "impala_chans": list(self.impala_chans),
            "impala_kwargs": {"post_pool_groups": self.post_pool_groups},
            "impala_width": self.impala_width,
            "init_norm_kwargs": {"batch_norm": False, "group_norm_groups": self.group_norm_groups},
            "first_conv_norm": self.first_conv_norm,
            "attention_heads": self.attention_heads,
            "attention_memory_size": self.attention_memory_size,
            "timesteps": self.timesteps,
            "n_recurrence_layers": self.n_recurrence_layers,
            "pointwise_ratio": self.pointwise_ratio,
            "pointwise_use_activation": self.pointwise_use_activation,
            "use_pre_lstm_ln": self.use_pre_lstm_ln,
        }
        return policy_kwargs, {"temperature": self.temperature}

    @classmethod
    def vpt_1x(cls) -> VPTConfig:
        """OpenAI's 1x foundation model's architecture (``pi_head_kwargs`` temperature 2.0)."""
        return cls.from_kwargs(VPT_1X_KWARGS, {"temperature": 2.0})

    @classmethod
    def small(cls, image: int = 32) -> VPTConfig:
        """A tiny config of the same architecture for tests (random init: no pretrained behaviour)."""
        return cls(
            hidsize=32,
            img_shape=(image, image, 3),
            impala_chans=(4, 8),
            impala_width=1,
            attention_heads=2,
            attention_memory_size=12,
            timesteps=4,
            n_recurrence_layers=2,
            pointwise_ratio=2,
        )


def _image_shape(value: Any) -> tuple[int, int, int]:
    """``[height, width, channels]`` as a tuple of three ints (`ConfigError` otherwise)."""
    dims = tuple(int(v) for v in value)
    if len(dims) != 3:
        raise ConfigError(f"policy_kwargs.img_shape: expected [height, width, 3], got {value!r}")
    return dims[0], dims[1], dims[2]


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
