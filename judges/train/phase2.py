"""Phase-2 training set: after phase 1 (judges/eval shows which edits the model misses), a second
pass that oversamples the weak kinds and replays the others so they are not forgotten. Its pairs
come from the phase-1 set and a fresh one (data.py with TRAIN_SEED=14: other windows, sentences and
edits of the same train documents), so no dev or test document enters. Exact balance per (kind, label).
Env: WEAK_KINDS (comma list), WEAK_PAIRS and REPLAY_PAIRS (per label). Writes .work/data/phase2.jsonl."""
import json
import os
import random

from common import SEED, WORK

WEAK = os.environ.get("WEAK_KINDS", "role_swap,entity,number,antonym").split(",")
WEAK_PAIRS = int(os.environ.get("WEAK_PAIRS", "2500"))
REPLAY_PAIRS = int(os.environ.get("REPLAY_PAIRS", "300"))

rows, seen = [], set()
for name in ("train_14.jsonl", "train.jsonl"):
    for line in open(os.path.join(WORK, "data", name), encoding="utf-8"):
        r = json.loads(line)
        key = (r["context"], r["claim"])
        if key not in seen:
            seen.add(key)
            rows.append(r)
rng = random.Random(SEED)
out = []
for k in sorted({r["kind"] for r in rows}):
    for lab in (0, 1):
        pool = [r for r in rows if r["kind"] == k and r["label"] == lab]
        out += rng.sample(pool, min(len(pool), WEAK_PAIRS if k in WEAK else REPLAY_PAIRS))
rng.shuffle(out)
with open(os.path.join(WORK, "data", "phase2.jsonl"), "w", encoding="utf-8") as f:
    for r in out:
        f.write(json.dumps(r, ensure_ascii=False) + "\n")
print(len(out), "phase-2 pairs")
