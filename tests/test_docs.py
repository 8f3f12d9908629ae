"""README and docs snippets run as doctests (a stale example is a failing test), and the
README's two fresh-machine commands are the ones CI runs."""

import doctest
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("path", [p for p in DOCS if ">>> " in p.read_text(encoding="utf-8")], ids=lambda p: p.name)
def test_markdown_examples_run(path):
    result = doctest.testfile(
        str(path), module_relative=False, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    assert result.failed == 0, f"{result.failed} failing example(s) in {path.name}"


def test_readme_test_command_is_what_ci_runs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    command = "bash scripts/setup.sh && .venv/bin/python -m pytest"
    assert f"\n{command}\n" in readme
    assert f"\n{command}\n" in ci
    assert "bash scripts/setup.sh && .venv/bin/openended run experiments/toy_alpgmm.yaml" in readme
