#!/usr/bin/env bash
# Installs what Plumb's tests need, idempotently: the Python OpenTelemetry exporters and Selenium
# in .venv, Debian's chromium and chromium-driver, the JS exporters in tests/js/node_modules, and
# the judges' runtime (scripts/setup-judges.sh).
# Safe to run again: it redoes a step only when its inputs changed. Needs: cargo, python3 (with venv), node and npm, and PostgreSQL's server (installed from Debian if absent).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*" >&2; }

need_apt=()
command -v python3 >/dev/null || need_apt+=(python3 python3-venv)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
# PostgreSQL's server binaries: the catalog's tests run it on PostgreSQL too.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
# Headless Chromium and its WebDriver for the dashboard's browser tests (never a downloaded browser).
command -v chromium >/dev/null || need_apt+=(chromium)
command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
fc-list 2>/dev/null | grep -qi dejavu || need_apt+=(fonts-dejavu-core)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing Debian packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi

stamp_ok() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

# Python exporters (tests/python/requirements.txt pins versions that resolve together).
req_hash=$(sha256sum tests/python/requirements.txt | cut -d' ' -f1)
if ! stamp_ok .venv/.plumb-requirements "$req_hash"; then
  log "creating .venv with the OpenTelemetry Python exporters"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/python -m pip install -q --disable-pip-version-check -r tests/python/requirements.txt
  echo "$req_hash" > .venv/.plumb-requirements
fi

# JS exporters, exactly as locked.
lock_hash=$(cat tests/js/package.json tests/js/package-lock.json | sha256sum | cut -d' ' -f1)
if ! stamp_ok tests/js/node_modules/.plumb-lock "$lock_hash"; then
  log "installing the OpenTelemetry JS exporters in tests/js"
  (cd tests/js && npm ci --no-audit --no-fund --loglevel=error)
  echo "$lock_hash" > tests/js/node_modules/.plumb-lock
fi
# ONNX Runtime and the judge models' package-provided files.
bash scripts/setup-judges.sh
log "ready"
