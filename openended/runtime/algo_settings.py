"""RLlib algorithm settings (``algo.config``) checked in the driver, before Ray starts.

Why: RLlib's ``AlgorithmConfig.update_from_dict`` stores any value, and most of its checks
run when the algorithm is built, after Ray has started (``lr=-1``, ``gamma=2`` or
``num_epochs=-3`` were accepted by ``openended check`` and failed or trained nonsense
later). Two layers, both without Ray:

* `check_algo_settings` types every override against RLlib's own config object (a field
  whose default is a bool, int or float takes only that type) and holds the fields with a
  meaning to the ranges in `RANGES` (learning rates > 0, discounts in [0, 1], ...);
* `validate_rllib_config` runs RLlib's own ``AlgorithmConfig.validate()`` (schedules,
  batch sizes, cross-field rules) and turns its errors into one line.

Every failure is a `ConfigError` naming ``algo.config.<field>``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

from openended.errors import ConfigError

__all__ = ["Range", "RANGES", "check_algo_settings", "validate_rllib_config"]


class Range(NamedTuple):
    """Allowed values of one numeric setting: ``low``/``high`` bounds, each open or closed."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    nullable: bool = False

    def describe(self) -> str:
        """``"> 0"``, ``"in [0, 1]"``, ``"an int >= 1"``."""
        kind = "an int " if self.integer else ""
        if self.low is not None and self.high is not None:
            lo, hi = ("(" if self.low_open else "["), (")" if self.high_open else "]")
            return f"{kind}in {lo}{self.low:g}, {self.high:g}{hi}"
        if self.low is not None:
            return f"{kind}{'>' if self.low_open else '>='} {self.low:g}"
        return f"{kind}{'<' if self.high_open else '<='} {self.high:g}"

    def admits(self, x: float) -> bool:
        """Whether the number ``x`` is finite and inside the range."""
        if not math.isfinite(x):
            return False
        if self.low is not None and (x < self.low or (self.low_open and x == self.low)):
            return False
        return not (self.high is not None and (x > self.high or (self.high_open and x == self.high)))


_POSITIVE = Range(0, low_open=True)
_NON_NEGATIVE = Range(0)
_UNIT = Range(0, 1)
_COUNT = Range(1, integer=True)

#: Settings with a meaning RLlib does not check before building the algorithm.
RANGES: dict[str, Range] = {
    "lr": _POSITIVE._replace(nullable=True),  # SAC: None (per-network rates below)
    "actor_lr": _POSITIVE,
    "critic_lr": _POSITIVE,
    "alpha_lr": _POSITIVE,
    "gamma": _UNIT,
    "lambda_": _UNIT,
    "tau": _UNIT,
    "clip_param": _POSITIVE,
    "vf_clip_param": _POSITIVE,
    "entropy_coeff": _NON_NEGATIVE,
    "vf_loss_coeff": _NON_NEGATIVE,
    "kl_coeff": _NON_NEGATIVE,
    "kl_target": _POSITIVE,
    "grad_clip": _POSITIVE._replace(nullable=True),
    "initial_alpha": _POSITIVE,
    "num_epochs": _COUNT,
    "minibatch_size": _COUNT,
    "train_batch_size_per_learner": _COUNT,
    "train_batch_size": _COUNT,
    "n_step": _COUNT,
    "num_steps_sampled_before_learning_starts": Range(0, integer=True),
    "target_network_update_freq": Range(0, integer=True),
}
#: Settings RLlib also takes as a schedule ``[[timestep, value], ...]``: each value is range-checked.
SCHEDULABLE = {"lr", "entropy_coeff"}


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _check_value(field: str, value: Any, rng: Range) -> None:
    if value is None and rng.nullable:
        return
    if rng.integer and not (isinstance(value, int) and not isinstance(value, bool)):
        raise ConfigError(f"{field}: must be {rng.describe()}, got {value!r}")
    if not _is_number(value) or not rng.admits(float(value)):
        raise ConfigError(f"{field}: must be {rng.describe()}, got {value!r}")


def _check_schedule(field: str, value: list, rng: Range) -> None:
    for i, point in enumerate(value):
        if not (isinstance(point, (list, tuple)) and len(point) == 2 and _is_number(point[0]) and point[0] >= 0):
            raise ConfigError(f"{field}[{i}]: a schedule point is [timestep >= 0, value], got {point!r}")
        _check_value(f"{field}[{i}][1]", point[1], rng)


def _check_type(field: str, value: Any, default: Any) -> None:
    """``value`` has the type of RLlib's own default for the field (bool, int, float or dict)."""
    if isinstance(default, bool):
        ok, want = isinstance(value, bool), "true or false"
    elif isinstance(default, int):
        ok, want = isinstance(value, int) and not isinstance(value, bool), "an int"
    elif isinstance(default, float):
        ok, want = _is_number(value) and math.isfinite(float(value)), "a finite number"
    elif isinstance(default, dict):
        ok, want = isinstance(value, dict), "a mapping"
    else:
        return  # None / str / other defaults: RLlib accepts several types there (e.g. "auto" or a number)
    if not ok:
        raise ConfigError(f"{field}: must be {want} (RLlib's default is {default!r}), got {value!r}")


def check_algo_settings(config: Any, overrides: Mapping[str, Any], prefix: str = "algo.config") -> None:
    """Type and range-check ``overrides`` against the fresh RLlib ``config`` object they will go into.

    ``config`` is e.g. ``PPOConfig()``: its attribute values are RLlib's defaults and give
    each field's type. Unknown fields are left to the caller (it names close matches).
    """
    for key, value in overrides.items():
        field = f"{prefix}.{key}"
        rng = RANGES.get(key)
        if key in SCHEDULABLE and isinstance(value, (list, tuple)) and rng is not None:
            _check_schedule(field, list(value), rng)
            continue
        if rng is not None:
            _check_value(field, value, rng)
            continue
        _check_type(field, value, getattr(config, key, None))


def validate_rllib_config(config: Any, prefix: str = "algo.config") -> None:
    """RLlib's own ``config.validate()`` (no Ray needed); its errors become one-line `ConfigError`s."""
    try:
        config.validate()
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        message = " ".join(str(e).split())
        raise ConfigError(f"{prefix}: RLlib rejected the settings: {message}") from None
