"""Trains a low-rank adapter (LoRA) on the shipped groundedness model instead of all its weights.

Why: git keeps every committed model and the repository must stay under 64 MiB. A fully
fine-tuned model is a new 11 MB file that git cannot delta against the old one (every weight
moved); an adapter leaves the shipped int8 weights byte for byte as they are, so the new file
costs git only the adapter (~0.3 MB at rank 4 in fp16). export_lora.py grafts it onto the
committed ONNX graph.

The base is the committed int8 model dequantized (recover.py, .work/ckpt/recovered.pt), so the
adapter learns against the weights the server actually runs, and it may also undo some of their
quantization error. Training pairs are twins (the same window with a supported claim and its
minimally edited unsupported one, data.py); each batch holds whole twins and adds a ranking loss
that asks the supported twin to score above its edit: the only thing that separates them is the
edit, so that is what the gradient points at.

Env: LORA_RANK (4), LORA_ALPHA (8), LR (5e-4), TIME_BUDGET_S, TWINS (comma list kind=twins, the
rest REPLAY_TWINS each), RANK_WEIGHT (1.0), TRAIN_FILES (comma list under .work/data; files listed
first give their twins first). Writes .work/ckpt/lora.pt and train_info_lora.json."""
import collections
import json
import os
import random
import time

import torch
from torch import nn

from common import MINILM, SEED, WORK
from model import load_minilm
from train import collate, tokenizer

torch.set_num_threads(2)
torch.manual_seed(SEED)

RANK = int(os.environ.get("LORA_RANK", "4"))
ALPHA = float(os.environ.get("LORA_ALPHA", "8"))
LR = float(os.environ.get("LR", "5e-4"))
BUDGET = float(os.environ.get("TIME_BUDGET_S", "2100"))
TWINS_PER_BATCH = int(os.environ.get("TWINS_PER_BATCH", "16"))
RANK_WEIGHT = float(os.environ.get("RANK_WEIGHT", "1.0"))
WEAK = dict(kv.split("=") for kv in os.environ.get("TWINS", "role_swap=6000,entity=3000,number=600,antonym=600").split(","))
REPLAY = int(os.environ.get("REPLAY_TWINS", "300"))
TARGETS = ("q", "k", "v", "o", "ff1", "ff2")
TRAIN_FILES = tuple(os.environ.get("TRAIN_FILES", "train.jsonl,train_14.jsonl,train_15.jsonl").split(","))


