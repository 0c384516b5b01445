"""Fine-tunes MiniLM-L6 as a (context window, claim) cross-encoder on .work/data/train.jsonl.

CPU-bound (2 shared cores), so: max 128 tokens, dynamic padding with length-bucketed batches,
frozen word-embedding matrix (11.7 M of 22.7 M params: Adam on it costs more than it helps),
one epoch with linear warmup/decay, time-boxed (TIME_BUDGET_S) with a checkpoint every
CKPT_EVERY steps so that a stop still leaves a usable model (.work/ckpt/last.pt)."""
import json
import os
import random
import sys
import time

import torch
from tokenizers import Tokenizer

from common import MAX_LENGTH, MINILM, SEED, WORK
from model import load_minilm

torch.set_num_threads(2)
torch.manual_seed(SEED)
random.seed(SEED)

BATCH = int(os.environ.get("BATCH", "32"))
LR = float(os.environ.get("LR", "6e-5"))
BUDGET = float(os.environ.get("TIME_BUDGET_S", "4200"))
CKPT_EVERY = int(os.environ.get("CKPT_EVERY", "100"))
LIMIT = int(os.environ.get("MAX_STEPS", "0"))
DATA = os.environ.get("TRAIN_FILE", "train.jsonl")  # phase 2 trains on a fresh synthetic set
INIT = os.environ.get("INIT_CKPT", "")  # phase 2 starts from phase 1's weights
TAG = os.environ.get("TAG", "")  # checkpoint/info suffix per phase


def tokenizer():
    tok = Tokenizer.from_file(os.path.join(MINILM, "tokenizer.json"))
    tok.enable_truncation(MAX_LENGTH, strategy="longest_first")  # what serving/src/model.rs sets
    tok.no_padding()
    return tok


def collate(encs, labels=None):
    n = max(len(e.ids) for e in encs)
    pad = lambda xs: torch.tensor([x + [0] * (n - len(x)) for x in xs], dtype=torch.long)
    out = (pad([e.ids for e in encs]), pad([e.attention_mask for e in encs]), pad([e.type_ids for e in encs]))
    return out if labels is None else out + (torch.tensor(labels),)


def batches(rows, encs, rng):
    """Sort by length inside chunks of 50 batches (little padding), then shuffle the batches."""
    idx = list(range(len(rows)))
    rng.shuffle(idx)
    out = []
    for c in range(0, len(idx), BATCH * 50):
        chunk = sorted(idx[c:c + BATCH * 50], key=lambda i: len(encs[i].ids))
        out += [chunk[i:i + BATCH] for i in range(0, len(chunk), BATCH)]
    rng.shuffle(out)
    return out


def fit(model, plan, loss_of, lr, budget, t0):
    """Trains `model` over `plan`, one step per item, as the relevance and two-head models are
    trained: word embeddings frozen, AdamW (weight decay 0.01), 6 % warmup then linear decay on
    max(step share, share of the time budget counted from t0), gradients clipped at 1.0; stops at
    the budget. `loss_of(item)` gives (loss, pairs in the item). Returns (pairs seen, steps done)."""
    model.word.weight.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    steps, warm = len(plan), max(1, int(0.06 * len(plan)))
    model.train()
    seen, done = 0, 0
    for step, item in enumerate(plan):
        prog = max(step / steps, (time.time() - t0) / budget)
        for g in opt.param_groups:
            g["lr"] = lr * min((step + 1) / warm, max(0.0, 1 - prog))
        loss, pairs = loss_of(item)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        seen, done = seen + pairs, step + 1
        if step % 20 == 0:
            print(f"step {step + 1}/{steps} loss {loss.item():.4f} {seen / (time.time() - t0):.1f} pairs/s", flush=True)
        if time.time() - t0 > budget:
            break
    model.eval()
    return seen, done


def main():
    t0 = time.time()
    rows = [json.loads(l) for l in open(os.path.join(WORK, "data", DATA), encoding="utf-8")]
    tok = tokenizer()
    encs = tok.encode_batch([(r["context"], r["claim"]) for r in rows])
    plan = batches(rows, encs, random.Random(SEED))
    steps = min(len(plan), LIMIT) if LIMIT else len(plan)
    model = load_minilm(os.path.join(MINILM, "model.safetensors"))
    if INIT:
        model.load_state_dict(torch.load(INIT))
    model.word.weight.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=LR, weight_decay=0.01)
    warm = max(1, int(0.06 * steps))
    # LR follows progress = max(step share, time-budget share): if the shared CPU is slower than
    # planned, the schedule still decays to 0 by the budget's end instead of stopping at a high LR.
    def lr_at(s):
        prog = max(s / steps, (time.time() - t0) / BUDGET)
        return min((s + 1) / warm, max(0.0, (1 - prog) / (1 - warm / steps)))
    os.makedirs(os.path.join(WORK, "ckpt"), exist_ok=True)
    model.train()
    log = open(os.path.join(WORK, "train.log"), "a")
    seen, run_loss, run_acc, stopped = 0, 0.0, 0.0, False
    for step, b in enumerate(plan[:steps]):
        ids, mask, typ, y = collate([encs[i] for i in b], [rows[i]["label"] for i in b])
        logits = model(ids, mask, typ)
        loss = torch.nn.functional.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        for g in opt.param_groups:
            g["lr"] = LR * lr_at(step)
        opt.step()
        seen += len(b)
        run_loss = 0.98 * run_loss + 0.02 * loss.item() if step else loss.item()
        run_acc = 0.98 * run_acc + 0.02 * (logits.argmax(-1) == y).float().mean().item() if step else 0.5
        el = time.time() - t0
        if step % 20 == 0 or step == steps - 1:
            msg = f"step {step + 1}/{steps} pairs {seen} loss {run_loss:.4f} acc {run_acc:.3f} {seen / el:.1f} pairs/s elapsed {el / 60:.1f} min"
            print(msg, flush=True)
            log.write(msg + "\n")
            log.flush()
        if (step + 1) % CKPT_EVERY == 0:
            torch.save(model.state_dict(), os.path.join(WORK, "ckpt", "last.pt"))
        if el > BUDGET:
            print(f"time budget reached after {step + 1} of {steps} steps", flush=True)
            stopped = True
            break
    torch.save(model.state_dict(), os.path.join(WORK, "ckpt", "last.pt"))
    info = {"steps_done": step + 1, "steps_planned": steps, "pairs_seen": seen, "train_pairs": len(rows),
            "batch": BATCH, "lr": LR, "seconds": round(time.time() - t0, 1), "stopped_by_budget": stopped,
            "max_length": MAX_LENGTH, "frozen": "word embeddings", "train_file": DATA, "init": INIT}
    json.dump(info, open(os.path.join(WORK, "ckpt", f"train_info{TAG}.json"), "w"), indent=1)
    print(info)


if __name__ == "__main__":
    sys.exit(main())
