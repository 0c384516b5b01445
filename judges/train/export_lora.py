"""Grafts a trained adapter (lora.py, .work/ckpt/lora.pt) onto the committed int8 groundedness graph.

Every adapted projection in the shipped file ends in a Mul that rescales its MatMulInteger result to
fp32 (`/layers.i/q/MatMul_output_0`). The graft renames that output and adds, beside it, the
adapter's fp32 path from the same fp32 input: y = int8_matmul(x) + (x A^T) B^T. Nothing of the
shipped file is rewritten, so its initializers stay byte for byte the same and git stores the new
version as a small delta of the old one; the adapter matrices are fp16 in the file (cast once when
the session loads).

Writes the grafted model, its dev-calibrated threshold and manifest into OUT_DIR (default
.work/lora_model/, next to copies of the shipped tokenizer and base weights, so evaluate.py can
measure it with GROUNDEDNESS_DIR before it replaces models/groundedness). Prints how close the
grafted int8 model is to the PyTorch model with the adapter on dev pairs.
Env: ADAPTER (a checkpoint under .work/ckpt, default lora.pt), ADAPTER_SCALE (default 1: the whole
adapter; less grafts a point between the shipped model and the trained one), OUT_DIR."""
import json
import os
import shutil
import sys

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from common import MINILM, MODELS, WORK
from export import best_threshold, cross_encoder_manifest, ort_scores, session
from lora import TARGETS, with_adapters
from model import LAYERS, load_minilm
from train import collate, tokenizer

torch.set_num_threads(2)
SHIPPED = os.path.join(MODELS, "groundedness")
OUT = os.environ.get("OUT_DIR", os.path.join(WORK, "lora_model"))


def graft(src, adapters, dst):
    """Copies the ONNX graph at `src` to `dst` with every adapter of `adapters` added beside its projection."""
    m = onnx.load(src, load_external_data=False)  # the word embeddings stay a reference to the base weights
    g = m.graph
    producer = {o: n for n in g.node for o in n.output}
    new_nodes = {}
    inits = {t.name: t for t in g.initializer}
    for key, (a, b) in adapters.items():
        _, i, name = key.split(".")
        p = f"lora.{key}"
        at, bt = a.T.contiguous().numpy().astype(np.float16), b.T.contiguous().numpy().astype(np.float16)
        if p + ".a" in inits:
            # Already adapted (a later round, trained on the recovered weights with the earlier
            # adapter folded in): the two adapters add up, so their ranks are stacked.
            for suffix, new, axis in ((".a", at, 1), (".b", bt, 0)):
                old = numpy_helper.to_array(inits[p + suffix])
                inits[p + suffix].CopyFrom(numpy_helper.from_array(np.concatenate([old, new], axis), p + suffix))
            continue
        out = f"/layers.{i}/{name}/MatMul_output_0"
        (mul,) = [n for n in g.node if n.op_type == "Mul" and list(n.output) == [out]]
        (mmi,) = [n for n in g.node if n.op_type == "MatMulInteger" and n.name == f"/layers.{i}/{name}/MatMul_quant"]
        dql = producer[mmi.input[0]]
        assert dql.op_type == "DynamicQuantizeLinear", dql.op_type
        x = dql.input[0]
        base_out = out + "_int8"
        mul.output[0] = base_out
        g.initializer.append(numpy_helper.from_array(at, p + ".a"))
        g.initializer.append(numpy_helper.from_array(bt, p + ".b"))
        new_nodes[id(mul)] = [
            helper.make_node("Cast", [p + ".a"], [p + ".a32"], name=p + "/CastA", to=TensorProto.FLOAT),
            helper.make_node("Cast", [p + ".b"], [p + ".b32"], name=p + "/CastB", to=TensorProto.FLOAT),
            helper.make_node("MatMul", [x, p + ".a32"], [p + "/down"], name=p + "/Down"),
            helper.make_node("MatMul", [p + "/down", p + ".b32"], [p + "/up"], name=p + "/Up"),
            helper.make_node("Add", [base_out, p + "/up"], [out], name=p + "/Add"),
        ]
    nodes = []
    for n in g.node:  # each adapter right after the node it joins: the graph stays topologically sorted
        nodes.append(n)
        nodes += new_nodes.get(id(n), [])
    del g.node[:]
    g.node.extend(nodes)
    onnx.save(m, dst)


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in ("tokenizer.json", "base-model.safetensors"):
        if not os.path.exists(os.path.join(OUT, f)):
            shutil.copy(os.path.join(SHIPPED, f), os.path.join(OUT, f))
    adapters = torch.load(os.path.join(WORK, "ckpt", os.environ.get("ADAPTER", "lora.pt")))
    # ADAPTER_SCALE < 1 grafts part of the adapter: a point between the shipped model and the trained one.
    scale = float(os.environ.get("ADAPTER_SCALE", "1"))
    adapters = {k: (a, b * scale) for k, (a, b) in adapters.items()}
    assert set(adapters) == {f"layers.{i}.{n}" for i in range(LAYERS) for n in TARGETS}
    dst = os.path.join(OUT, "model.onnx")
    graft(os.path.join(SHIPPED, "model.onnx"), adapters, dst)

    tok = tokenizer()
    dev = [json.loads(l) for l in open(os.path.join(WORK, "data", "dev.jsonl"), encoding="utf-8")]
    model = load_minilm(os.path.join(MINILM, "model.safetensors"))
    model.load_state_dict(torch.load(os.path.join(WORK, "ckpt", "recovered.pt")))
    model = with_adapters(model)
    for key, (a, b) in adapters.items():
        _, i, name = key.split(".")
        lin = getattr(model.layers[int(i)], name)
        lin.a.data, lin.b.data, lin.scale = a, b, 1.0
    model.eval()
    pairs = [(r["context"], r["claim"]) for r in dev[:64]]
    with torch.no_grad():
        ref = torch.softmax(model(*collate(tok.encode_batch([list(p) for p in pairs]))), -1)[:, 1].numpy()
    sess = session(dst)
    p8 = ort_scores(sess, tok, pairs, bs=1)  # as served: one input per run (max_batch 1)
    sc = ort_scores(sess, tok, [(r["context"], r["claim"]) for r in dev])  # batched, as export.py calibrates
    thr, bacc = best_threshold(sc, np.array([r["label"] for r in dev]))
    shipped = json.load(open(os.path.join(SHIPPED, "plumb-judge.json")))
    manifest = cross_encoder_manifest(shipped["name"], "groundedness", ["context", "claim"], thr)
    manifest["version"] = str(int(shipped["version"]) + 1)
    json.dump(manifest, open(os.path.join(OUT, "plumb-judge.json"), "w"), indent=2)
    info = {"adapter": f"{os.environ.get('ADAPTER', 'lora.pt')} x {scale} grafted onto the committed int8 graph",
            "parity": {"max_abs_torch_lora_vs_int8_graft": float(np.abs(ref - p8).max()),
                       "mean_abs_torch_lora_vs_int8_graft": float(np.abs(ref - p8).mean())},
            "dev_threshold": thr, "dev_bacc_at_threshold": bacc, "dev_pairs": len(dev),
            "model_mb": round(os.path.getsize(dst) / 2**20, 2)}
    json.dump(info, open(os.path.join(OUT, "export_info.json"), "w"), indent=1)
    os.makedirs(os.path.join(WORK, "export"), exist_ok=True)
    json.dump(info, open(os.path.join(WORK, "export", "export_info_lora.json"), "w"), indent=1)
    print(json.dumps(info, indent=1))


if __name__ == "__main__":
    sys.exit(main())
