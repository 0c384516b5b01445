#!/usr/bin/env bash
# The whole test suite: installs test dependencies (scripts/setup.sh), then runs every unit and
# end-to-end test of the workspace. Builds into a stable target directory outside the clone so
# that repeated runs are incremental.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/plumb-target}"
bash scripts/setup.sh
cargo test --workspace --locked "$@"
