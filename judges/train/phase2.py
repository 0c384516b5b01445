"""Phase-2 training set: after phase 1 (judges/eval shows which edits the model misses), a short
second pass on FRESH pairs (data.py with TRAIN_SEED=14: other windows/sentences/edits of the same train
documents) that oversamples the weak kinds and replays the others so they are not forgotten.
Exact balance per (kind, label). Writes .work/data/phase2.jsonl."""
import json
import os
import random

from common import SEED, WORK

WEAK = {"role_swap": 700, "entity": 700, "number": 700, "antonym": 700, "negation_remove": 700}
REPLAY = 200  # per label, for every other kind

rows = [json.loads(l) for l in open(os.path.join(WORK, "data", "train_14.jsonl"), encoding="utf-8")]
rng = random.Random(SEED)
out = []
for k in sorted({r["kind"] for r in rows}):
    for lab in (0, 1):
        pool = [r for r in rows if r["kind"] == k and r["label"] == lab]
        out += rng.sample(pool, min(len(pool), WEAK.get(k, REPLAY)))
rng.shuffle(out)
with open(os.path.join(WORK, "data", "phase2.jsonl"), "w", encoding="utf-8") as f:
    for r in out:
        f.write(json.dumps(r, ensure_ascii=False) + "\n")
print(len(out), "phase-2 pairs")
