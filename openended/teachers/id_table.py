"""A hash table from ``uint64`` task ids to ``int64`` references, its loops compiled with numba.

Why its own module: `openended.teachers.issued.IssuedTasks` matches every reported outcome
against the tasks a teacher issued. With fresh tasks per episode (every continuous
teacher), a Python ``dict`` spent ~0.5 ms per 1,024-outcome report indexing, looking up
and evicting ids one object at a time: a third of a fast ALP-GMM report on the service's
request thread. Here a whole batch is one compiled loop over plain arrays.

Layout: open addressing with linear probing over a power-of-two ring (``keys``,
``refs``; ``refs < 0`` marks an empty slot, so every stored reference is ``>= 0``),
a Fibonacci-hashed home slot (ids that users typed, ``0000000000000001`` and the like,
spread as well as content hashes do), and deletion by backward shift: no tombstones, so
lookups never slow down however many batches were evicted. The table grows by doubling
to stay at most half full.

References are ``slot << 32 | row`` (`IssuedTasks`); `remove_batch` deletes an id only
while its reference still belongs to the batch being evicted, so an id issued again by a
newer batch survives the eviction of its older one.

Contents:
    IdTable -- insert, look up and remove batches of ids; grows itself.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

__all__ = ["IdTable", "warm_up"]

_MIN_BITS = 6
_KERNELS: ModuleType | None = None


def _kernels() -> ModuleType:
    """`openended.teachers.id_table_kernels`, imported on first use (it brings numba)."""
    global _KERNELS
    if _KERNELS is None:
        from openended.teachers import id_table_kernels

        _KERNELS = id_table_kernels
    return _KERNELS


class IdTable:
    """``uint64`` id -> ``int64`` reference (``>= 0``), batch at a time."""

    def __init__(self) -> None:
        self._count = 0
        self._alloc(_MIN_BITS)

    def _alloc(self, bits: int) -> None:
        self._bits = bits
        self._shift = np.uint64(64 - bits)
        self._keys = np.zeros(1 << bits, dtype=np.uint64)
        self._refs = np.full(1 << bits, -1, dtype=np.int64)

    def __len__(self) -> int:
        return self._count

    def __setstate__(self, state: dict) -> None:
        """Unpickle into arrays of our own: Ray hands numpy buffers out read-only."""
        self.__dict__.update(state)
        self._keys, self._refs = np.array(self._keys), np.array(self._refs)

    def insert(self, keys: np.ndarray, refs: np.ndarray) -> None:
        """Map each key to its reference (in order: a key repeated in ``keys`` keeps its last)."""
        need = self._count + len(keys)
        if 2 * need > len(self._refs):
            self._grow(need)
        refs = np.asarray(refs, dtype=np.int64)
        self._count += _kernels().insert(self._keys, self._refs, self._shift, _u64(keys), refs)

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """One reference per key, ``-1`` for a key not held."""
        out = np.empty(len(keys), dtype=np.int64)
        _kernels().lookup(self._keys, self._refs, self._shift, _u64(keys), out)
        return out

    def remove_batch(self, keys: np.ndarray, gen: int) -> None:
        """Forget those ``keys`` whose reference still points into batch ``gen``."""
        self._count -= _kernels().remove_batch(self._keys, self._refs, self._shift, _u64(keys), int(gen))

    def remove_batches(self, keys: np.ndarray, gens: np.ndarray) -> None:
        """`remove_batch` of several batches at once: forget ``keys[i]`` while it points into batch ``gens[i]``."""
        self._count -= _kernels().remove_batches(
            self._keys, self._refs, self._shift, _u64(keys), np.asarray(gens, dtype=np.int64)
        )

    def insert_one(self, key: int, ref: int) -> None:
        """`insert` of one key (no arrays built)."""
        if 2 * (self._count + 1) > len(self._refs):
            self._grow(self._count + 1)
        self._count += _kernels().insert_one(self._keys, self._refs, self._shift, np.uint64(key), ref)

    def lookup_one(self, key: int) -> int:
        """`lookup` of one key: its reference, or -1."""
        return int(_kernels().lookup_one(self._keys, self._refs, self._shift, np.uint64(key)))

    def remove_one(self, key: int, gen: int) -> None:
        """`remove_batch` of one key."""
        self._count -= _kernels().remove_one(self._keys, self._refs, self._shift, np.uint64(key), gen)

    def _grow(self, need: int) -> None:
        held = self._refs >= 0
        keys, refs = self._keys[held], self._refs[held]
        bits = max(_MIN_BITS, int(2 * need - 1).bit_length())
        self._alloc(bits)
        self._count = _kernels().insert(self._keys, self._refs, self._shift, keys, refs)


def _u64(keys: np.ndarray) -> np.ndarray:
    return keys if keys.dtype == np.uint64 else np.asarray(keys, dtype=np.uint64)


def warm_up() -> None:
    """Compile (or load from numba's cache) the table's kernels now."""
    table = IdTable()
    keys = np.arange(3, dtype=np.uint64)
    table.insert(keys, np.arange(3, dtype=np.int64))
    table.lookup(keys)
    table.remove_batch(keys, 0)
    table.insert(keys, np.arange(3, dtype=np.int64))
    table.remove_batches(keys, np.zeros(3, dtype=np.int64))
    table.insert_one(7, 1)
    table.lookup_one(7)
    table.remove_one(7, 0)
