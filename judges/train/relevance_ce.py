"""Context relevance as a trained cross-encoder, measured against the zero-shot bi-encoder that ships.

Training pairs come from HaluEval-QA's train split only: (question, its own knowledge paragraph) is
relevant; the paragraph BM25 ranks highest among the other train paragraphs is the hard negative,
and a random other paragraph the easy one (1 : 1/2 : 1/2, so half the pairs are relevant). The
model is the plain-torch MiniLM-L6 of model.py with a fresh 2-way head, trained like the
groundedness judge (train.py's batching and schedule, time-boxed). It is evaluated, in fp32
PyTorch, on exactly the test lists of relevance.py (same seed: 300 test-split questions, own
paragraph among 20 candidates) next to the bi-encoder, BM25 and token overlap in the same run.

Writes .work/relevance_ce/{metrics.json, model.pt}; nothing under models/ (the repository's size
budget leaves no room for another 22 MB model unless it measures clearly better).
Env: RCE_TRAIN_Q (train questions, default 5000), RCE_BUDGET_S (default 1500)."""
import json
import os
import random
import sys
import time

import torch

from common import MINILM, SEED, WINDOW_WORDS, WORK, halueval_items, windows
from model import load_minilm
from relevance import BM25, build, doc_score, rank_metrics, words
from evaluate import BiEncoder
from train import BATCH, batches, collate, fit, tokenizer

torch.set_num_threads(2)
torch.manual_seed(SEED)
OUT = os.path.join(WORK, "relevance_ce")
N_TRAIN = int(os.environ.get("RCE_TRAIN_Q", "5000"))
BUDGET = float(os.environ.get("RCE_BUDGET_S", "1500"))
LR = 5e-5


def train_pairs(rng):
    items = [it for it in halueval_items("qa") if it["split"] == "train"]
    docs = list(dict.fromkeys(it["context"] for it in items))
    idx = {d: i for i, d in enumerate(docs)}
    bm = BM25(docs)
    rng.shuffle(items)
    rows = []
    for n, it in enumerate(items[:N_TRAIN]):
        g = idx[it["context"]]
        rows.append({"q": it["query"], "d": docs[g], "label": 1})
        if n % 2 == 0:
            hard = bm.top(it["query"], 1, g)
            if hard:
                rows.append({"q": it["query"], "d": docs[hard[0]], "label": 0})
                continue
        other = rng.randrange(len(docs))
        if other != g:
            rows.append({"q": it["query"], "d": docs[other], "label": 0})
    rng.shuffle(rows)
    return rows


def train(rows):
    tok = tokenizer()
    encs = tok.encode_batch([(r["q"], r["d"]) for r in rows])
    plan = batches(rows, encs, random.Random(SEED))
    model = load_minilm(os.path.join(MINILM, "model.safetensors"))
    t0, steps = time.time(), len(plan)

    def loss_of(b):
        ids, mask, typ, y = collate([encs[i] for i in b], [rows[i]["label"] for i in b])
        return torch.nn.functional.cross_entropy(model(ids, mask, typ), y), len(b)

    seen, done = fit(model, plan, loss_of, LR, BUDGET, t0)
    return model, {"train_pairs": len(rows), "pairs_seen": seen, "steps_done": done, "steps_planned": steps,
                   "batch": BATCH, "lr": LR, "seconds": round(time.time() - t0, 1),
                   "stopped_by_budget": done < steps}


def ce_scores(model, tok, q, cands):
    """P(relevant) of each candidate: max over its 64-word windows, as the server scores long documents."""
    owner, pairs = [], []
    for i, d in enumerate(cands):
        for w in windows(d, WINDOW_WORDS):
            owner.append(i)
            pairs.append((q, w))
    with torch.no_grad():
        p = torch.softmax(model(*collate(tok.encode_batch(pairs))), -1)[:, 1].tolist()
    best = [0.0] * len(cands)
    for i, v in zip(owner, p):
        best[i] = max(best[i], v)
    return best


def main():
    os.makedirs(OUT, exist_ok=True)
    rows = train_pairs(random.Random(SEED + 1))
    model, info = train(rows)
    torch.save(model.state_dict(), os.path.join(OUT, "model.pt"))
    # The very lists relevance.py evaluates: same seed, dev built first.
    rng = random.Random(SEED)
    build("dev", int(os.environ.get("N_REL_Q", "300")), rng)
    tdocs, bm, test = build("test", int(os.environ.get("N_REL_Q", "300")), rng)
    tok, bienc = tokenizer(), BiEncoder()
    lists = {"cross_encoder_trained": [], "bi_encoder_minilm_int8": [], "bm25": [], "token_overlap": []}
    t0 = time.time()
    for q in test:
        cs = [tdocs[i] for i in q["cands"]]
        lists["cross_encoder_trained"].append(ce_scores(model, tok, q["query"], cs))
        lists["bi_encoder_minilm_int8"].append([doc_score(bienc, q["query"], d) for d in cs])
        lists["bm25"].append([bm.score(q["query"], i) for i in q["cands"]])
        qw = set(words(q["query"]))
        lists["token_overlap"].append([len(qw & set(words(d))) / max(1, len(qw)) for d in cs])
    res = {"questions": len(test), "candidates_per_question": 20, "training": info,
           "eval_seconds": round(time.time() - t0, 1),
           "methods": {k: rank_metrics(v) for k, v in lists.items()}}
    json.dump(res, open(os.path.join(OUT, "metrics.json"), "w"), indent=1)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    sys.exit(main())
