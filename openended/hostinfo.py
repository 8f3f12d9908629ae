r"""What a benchmark figure depends on besides the code: the CPU it ran on.

Why: the same code measured about half the service throughput on an AVX2-only EPYC as on
the AVX-512 machine of the day before (docs/benchmarks.md). Part of that was vectorisation
(a numba loop that compiled to vector code only with AVX-512), the rest the CPU itself.
Benchmarks write `cpu_facts()` into their JSON ``config`` so results are compared only
when they came from the same kind of machine.

>>> parse_cpuinfo("model name : AMD EPYC 7B13\nflags : fpu sse2 avx avx2 fma\n")
{'cpu_model': 'AMD EPYC 7B13', 'cpu_vector_isa': 'avx2'}
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

__all__ = ["cpu_facts", "parse_cpuinfo"]

# widest first: the first one a CPU lists is what numba's LLVM targets on it
_VECTOR_ISAS = ("avx512f", "avx2", "avx", "sse4_2", "asimd", "neon")


def parse_cpuinfo(text: str) -> dict[str, str]:
    """Model name and widest vector instruction set from the text of ``/proc/cpuinfo``."""
    model, flags = "", set[str]()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "hardware", "cpu model") and not model:
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    isa = next((name for name in _VECTOR_ISAS if name in flags), "unknown")
    return {"cpu_model": model or platform.processor() or "unknown", "cpu_vector_isa": isa.replace("avx512f", "avx512")}


def cpu_facts() -> dict[str, str | int | None]:
    """``cpu_model``, ``cpu_vector_isa`` (avx512, avx2, ... or unknown) and ``cpus`` of this machine."""
    cpuinfo = Path("/proc/cpuinfo")
    try:
        facts: dict[str, str | int | None] = dict(parse_cpuinfo(cpuinfo.read_text()))
    except OSError:  # not Linux
        facts = {"cpu_model": platform.processor() or platform.machine() or "unknown", "cpu_vector_isa": "unknown"}
    facts["cpus"] = os.cpu_count()
    return facts
