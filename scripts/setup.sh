#!/usr/bin/env bash
# Create ./.venv with everything openended needs (CPU only), in two pip steps (see docs/install.md).
# Idempotent: a second run only re-checks. Usage: bash scripts/setup.sh [--python python3.11]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [[ "${1:-}" == "--python" ]]; then PY=$2; fi
VENV=${OPENENDED_VENV:-.venv}
stamp="$VENV/.openended-installed"
want=$(cat requirements/*.txt pyproject.toml | sha256sum | cut -c1-16)
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  echo "[setup] $VENV is up to date"; exit 0
fi
[[ -x "$VENV/bin/python" ]] || "$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
echo "[setup] step 1/3: resolve pinned dependencies (a minute or two on a cold cache)"
"${PIP[@]}" install -c requirements/constraints.txt -r requirements/base.txt -r requirements/dev.txt \
  -r requirements/dashboard.txt -r requirements/lifelong.txt
echo "[setup] step 2/3: gym3 / procgen2 / pysc2-evolved without their stale numpy<2 pins"
"${PIP[@]}" install --no-deps -r requirements/nodeps.txt
echo "[setup] step 3/3: openended itself (editable)"
"${PIP[@]}" install --no-deps --no-build-isolation -e .
echo "$want" > "$stamp"
echo "[setup] done: $VENV/bin/openended --help"
