"""benchmarks/reference_vs_original.py refuses a missing or wrong --original with a message
that says what is missing and what to point it at (the original code is never shipped)."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "reference_vs_original.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ((), "--original DIR is required"),
        (("--original", "/no/such/dir"), "is not a directory"),
        (("--original", "{tmp}"), "is not a teachDeepRL copy: it lacks teachDRL/teachers/algos/alp_gmm.py"),
    ],
)
def test_missing_or_wrong_original_stops_with_a_clear_message(tmp_path, args, says) -> None:
    res = _run(*(a.format(tmp=tmp_path) for a in args))
    assert res.returncode == 2
    assert says in res.stderr and "flowersteam/teachDeepRL @ 747cda2" in res.stderr
