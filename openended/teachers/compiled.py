"""Compile every numba kernel the teachers use, now: for image builds and new cluster nodes.

Why: each kernel is compiled on its first call and cached on disk (`em_kernels.jit`); the
first process on a fresh machine would otherwise pay ~8 s inside its first refit or
report. ``python -c "from openended.teachers import compiled; compiled.warm_up()"``.

Contents:
    warm_up -- the task-id hash, the issued-task table, the fast GMM fitter and the ALP grid kernels.
"""

from __future__ import annotations

__all__ = ["warm_up"]


def warm_up() -> None:
    """Compile (or load from numba's cache) every teacher kernel."""
    import numpy as np

    from openended import hash_kernels
    from openended.teachers import id_table
    from openended.teachers.gmm import alp_kernels, em_kernels

    hash_kernels.hash_rows(np.zeros((2, 2), dtype=np.uint64), np.uint64(0))  # sampled task ids
    id_table.warm_up()
    em_kernels.warm_up()
    alp_kernels.warm_up()
