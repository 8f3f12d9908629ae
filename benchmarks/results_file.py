"""Where a benchmark's ``--json PATH`` results go: one helper, so every script writes them alike."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_results(path: Path | None, results: dict[str, Any]) -> None:
    """Write ``results`` as indented JSON to ``path`` (its folder created) and say so; nothing if ``path`` is None."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {path}")
