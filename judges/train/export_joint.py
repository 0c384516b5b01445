"""Experiment, not part of run.sh: exports the two-head model that joint.py trained as one int8 ONNX
file with two outputs, `logits` (groundedness) and `relevance_logits`, and the two manifests that
would let both judges share it (the context-relevance one points at `../groundedness/model.onnx`
and names its output), into JOINT_OUT (default .work/joint/models/, not the shipped models/).
Calibrates each task's threshold on its dev split with the int8 model, checks parity, and measures
the relevance head as served on relevance.py's test lists. The groundedness head is measured by
`GROUNDEDNESS_DIR=<JOINT_OUT>/groundedness JOINT=1 python evaluate.py`.

Run of 2026-12-02 (judges/STATUS.md): groundedness improved on the synthetic test but fell on
HaluEval dialogue, and the relevance head ranked below the zero-shot bi-encoder, so it was not
shipped. Writes <JOINT_OUT>/../export_info.json and relevance_export.json."""
import json
import os
import random
import time

import numpy as np
import torch

from common import SEED, WORK
from export import best_threshold, cross_encoder_manifest, export_quantized, ort_scores, session
from export_relevance import doc_scores, measure
from model import TwoHeads
from relevance import N_Q, build
from train import collate, tokenizer

torch.set_num_threads(2)
OUT = os.environ.get("JOINT_OUT", os.path.join(WORK, "joint", "models"))
G = os.path.join(OUT, "groundedness")
R = os.path.join(OUT, "context-relevance")
RECORD = os.path.dirname(OUT)
CKPT = os.environ.get("JOINT_CKPT", os.path.join(WORK, "ckpt", "joint.pt"))
OUTPUTS = ("logits", "relevance_logits")


def parity(model, head, fp32, q, tok, pairs, output):
    with torch.no_grad():
        ref = torch.softmax(model(*collate(tok.encode_batch([list(p) for p in pairs])))[head], -1)[:, 1].numpy()
    p32 = ort_scores(session(fp32), tok, pairs, output=output)
    pq = ort_scores(q, tok, pairs, bs=1, output=output)
    return {"max_abs_torch_vs_ort_fp32": float(np.abs(ref - p32).max()),
            "max_abs_fp32_vs_quantized": float(np.abs(p32 - pq).max()),
            "mean_abs_fp32_vs_quantized": float(np.abs(p32 - pq).mean())}


def main():
    t0 = time.time()
    model = TwoHeads()
    model.load_state_dict(torch.load(CKPT))
    model.eval()
    tok = tokenizer()
    dev = [json.loads(l) for l in open(os.path.join(WORK, "data", "dev.jsonl"), encoding="utf-8")]
    sample = collate(tok.encode_batch([(r["context"], r["claim"]) for r in dev[:8]]))
    fp32, int8 = export_quantized(model, sample, G, os.path.join(RECORD, "export"), outputs=OUTPUTS)
    tok.save(os.path.join(G, "tokenizer.json"))
    sess = session(int8)

    # groundedness head: what export.py does for a one-head model
    g_pairs = [(r["context"], r["claim"]) for r in dev[:64]]
    g_parity = {k.replace("quantized", "int8"): v
                for k, v in parity(model, 0, fp32, sess, tok, g_pairs, "logits").items()}
    sc = ort_scores(sess, tok, [(r["context"], r["claim"]) for r in dev], bs=1)
    thr, bacc = best_threshold(sc, np.array([r["label"] for r in dev]))
    json.dump(cross_encoder_manifest("plumb-groundedness-minilm-l6", "groundedness", ["context", "claim"], thr),
              open(os.path.join(G, "plumb-judge.json"), "w"), indent=2)
    info = {"parity": g_parity, "dev_threshold": thr, "dev_bacc_at_threshold": bacc, "dev_pairs": len(dev),
            "fp32_mb": round(os.path.getsize(fp32) / 2**20, 1), "int8_mb": round(os.path.getsize(int8) / 2**20, 1),
            "two_heads": True, "checkpoint": CKPT, "seconds": round(time.time() - t0, 1)}
    json.dump(info, open(os.path.join(RECORD, "export_info.json"), "w"), indent=1)
    print(json.dumps(info, indent=1), flush=True)

    # relevance head: what export_relevance.py does, on the same lists
    rng = random.Random(SEED)
    ddocs, _, rdev = build("dev", N_Q, rng)
    tdocs, _, test = build("test", N_Q, rng)
    r_parity = parity(model, 1, fp32, sess, tok, [(q["query"], ddocs[q["cands"][0]]) for q in rdev[:64]],
                      "relevance_logits")
    score = lambda q, docs: doc_scores(sess, tok, q, docs, output="relevance_logits", bs=1)
    rthr, measured = measure(score, ddocs, rdev, tdocs, test)
    manifest = cross_encoder_manifest("plumb-context-relevance-minilm-l6", "context_relevance",
                                      ["query", "document"], rthr, output="relevance_logits")
    # The groundedness judge's file: one encoder, two heads.
    manifest["model"], manifest["tokenizer"] = "../groundedness/model.onnx", "../groundedness/tokenizer.json"
    os.makedirs(R, exist_ok=True)
    json.dump(manifest, open(os.path.join(R, "plumb-judge.json"), "w"), indent=2)
    res = {"shipped": "int8 ONNX shared with groundedness (output relevance_logits), inputs run alone, "
                      "max over 64-word windows", "bits": 8, "two_heads": True, **measured,
           "parity": r_parity, "model_mb": round(os.path.getsize(int8) / 2**20, 1),
           "seconds": round(time.time() - t0, 1)}
    json.dump(res, open(os.path.join(RECORD, "relevance_export.json"), "w"), indent=1)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
