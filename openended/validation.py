"""Turn pydantic validation failures into one `ConfigError` with dotted paths and fixes.

Why: users edit YAML; the error must name the YAML path (``teacher.alp_gmm.fit_rate``),
the value they wrote and what is allowed, and nothing else.
"""
from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from openended.errors import ConfigError

__all__ = ["validate_model", "format_validation_error"]

M = TypeVar("M", bound=BaseModel)


def format_validation_error(err: ValidationError, prefix: str = "") -> str:
    """One line per problem: ``path: message, got value``."""
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e.get("loc", ()))
        path = ".".join(p for p in (prefix, loc) if p)
        msg = e.get("msg", "invalid")
        if e.get("type") == "extra_forbidden":
            msg = "unknown field (check the spelling; see the documented fields)"
            lines.append(f"{path}: {msg}")
            continue
        got = e.get("input")
        got_s = repr(got)
        if len(got_s) > 80:
            got_s = got_s[:77] + "..."
        lines.append(f"{path}: {msg}, got {got_s}")
    return "\n".join(lines)


def validate_model(model: type[M], data: dict[str, Any], prefix: str = "") -> M:
    """``model.model_validate(data)`` raising `ConfigError` with dotted paths on failure."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        fields = sorted(model.model_fields)
        raise ConfigError(
            f"invalid configuration for {prefix or model.__name__}:\n{format_validation_error(err, prefix)}\n"
            f"(valid fields: {', '.join(fields)})"
        ) from None
