"""Writes parity fixtures for the Rust server's tests (model level: the pair goes straight to the
tokenizer and the model, no sentence splitting or windowing).

models/groundedness/parity.json: 16 (context, claim) pairs; models/context-relevance/parity.json:
(query, document) pairs. Each case holds the ids the Python `tokenizers` library produces
(truncation 128 longest_first, no padding, as in training) and the ONNX Runtime score,
softmax(logits)[1] with the input run alone, and how far the Rust server's score may be from it."""
import json
import os

from common import MODELS
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


# Dynamically quantized (int8) models quantize each input's activations from its float min/max,
# and float kernels differ between CPUs (AVX2, AVX-512), so a rounding can land one step apart:
# the same file scored the groundedness fixture up to 7.0e-4 apart on an AVX-512 VNNI machine
# and an AVX2-only one (both with session.x64quantprecision). Weight-only 4-bit models compute in
# float and stay within 1e-4. A bug in tokens, masks or outputs moves scores by far more.
INT8_TOLERANCE = 2e-3
FLOAT_TOLERANCE = 1e-4


def cross_encoder_fixture(name, pairs, keys, tolerance):
    """Scores `pairs` with models/<name>'s shipped model, one at a time, and writes its parity.json."""
    d = os.path.join(MODELS, name)
    m = json.load(open(os.path.join(d, "plumb-judge.json")))
    tok = tokenizer()
    scores = ort_scores(session(os.path.join(d, m["model"])), tok, pairs, bs=1, output=m["output"]["name"])
    cases = [{keys[0]: a, keys[1]: b, **enc_dict(tok.encode(a, b)), "score": float(p)}
             for (a, b), p in zip(pairs, scores)]
    json.dump({"model": f"{m['model']} (output {m['output']['name']})", "max_length": 128, "truncation": "longest_first",
               "score": "softmax(output)[1] from ONNX Runtime 1.31.1 CPU, batch of 1", "tolerance": tolerance,
               "cases": cases}, open(os.path.join(d, "parity.json"), "w"), indent=1, ensure_ascii=False)
    print(name, "parity:", [round(c["score"], 4) for c in cases], [len(c["input_ids"]) for c in cases])


def grounded():
    cross_encoder_fixture("groundedness", PAIRS, ("context", "claim"), INT8_TOLERANCE)


def relevance():
    qs = ["Who founded the Oberoi Group?", "When did Marie Curie win the Nobel Prize in Chemistry?", "a",
          "What is the rate limit of the API?"]
    docs = ["The Oberoi Group is a hotel company with its head office in Delhi, founded by Mohan Singh Oberoi.",
            CTX, "", "The API returns HTTP 429 when the rate limit of 100 requests/minute is exceeded.",
            "Café Müller serves crêpes — naïve façade, 東京 branch opened in 2019.", LONG_CTX]
    cross_encoder_fixture("context-relevance", [(q, d) for q in qs for d in docs], ("query", "document"),
                          FLOAT_TOLERANCE)


if __name__ == "__main__":
    import sys
    if "relevance" in sys.argv[1:] or not sys.argv[1:]:
        relevance()
    if "groundedness" in sys.argv[1:] or not sys.argv[1:]:
        grounded()
