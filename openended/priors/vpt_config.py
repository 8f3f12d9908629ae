"""The VPT architecture's settings: what a ``.model`` file's ``policy_kwargs`` may say.

`VPTConfig` reads and checks them (an unsupported setting is a `ConfigError` naming the
field); `VPT_1X_KWARGS` are the 1x foundation model's (docs/minecraft.md, "VPT prior",
says what was and was not confirmed of them).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from openended.errors import ConfigError

__all__ = ["VPTConfig", "VPT_1X_KWARGS"]

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
