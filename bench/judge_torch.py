"""PyTorch baseline of bench `judge`: the groundedness cross-encoder (judges/train/model.py, fp32
weights) scoring the same (context, claim) pairs, tokenized with the same tokenizer.json and
truncated to the same length, in batches, on the same CPU threads. Prints JSON:
pairs_per_sec and p50/p95 latency of one batch in ms."""
import argparse
import json
import os
import sys
import time

import torch
from tokenizers import Tokenizer

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "judges", "train"))
from model import Bert  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--pairs", required=True)
p.add_argument("--tokenizer", required=True)
p.add_argument("--weights", required=True)
p.add_argument("--max-length", type=int, required=True)
p.add_argument("--seconds", type=float, default=20)
p.add_argument("--batch", type=int, default=32)
a = p.parse_args()

torch.set_num_threads(os.cpu_count() or 2)
pairs = json.load(open(a.pairs))
tok = Tokenizer.from_file(a.tokenizer)
tok.enable_truncation(a.max_length)
tok.enable_padding()
model = Bert(n_labels=2)
state = torch.load(a.weights, map_location="cpu")
model.load_state_dict(state.get("model", state) if isinstance(state, dict) else state)
model.eval()


def run(batch):
    enc = tok.encode_batch([(c, q) for c, q in batch])
    ids = torch.tensor([e.ids for e in enc])
    mask = torch.tensor([e.attention_mask for e in enc])
    types = torch.tensor([e.type_ids for e in enc])
    with torch.inference_mode():
        return torch.softmax(model(ids, mask, types), -1)[:, 1]


run(pairs[: a.batch])  # warm-up
latencies, done, i = [], 0, 0
start = time.perf_counter()
while time.perf_counter() - start < a.seconds:
    batch = [pairs[(i + k) % len(pairs)] for k in range(a.batch)]
    i += a.batch
    t = time.perf_counter()
    run(batch)
    latencies.append((time.perf_counter() - t) * 1000)
    done += len(batch)
elapsed = time.perf_counter() - start
latencies.sort()
print(json.dumps({
    "pairs_per_sec": done / elapsed,
    "p50_ms": latencies[len(latencies) // 2],
    "p95_ms": latencies[int(len(latencies) * 0.95)],
    "threads": torch.get_num_threads(),
}))
