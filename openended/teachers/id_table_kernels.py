"""The compiled loops of `openended.teachers.id_table.IdTable` (numba, nogil, cached on disk).

Why a module of their own: importing them imports numba (~0.1 s) and loads the machine
code (~0.3 s in a new process); `IdTable` imports this module when the first table is
made, so importing `openended.teachers` stays cheap for processes that never make one.
"""

from __future__ import annotations

import numpy as np

from openended.teachers.gmm.em_kernels import jit

__all__ = ["insert", "lookup", "remove_batch"]

_FIBONACCI = np.uint64(0x9E3779B97F4A7C15)


@jit
def _home(key: np.uint64, shift: np.uint64) -> np.int64:
    return np.int64((key * _FIBONACCI) >> shift)


@jit
def _slot(keys: np.ndarray, refs: np.ndarray, shift: np.uint64, k: np.uint64) -> np.int64:
    """Where ``k`` is held, or the empty slot (``refs < 0``) that ends its probe run."""
    mask = keys.shape[0] - 1
    s = _home(k, shift)
    while refs[s] >= 0 and keys[s] != k:
        s = (s + 1) & mask
    return s


@jit
def insert(keys: np.ndarray, refs: np.ndarray, shift: np.uint64, new_keys: np.ndarray, new_refs: np.ndarray) -> int:
    """Set ``new_keys[i] -> new_refs[i]`` in order (a later duplicate wins); returns how many keys were new."""
    added = 0
    for i in range(new_keys.shape[0]):
        k = new_keys[i]
        s = _slot(keys, refs, shift, k)
        if refs[s] < 0:
            keys[s] = k
            added += 1
        refs[s] = new_refs[i]
    return added


@jit
def lookup(keys: np.ndarray, refs: np.ndarray, shift: np.uint64, query: np.ndarray, out: np.ndarray) -> None:
    """``out[i]``: the reference of ``query[i]``, ``-1`` when it is not in the table."""
    for i in range(query.shape[0]):
        out[i] = refs[_slot(keys, refs, shift, query[i])]  # an empty slot holds -1


@jit
def remove_batch(keys: np.ndarray, refs: np.ndarray, shift: np.uint64, old_keys: np.ndarray, gen: int) -> int:
    """Delete each of ``old_keys`` whose reference is in batch ``gen``; returns how many went."""
    mask = keys.shape[0] - 1
    removed = 0
    for n in range(old_keys.shape[0]):
        s = _slot(keys, refs, shift, old_keys[n])
        if refs[s] < 0 or (refs[s] >> 32) != gen:
            continue  # not held, or issued again by a newer batch
        removed += 1
        # Backward shift: pull later entries of the probe run into the hole when their home allows it.
        i = s
        j = (s + 1) & mask
        while refs[j] >= 0:
            h = _home(keys[j], shift)
            if ((j - h) & mask) >= ((j - i) & mask):
                keys[i] = keys[j]
                refs[i] = refs[j]
                i = j
            j = (j + 1) & mask
        refs[i] = -1
    return removed
