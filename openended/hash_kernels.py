"""The compiled loop of `openended.tasks.hash_params_u64` (numba, nogil, cached on disk).

Why: a sampled batch's task ids are hashes of its parameters. In numpy the splitmix64 rounds
are ~20 array operations whatever the batch size, ~36-40 us for 48 or 1,024 two-dimensional
tasks: a tenth of the service's work on a client's refill. One compiled pass over the rows
takes a few microseconds and gives the same 64 bits (uint64 arithmetic wraps alike; a test
compares the two on random, special and negative-zero values).

Imported by `hash_params_u64` on its first batch above a handful of rows, so importing
`openended.tasks` never imports numba.
"""

from __future__ import annotations

from typing import Any

import numba as nb
import numpy as np

__all__ = ["hash_rows"]


def _jit(fn: Any) -> Any:
    try:
        return nb.njit(cache=True, nogil=True)(fn)
    except RuntimeError:  # no writable cache directory: compile once per process instead
        return nb.njit(nogil=True)(fn)


@_jit
def hash_rows(bits: np.ndarray, salt: np.uint64) -> np.ndarray:
    """Per row of ``bits`` (``(n, d)`` uint64, the float parameters' bit patterns): its hash."""
    n, d = bits.shape
    out = np.empty(n, dtype=np.uint64)
    golden = np.uint64(0x9E3779B97F4A7C15)
    m1 = np.uint64(0xBF58476D1CE4E5B9)
    m2 = np.uint64(0x94D049BB133111EB)
    s30, s27, s31 = np.uint64(30), np.uint64(27), np.uint64(31)
    start = salt ^ np.uint64(d)
    for i in range(n):
        h = start
        for j in range(d):
            h ^= bits[i, j] + golden * np.uint64(j + 1)
            h ^= h >> s30
            h *= m1
            h ^= h >> s27
            h *= m2
            h ^= h >> s31
        out[i] = h
    return out
