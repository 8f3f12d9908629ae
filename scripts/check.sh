#!/usr/bin/env bash
# Static checks that .ci/run runs before the tests: ruff lint (incl. pydocstyle), the ruff
# format check and mypy on the package.
# Usage: bash scripts/check.sh   (after scripts/setup.sh; fix formatting with `.venv/bin/ruff format .`)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${OPENENDED_VENV:-.venv}/bin
echo "[check] ruff lint"
"$BIN/ruff" check .
echo "[check] ruff format --check"
"$BIN/ruff" format --check .
echo "[check] mypy (openended/)"
"$BIN/mypy"
