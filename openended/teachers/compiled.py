"""`jit`: how the teachers' few compiled kernels are compiled (numba).

``numba.njit(nogil=True)``: a kernel running in a refit thread does not hold the GIL.
Cached on disk where numba finds a writable place (next to the kernel's module, else its
user cache directory), so only the first process on a machine compiles; where neither is
writable it compiles once per process instead of failing at import.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba as nb

__all__ = ["jit"]


def jit(fn: Callable[..., Any]) -> Any:
    """Compile ``fn`` lazily (on first call) with numba, nogil, cached when possible."""
    try:
        return nb.njit(cache=True, nogil=True)(fn)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return nb.njit(nogil=True)(fn)
