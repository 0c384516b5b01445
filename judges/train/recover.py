"""Recovers PyTorch weights from the committed int8 groundedness ONNX (.work/ckpt/recovered.pt).

Why: the fp32 checkpoint of a training run lives in .work/ (git-ignored, gone on a fresh clone),
but a further training phase and the PyTorch side of the speed benchmark need torch weights of
the model that ships. Dequantizing the committed model gives them without retraining:
every MatMulInteger weight is (q - zero_point) * scale per output column, the position and type
embeddings per tensor, plus any grafted low-rank adapter (export_lora.py); the word embeddings were frozen in training, so they come unchanged from
all-MiniLM-L6-v2 (newer files read them from those weights anyway); layer norms and biases are
stored in fp32 already. Prints how far the recovered model's P(supported) is from the int8
model's on dev pairs."""
import json
import os
import re

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from common import MINILM, MODELS, WORK
from export import ort_scores, session
from model import load_minilm, two_heads_from
from train import collate, tokenizer

torch.set_num_threads(2)
ONNX = os.path.join(MODELS, "groundedness", "model.onnx")
OUT = os.path.join(WORK, "ckpt", "recovered.pt")


def dequantized_weights(path):
    """{torch parameter name: fp32 tensor} for every quantized weight of the graph."""
    g = onnx.load(path).graph
    init = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    deq = lambda base: ((init[base + "_quantized"].astype(np.float32) - init[base + "_zero_point"].astype(np.float32))
                        * init[base + "_scale"].astype(np.float32))
    out = {name: torch.from_numpy(v.copy()) for name, v in init.items()
           if not name.endswith(("_quantized", "_scale", "_zero_point"))}
    for emb in ("pos", "typ"):
        out[f"{emb}.weight"] = torch.from_numpy(deq(f"{emb}.weight"))
    for node in g.node:
        if node.op_type != "MatMulInteger":
            continue
        # The quantizer names each output after the module it came from: /layers.3/ff1/MatMul_..., /pool/Gemm_...,
        # logits_MatMul_... (and, in the two-head model, /rel_pool/Gemm_..., relevance_logits_MatMul_...)
        m = re.match(r"^/(layers\.\d+/\w+|pool|rel_pool)/", node.output[0])
        module = m.group(1).replace("/", ".") if m else (
            "rel_head" if node.output[0].startswith("relevance_logits") else "head")
        base = node.input[1][: -len("_quantized")]
        w = deq(base)  # ONNX [in, out]
        # A low-rank adapter grafted beside this projection (export_lora.py) adds x A^T B^T: fold it in.
        if f"lora.{module}.a" in init:
            w = w + init[f"lora.{module}.a"].astype(np.float32) @ init[f"lora.{module}.b"].astype(np.float32)
        out[f"{module}.weight"] = torch.from_numpy(w.T.copy())  # -> nn.Linear [out, in]
    return {k: v for k, v in out.items() if not k.startswith("lora.")}


def main():
    bert = load_minilm(os.path.join(MINILM, "model.safetensors"))
    weights = dequantized_weights(ONNX)
    two_heads = "rel_head.weight" in weights
    model = two_heads_from(bert) if two_heads else bert
    missing = set(model.state_dict()) - set(weights)
    # Frozen in training, so the base model's own: older files held it quantized, newer ones read
    # it from the base weights (export.externalize_word_embeddings).
    assert missing <= {"word.weight"}, missing
    model.load_state_dict(weights, strict=False)
    model.eval()
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    # recovered.pt: the groundedness model alone (train.py / phase 2 continue from it);
    # recovered_two_heads.pt as well when the file has both heads (joint.py continues from it).
    bert.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("rel_")})
    torch.save(bert.state_dict(), OUT)
    if two_heads:
        torch.save(model.state_dict(), OUT.replace(".pt", "_two_heads.pt"))
    # The recovered model's own training record, so that the metrics and card of a model trained
    # further from it still say how its first phase ran.
    info = os.path.join(WORK, "ckpt", "train_info.json")
    shipped = json.load(open(os.path.join(MODELS, "groundedness", "metrics.json")))
    if not os.path.exists(info) and "training" in shipped:
        json.dump(shipped["training"], open(info, "w"), indent=1)
    tok = tokenizer()
    dev = [json.loads(l) for l in open(os.path.join(WORK, "data", "dev.jsonl"), encoding="utf-8")][:256]
    pairs = [(r["context"], r["claim"]) for r in dev]
    with torch.no_grad():
        p = torch.softmax(bert(*collate(tok.encode_batch([list(x) for x in pairs]))), -1)[:, 1].numpy()
    q = ort_scores(session(ONNX), tok, pairs)
    print(json.dumps({"written": OUT, "dev_pairs": len(pairs), "max_abs_vs_int8": float(np.abs(p - q).max()),
                      "mean_abs_vs_int8": float(np.abs(p - q).mean())}))


if __name__ == "__main__":
    main()
