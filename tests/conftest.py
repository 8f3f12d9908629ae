"""Shared fixtures. Keep process state untouched at import (no global seeding)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import psutil
import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


#: Address space a test under `bounded_memory` may add to this process: far above what any
#: accepted config needs to build, far below what fills a CI machine.
MEMORY_HEADROOM_BYTES = 4 * 2**30


@pytest.fixture
def bounded_memory() -> Iterator[None]:
    """This process's address space bounded for the test (Linux; elsewhere a no-op).

    Why: a test that feeds configs sizes (fuzzing, 10**12 counts) must fail with a
    MemoryError when something builds a huge object, not have the OOM killer end the whole
    run (``env.config.impossible: 10**12`` once built a 10**12-entry task list in CI).
    """
    if not sys.platform.startswith("linux"):
        yield
        return
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = psutil.Process().memory_info().vms + MEMORY_HEADROOM_BYTES
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
