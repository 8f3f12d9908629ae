"""Turn pydantic validation failures into one `ConfigError` with dotted paths and fixes.

Why: users edit YAML; the error must name the YAML path (``teacher.alp_gmm.fit_rate``),
the value they wrote and what is allowed, and nothing else.
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from openended.errors import ConfigError

__all__ = ["validate_model", "format_validation_error", "config_or_kwargs"]

M = TypeVar("M", bound=BaseModel)


def _model_at(model: type[BaseModel], loc: Sequence[Any]) -> type[BaseModel] | None:
    """The (sub)model that owns the last element of ``loc``, if it can be resolved."""
    current: type[BaseModel] = model
    for part in loc[:-1]:
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        ann = field.annotation
        candidates = [ann, *typing.get_args(ann)]
        sub = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if sub is None:
            return None
        current = sub
    return current


def format_validation_error(err: ValidationError, prefix: str = "", model: type[BaseModel] | None = None) -> str:
    """One line per problem: ``path: message, got value`` (unknown fields list the valid ones)."""
    lines = []
    for e in err.errors():
        loc = e.get("loc", ())
        path = ".".join(p for p in (prefix, ".".join(str(p) for p in loc)) if p)
        if e.get("type") == "extra_forbidden":
            owner = _model_at(model, loc) if model is not None else None
            if owner is not None:
                valid = sorted(owner.model_fields)
                close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                lines.append(f"{path}: unknown field.{hint} Valid fields: {', '.join(valid)}")
            else:
                lines.append(f"{path}: unknown field (check the spelling)")
            continue
        if e.get("type") == "missing":  # the input is the whole parent mapping: not worth printing
            lines.append(f"{path}: {e.get('msg', 'Field required')}")
            continue
        got_s = repr(e.get("input"))
        if len(got_s) > 80:
            got_s = got_s[:77] + "..."
        lines.append(f"{path}: {e.get('msg', 'invalid')}, got {got_s}")
    return "\n".join(lines)


def validate_model(model: type[M], data: dict[str, Any], prefix: str = "") -> M:
    """``model.model_validate(data)`` raising `ConfigError` with dotted paths on failure."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(
            f"invalid configuration for {prefix or model.__name__}:\n{format_validation_error(err, prefix, model)}"
        ) from None


def config_or_kwargs(model: type[M], config: M | None, kwargs: dict[str, Any], prefix: str) -> M:
    """``config`` as given, or one validated from keyword options (``prefix`` names them in errors); not both.

    Why: env constructors take either a ready config object (from an experiment) or the
    options as keywords (from code); mixing them would silently drop one side.
    """
    if config is not None:
        if kwargs:
            raise ConfigError(f"{prefix}: pass either config= or keyword options, not both (got {sorted(kwargs)})")
        return config
    return validate_model(model, kwargs, prefix=prefix)
