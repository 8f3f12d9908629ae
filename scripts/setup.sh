#!/usr/bin/env bash
# Create ./.venv with everything openended needs (CPU only): pip steps, then the numba kernels (docs/install.md).
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
echo "[setup] step 1/4: resolve pinned dependencies (a minute or two on a cold cache)"
"${PIP[@]}" install -c requirements/constraints.txt -r requirements/base.txt -r requirements/dev.txt \
  -r requirements/dashboard.txt -r requirements/lifelong.txt
echo "[setup] step 2/4: gym3 / procgen2 / pysc2-evolved without their stale numpy<2 pins"
"${PIP[@]}" install --no-deps -r requirements/nodeps.txt
echo "[setup] step 3/4: openended itself (editable)"
"${PIP[@]}" install --no-deps --no-build-isolation -e .
# Numba caches compiled kernels on disk; compiled here, a short-lived teacher service (a test,
# a quick run, a fresh cluster node) never pays ~20 s of compiling, nor leaves without caching.
echo "[setup] step 4/4: compile the teachers' numba kernels (~20 s, once)"
"$VENV/bin/python" -c "from openended.teachers import compiled; compiled.warm_up()" \
  || echo "[setup] warning: kernels not pre-compiled; each is compiled on its first use instead"
echo "$want" > "$stamp"
echo "[setup] done: $VENV/bin/openended --help"
