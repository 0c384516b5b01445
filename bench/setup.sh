#!/usr/bin/env bash
# Installs the benchmark peers (DuckDB, rotel) into .venv-bench and builds Plumb in release mode.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/plumb-target}"
[ -x .venv-bench/bin/python ] || python3 -m venv .venv-bench
.venv-bench/bin/python -m pip install -q --disable-pip-version-check -r bench/requirements.txt
cargo build --release --locked -p plumb -p plumb-bench