class LoRALinear(nn.Module):
    """y = base(x) + (x A^T) B^T * alpha/rank; base frozen, B starts at zero (the base model exactly)."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float):
        super().__init__()
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        self.a = nn.Parameter(torch.randn(rank, base.in_features) / base.in_features ** 0.5)
        self.b = nn.Parameter(torch.zeros(base.out_features, rank))
        self.scale = alpha / rank

    def forward(self, x):
        return self.base(x) + (x @ self.a.T) @ self.b.T * self.scale


def with_adapters(model, rank=RANK, alpha=ALPHA):
    """Freezes `model` and wraps every TARGETS linear of every layer in a LoRALinear."""
    for p in model.parameters():
        p.requires_grad_(False)
    for layer in model.layers:
        for name in TARGETS:
            setattr(layer, name, LoRALinear(getattr(layer, name), rank, alpha))
    return model


def adapter_state(model):
    """{"layers.i.name": (A [rank, in], B [out, rank] * scale)}: what export_lora.py grafts."""
    out = {}
    for i, layer in enumerate(model.layers):
        for name in TARGETS:
            m = getattr(layer, name)
            out[f"layers.{i}.{name}"] = (m.a.detach().clone(), (m.b * m.scale).detach().clone())
    return out


def twins(rows):
    """(supported, unsupported) pairs of rows built from the same sentence and window for one kind."""
    groups = collections.defaultdict(lambda: ([], []))
    for r in rows:
        groups[(r["doc"], r["kind"], r["context"])][1 - r["label"]].append(r)
    out = []
    for pos, neg in groups.values():
        out += list(zip(pos, neg))
    return out


def training_twins(rng):
    seen, by_kind = set(), collections.defaultdict(list)
    for name in TRAIN_FILES:
        path = os.path.join(WORK, "data", name)
        if not os.path.exists(path):
            continue
        rows = [json.loads(l) for l in open(path, encoding="utf-8")]
        pairs = twins(rows)
        rng.shuffle(pairs)  # within a file; earlier files come first
        for pos, neg in pairs:
            key = (pos["context"], pos["claim"], neg["claim"])
            if key not in seen:
                seen.add(key)
                by_kind[pos["kind"]].append((pos, neg))
    chosen = []
    for kind in sorted(by_kind):
        chosen += by_kind[kind][:int(WEAK.get(kind, REPLAY))]
    rng.shuffle(chosen)
    return chosen, {k: min(len(v), int(WEAK.get(k, REPLAY))) for k, v in sorted(by_kind.items())}


def main():
    t0 = time.time()
    rng = random.Random(SEED)
    chosen, per_kind = training_twins(rng)
    print("twins per kind", per_kind, flush=True)
    tok = tokenizer()
    model = load_minilm(os.path.join(MINILM, "model.safetensors"))
    model.load_state_dict(torch.load(os.path.join(WORK, "ckpt", "recovered.pt")))
    model = with_adapters(model)
    params = [p for p in model.parameters() if p.requires_grad]
    print("adapter parameters", sum(p.numel() for p in params), flush=True)
    opt = torch.optim.AdamW(params, lr=LR, weight_decay=0.0)
    plan = [chosen[i:i + TWINS_PER_BATCH] for i in range(0, len(chosen), TWINS_PER_BATCH)]
    warm = max(1, int(0.06 * len(plan)))
    model.train()
    seen, run_loss, run_rank_acc, stopped, step = 0, 0.0, 0.5, False, 0
    for step, batch in enumerate(plan):
        prog = max(step / len(plan), (time.time() - t0) / BUDGET)
        for g in opt.param_groups:
            g["lr"] = LR * min((step + 1) / warm, max(0.0, 1 - prog))
        rows = [r for pair in batch for r in pair]  # pos, neg, pos, neg, ...
        encs = tok.encode_batch([(r["context"], r["claim"]) for r in rows])
        ids, mask, typ, y = collate(encs, [r["label"] for r in rows])
        logits = model(ids, mask, typ)
        margin = logits[:, 1] - logits[:, 0]
        diff = margin[0::2] - margin[1::2]
        loss = nn.functional.cross_entropy(logits, y) + RANK_WEIGHT * nn.functional.softplus(-diff).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        seen += len(rows)
        run_loss = 0.98 * run_loss + 0.02 * loss.item() if step else loss.item()
        run_rank_acc = 0.98 * run_rank_acc + 0.02 * (diff > 0).float().mean().item()
        if step % 20 == 0 or step == len(plan) - 1:
            el = time.time() - t0
            print(f"step {step + 1}/{len(plan)} pairs {seen} loss {run_loss:.4f} twin order acc {run_rank_acc:.3f} "
                  f"{seen / el:.1f} pairs/s elapsed {el / 60:.1f} min", flush=True)
        if (step + 1) % 100 == 0:
            torch.save(adapter_state(model), os.path.join(WORK, "ckpt", "lora.pt"))
        if time.time() - t0 > BUDGET:
            print(f"time budget reached after {step + 1} of {len(plan)} steps", flush=True)
            stopped = True
            break
    torch.save(adapter_state(model), os.path.join(WORK, "ckpt", "lora.pt"))
    info = {"method": f"LoRA rank {RANK}, alpha {ALPHA}, on {', '.join(TARGETS)} of every layer; base = the shipped "
                      "int8 model dequantized (frozen)", "twins_per_kind": per_kind, "twins_per_batch": TWINS_PER_BATCH,
            "rank_loss_weight": RANK_WEIGHT, "lr": LR, "steps_done": step + 1, "steps_planned": len(plan),
            "pairs_seen": seen, "seconds": round(time.time() - t0, 1), "stopped_by_budget": stopped,
            "train_files": [f for f in TRAIN_FILES if os.path.exists(os.path.join(WORK, "data", f))]}
    json.dump(info, open(os.path.join(WORK, "ckpt", "train_info_lora.json"), "w"), indent=1)
    print(info)


if __name__ == "__main__":
    main()
