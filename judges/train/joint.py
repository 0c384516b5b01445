"""Experiment, not part of run.sh (export_joint.py has the results). Trains the two-head model
(model.TwoHeads): the groundedness cross-encoder (INIT_CKPT, default the phase-3 checkpoint)
learns context relevance on the same encoder while it keeps practising groundedness. Batches
alternate between the two tasks, each loss on its own head:
- relevance: relevance_ce.py's training pairs (HaluEval-QA train-split questions with their own
  paragraph, the BM25-hardest other paragraph or a random one);
- groundedness: JOINT_G_PAIRS pairs drawn from JOINT_G_FILE (default phase3.jsonl, the set the
  phase-3 checkpoint was trained on), so what it learned there is replayed, not forgotten.
Word embeddings stay frozen (export reads them from the base weights). Writes .work/ckpt/joint.pt
and train_info_joint.json. Env: INIT_CKPT, JOINT_G_FILE, JOINT_G_PAIRS (8000), RCE_TRAIN_Q (5000),
LR (3e-5), TIME_BUDGET_S (1500)."""
import json
import os
import random
import sys
import time

import torch

from common import MINILM, SEED, WORK
from model import load_minilm, two_heads_from
from relevance_ce import train_pairs
from train import batches, collate, fit, tokenizer

torch.set_num_threads(2)
torch.manual_seed(SEED)
INIT = os.environ.get("INIT_CKPT", os.path.join(WORK, "ckpt", "phase3.pt"))
G_FILE = os.environ.get("JOINT_G_FILE", "phase3.jsonl")
G_PAIRS = int(os.environ.get("JOINT_G_PAIRS", "8000"))
LR = float(os.environ.get("LR", "3e-5"))
BUDGET = float(os.environ.get("TIME_BUDGET_S", "1500"))


def interleave(a, b):
    """Both plans in one, the shorter spread evenly through the longer."""
    if len(a) < len(b):
        a, b = b, a
    out, j = [], 0
    for i, x in enumerate(a):
        out.append(x)
        while j < len(b) and (j + 1) * len(a) <= (i + 1) * len(b):
            out.append(b[j])
            j += 1
    return out + b[j:]


def main():
    t0 = time.time()
    rng = random.Random(SEED + 2)
    g_path = os.path.join(WORK, "data", G_FILE)
    if not os.path.exists(g_path):  # no phase-3 set in this run (FROM_SHIPPED=1 alone): the main one
        g_path = os.path.join(WORK, "data", "train.jsonl")
    g_rows = [json.loads(l) for l in open(g_path, encoding="utf-8")]
    rng.shuffle(g_rows)
    g_rows = [{"a": r["context"], "b": r["claim"], "label": r["label"], "task": 0} for r in g_rows[:G_PAIRS]]
    r_rows = [{"a": r["q"], "b": r["d"], "label": r["label"], "task": 1} for r in train_pairs(random.Random(SEED + 1))]
    tok = tokenizer()
    plans = []
    for rows in (g_rows, r_rows):
        encs = tok.encode_batch([(r["a"], r["b"]) for r in rows])
        plans.append([[(rows[i], encs[i]) for i in b] for b in batches(rows, encs, random.Random(SEED))])
    plan = interleave(*plans)
    bert = load_minilm(os.path.join(MINILM, "model.safetensors"))
    init = torch.load(INIT)
    if "rel_head.weight" in init:  # a two-head checkpoint (recover.py of the shipped model): continue it
        model = two_heads_from(bert)
        model.load_state_dict(init)
    else:
        bert.load_state_dict(init)
        model = two_heads_from(bert)
    steps = len(plan)

    def loss_of(b):
        task = b[0][0]["task"]  # 0 groundedness, 1 relevance: the head this batch trains
        ids, mask, typ, y = collate([e for _, e in b], [r["label"] for r, _ in b])
        return torch.nn.functional.cross_entropy(model(ids, mask, typ)[task], y), len(b)

    seen, done = fit(model, plan, loss_of, LR, BUDGET, t0)
    torch.save(model.state_dict(), os.path.join(WORK, "ckpt", "joint.pt"))
    info = {"init": INIT, "groundedness_pairs": len(g_rows), "groundedness_file": os.path.basename(g_path),
            "relevance_pairs": len(r_rows), "pairs_seen": seen, "steps_done": done, "steps_planned": steps,
            "lr": LR, "seconds": round(time.time() - t0, 1), "stopped_by_budget": done < steps,
            "frozen": "word embeddings"}
    json.dump(info, open(os.path.join(WORK, "ckpt", "train_info_joint.json"), "w"), indent=1)
    print(info)


if __name__ == "__main__":
    sys.exit(main())
