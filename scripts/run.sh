#!/usr/bin/env bash
# Builds and runs Plumb with embedded defaults: OTLP on 127.0.0.1:4317 (gRPC) and :4318 (HTTP),
# UI and API on 127.0.0.1:3000, judges on 127.0.0.1:3100 (CPU unless a CUDA build of ONNX
# Runtime and a GPU are there), data (WAL, SQLite catalog, Parquet files) under ./plumb-data.
# Extra arguments go to `plumb serve` (see `plumb serve --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/plumb-target}"
bash scripts/setup-judges.sh
cargo build --release --locked --bin plumb
exec "$CARGO_TARGET_DIR/release/plumb" serve "$@"
