#!/usr/bin/env bash
# Headless Chromium + its WebDriver from Debian's packages, for the dashboard's browser test
# (tests/test_dashboard_browser.py, marker `browser`; skipped when they are absent).
# Idempotent and fast when both are installed. Needs root (or sudo) for apt-get.
# Usage: bash scripts/setup_browser.sh
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  echo "[setup_browser] chromium and chromedriver already installed: $(chromium --version 2>/dev/null | head -1)"
  exit 0
fi
SUDO=""
if [[ "$(id -u)" != "0" ]]; then
  command -v sudo >/dev/null 2>&1 || { echo "[setup_browser] need root (or sudo) to apt-get install chromium" >&2; exit 1; }
  SUDO="sudo"
fi
echo "[setup_browser] apt-get install chromium chromium-driver (a minute or two)"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
echo "[setup_browser] done: $(chromium --version 2>/dev/null | head -1)"
