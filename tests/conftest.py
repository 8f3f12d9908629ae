"""Shared fixtures. Keep process state untouched at import (no global seeding)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture
def bounded_memory() -> Iterator[None]:
    """`support.bounded_address_space` around the whole test (a huge build fails it, not the run)."""
    from support import bounded_address_space  # imported here: conftest keeps start-up light

    with bounded_address_space():
        yield
