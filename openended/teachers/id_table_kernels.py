"""The compiled loops of `openended.teachers.id_table.IdTable` (numba, nogil, cached on disk).

Why a module of their own: importing them imports numba (~0.1 s) and loads the machine
code (~0.3 s in a new process); `IdTable` imports this module when the first table is
made, so importing `openended.teachers` stays cheap for processes that never make one.
"""

from __future__ import annotations

import numpy as np

from openended.teachers.gmm.em_kernels import jit

__all__ = ["insert", "insert_one", "lookup", "lookup_one", "remove_batch", "remove_batches", "remove_one"]

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
def _remove_at(keys: np.ndarray, refs: np.ndarray, shift: np.uint64, s: int) -> None:
    """Empty slot ``s`` by backward shift: later entries of its probe run move into the hole when their home allows."""
    mask = keys.shape[0] - 1
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


@jit
def remove_batch(keys: np.ndarray, refs: np.ndarray, shift: np.uint64, old_keys: np.ndarray, gen: int) -> int:
    """Delete each of ``old_keys`` whose reference is in batch ``gen``; returns how many went."""
    removed = 0
    for n in range(old_keys.shape[0]):
        s = _slot(keys, refs, shift, old_keys[n])
        if refs[s] >= 0 and (refs[s] >> 32) == gen:  # else not held, or issued again by a newer batch
            _remove_at(keys, refs, shift, s)
            removed += 1
    return removed


@jit
def remove_batches(keys: np.ndarray, refs: np.ndarray, shift: np.uint64, old_keys: np.ndarray, gens: np.ndarray) -> int:
    """`remove_batch` with a batch per key: delete ``old_keys[n]`` while its reference is in batch ``gens[n]``."""
    removed = 0
    for n in range(old_keys.shape[0]):
        s = _slot(keys, refs, shift, old_keys[n])
        if refs[s] >= 0 and (refs[s] >> 32) == gens[n]:
            _remove_at(keys, refs, shift, s)
            removed += 1
    return removed


# SPEEDUP: one id at a time without building arrays, for the batch-1 calls of a teacher loop.
@jit
def insert_one(keys: np.ndarray, refs: np.ndarray, shift: np.uint64, key: np.uint64, ref: int) -> int:
    """`insert` of one key; returns 1 if it was new."""
    s = _slot(keys, refs, shift, key)
    added = 1 if refs[s] < 0 else 0
    keys[s] = key
    refs[s] = ref
    return added


@jit
def lookup_one(keys: np.ndarray, refs: np.ndarray, shift: np.uint64, key: np.uint64) -> int:
    """`lookup` of one key."""
    return refs[_slot(keys, refs, shift, key)]


@jit
def remove_one(keys: np.ndarray, refs: np.ndarray, shift: np.uint64, key: np.uint64, gen: int) -> int:
    """`remove_batch` of one key."""
    s = _slot(keys, refs, shift, key)
    if refs[s] >= 0 and (refs[s] >> 32) == gen:
        _remove_at(keys, refs, shift, s)
        return 1
    return 0
