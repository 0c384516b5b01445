"""Builds synthetic (context window, claim) pairs from the documents inside HaluEval (FactCC/MiniCheck style).

Why not HaluEval's own right/hallucinated answers: they carry shortcuts (length alone reaches AUC
0.68-0.76) that a cross-encoder learns instead of grounding. Here every unsupported claim is a minimal
edit of a sentence that IS in the window, and every kind of edit comes with a supported twin built
from the same sentence, the same window and the same light rewrite, so length, topic, the word "not",
numbers or capitalised names say nothing about the label: only comparing with the window does.

Output: .work/data/{train,dev,test}.jsonl with {"context","claim","label","kind","doc"}; label 1 = supported.
Split is by document (common.split_of), so dev/test documents are never trained on."""
import collections
import json
import os
import random
import re
import sys

from common import SEED, WINDOW_WORDS, WORK, fix_glued, halueval_items, sentences, split_of, windows

KINDS = ["entity", "number", "date", "negation_add", "negation_remove", "role_swap", "antonym",
         "other_doc", "outside_window", "extrinsic_add"]
PAIRS_PER_KIND = {"train": int(os.environ.get("TRAIN_PAIRS_PER_KIND", "2000")), "dev": 100, "test": 300}
# Share of train windows that also hold one sentence of another document, before or after the window's
# own text (both twins alike). The server joins all retrieved documents into one context, so its windows
# cross document boundaries; without such windows an adapter learned to doubt a supported claim when an
# unrelated sentence followed it. 0 keeps every set as data.py always built it (dev and test never get any).
DISTRACTOR_RATE = float(os.environ.get("DISTRACTOR_RATE", "0"))
# Share of train claims (both twins alike) paraphrased against their window by paraphrase(): supported
# claims that are not near-copies, so that a ranking loss over twins cannot reward literal matching.
# 0 keeps every set as before (no extra random draws).
PARAPHRASE_RATE = float(os.environ.get("PARAPHRASE_RATE", "0"))

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
NUMWORDS = ["two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
            "twenty", "thirty", "forty", "fifty", "hundred", "thousand", "million", "billion"]
DIGITWORD = {"2": "two", "3": "three", "4": "four", "5": "five", "6": "six", "7": "seven", "8": "eight", "9": "nine", "10": "ten"}
STOPCAPS = set("The A An In On At He She It They We I You This That These Those His Her Its Their Our My But And Or "
               "If When While After Before As For From By To With Of Mr Mrs Ms Dr However Also There Here "
               "What Who Why How Where Which Yes No Not So Then Now One Some Many Most All Both Each Since "
               "During Although Though Because Until Under Over Into According".split()) | set(MONTHS) | set(DAYS)
AUX = ["is", "was", "are", "were", "has", "have", "had", "will", "can", "could", "would", "should", "may",
       "might", "must", "does", "did", "do"]
ANTONYMS = [("increase", "decrease"), ("increased", "decreased"), ("before", "after"), ("won", "lost"),
            ("win", "lose"), ("first", "last"), ("larger", "smaller"), ("largest", "smallest"), ("more", "less"),
            ("higher", "lower"), ("highest", "lowest"), ("older", "younger"), ("oldest", "youngest"),
            ("north", "south"), ("northern", "southern"), ("east", "west"), ("eastern", "western"),
            ("male", "female"), ("early", "late"), ("earlier", "later"), ("rise", "fall"), ("rose", "fell"),
            ("above", "below"), ("maximum", "minimum"), ("open", "closed"), ("best", "worst"), ("true", "false"),
            ("positive", "negative"), ("big", "small"), ("large", "small"), ("long", "short"), ("longer", "shorter"),
            ("high", "low"), ("major", "minor"), ("success", "failure"), ("successful", "unsuccessful"),
            ("accepted", "rejected"), ("allowed", "banned"), ("supported", "opposed"), ("support", "oppose"),
            ("arrested", "released"), ("guilty", "innocent"), ("alive", "dead"), ("died", "survived"),
            ("old", "new"), ("private", "public"), ("inside", "outside"), ("entered", "left"), ("joined", "left"),
            ("began", "ended"), ("started", "finished"), ("born", "died"), ("same", "different"), ("full", "empty"),
            ("rich", "poor"), ("strong", "weak"), ("legal", "illegal"), ("international", "domestic"),
            ("American", "British"), ("English", "French"), ("always", "rarely"), ("many", "few"),
            ("most", "least"), ("top", "bottom"), ("upper", "lower"), ("fast", "slow"), ("heavy", "light"),
            ("hot", "cold"), ("cheap", "expensive"), ("easy", "difficult"), ("happy", "sad"), ("love", "hate"),
            ("agreed", "refused"), ("wins", "losses"), ("victory", "defeat"), ("gained", "lost"), ("buy", "sell"),
            ("bought", "sold"), ("import", "export"), ("first", "second"), ("son", "daughter"), ("father", "mother"),
            ("husband", "wife"), ("brother", "sister"), ("king", "queen"), ("men", "women"), ("man", "woman")]
ANT = {}
for a, b in ANTONYMS:
    ANT.setdefault(a, b)
    ANT.setdefault(b, a)
SYNONYMS = {"said": "stated", "says": "states", "began": "started", "started": "began", "movie": "film",
            "film": "movie", "about": "approximately", "approximately": "about", "large": "big", "big": "large",
            "also": "additionally", "received": "got", "made": "created", "known": "recognized", "famous": "well-known",
            "located": "situated", "located in": "in", "children": "kids", "people": "persons", "help": "assist",
            "died": "passed away", "near": "close to", "because": "since", "but": "however", "show": "program",
            "company": "firm", "town": "municipality", "city": "municipality", "police": "authorities",
            "officials": "authorities", "told": "informed", "reported": "stated", "starring": "featuring",
            "starred in": "appeared in", "written by": "authored by", "directed by": "helmed by", "wrote": "penned",
            "is a": "is an example of a", "was a": "was an example of a"}

ENT_RE = re.compile(r"\b[A-Z][\w'’\.\-&]*(?:\s+(?:of|de|the|van|von|da|del|and)?\s*[A-Z][\w'’\.\-&]*)*")
YEAR_RE = re.compile(r"\b(1[0-9]{3}|20[0-9]{2})\b")
NUM_RE = re.compile(r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)(?![\w])")


def entities(s):
    out = []
    for m in ENT_RE.finditer(s):
        t = m.group(0).rstrip(".'’-")
        if t.split()[0] in STOPCAPS:
            t = " ".join(t.split()[1:])
        if len(t) < 3 or t in STOPCAPS or YEAR_RE.fullmatch(t):
            continue
        out.append(t)
    return list(dict.fromkeys(out))


def wsub(s, old, new, count=1):
    """Whole-word replace of the first `count` occurrences."""
    return re.sub(r"(?<![\w])" + re.escape(old) + r"(?![\w])", lambda _: new, s, count=count)


# ---------- label-preserving light rewrites (applied alike to supported and unsupported claims) ----------
def rewrite(s, rng):
    ops = []
    if re.search(r"\s\([^)]*\)", s):
        ops.append(lambda x: re.sub(r"\s\([^)]*\)", "", x, count=1))
    for k, v in SYNONYMS.items():
        if re.search(r"(?<![\w])" + re.escape(k) + r"(?![\w])", s):
            ops.append(lambda x, k=k, v=v: wsub(x, k, v))
    if re.search(r"\d{1,3},\d{3}", s):
        ops.append(lambda x: re.sub(r"(\d{1,3}),(\d{3})", r"\1\2", x, count=1))
    for d, w in DIGITWORD.items():
        if re.search(r"(?<![\w.,:])" + d + r"(?![\w.,:])", s):
            ops.append(lambda x, d=d, w=w: re.sub(r"(?<![\w.,:])" + d + r"(?![\w.,:])", w, x, count=1))
        if wsub(s, w, "#") != s:
            ops.append(lambda x, d=d, w=w: wsub(x, w, d))
    m = re.match(r"^(However|But|And|Also|In addition|Meanwhile|Still|Yet|Now|So),\s+(\w)", s)
    if m:
        ops.append(lambda x: re.sub(r"^\w+(?: \w+)?,\s+(\w)", lambda mm: mm.group(1).upper(), x, count=1))
    cut = re.search(r",\s+(?:which|who|while|whereas|although|but|as|after|before)\s", s)
    if cut and len(s[:cut.start()].split()) >= 6:
        ops.append(lambda x: x[:cut.start()] + "." if x.startswith(s[:cut.start()]) else x)
    m = re.search(r"\b(said|says|told \w+|according to [\w ]+)\.$", s)
    if not ops:
        return s
    return rng.choice(ops)(s)


MORE_SYNONYMS = {"finished": "completed", "completed": "finished", "built": "constructed", "constructed": "built",
                 "founded": "established", "established": "founded", "bought": "purchased", "purchased": "bought",
                 "metres": "meters", "meters": "metres", "began": "commenced", "award": "prize", "prize": "award",
                 "died": "perished", "largest": "biggest", "biggest": "largest", "shows": "programs",
                 "author": "writer", "writer": "author", "singer": "vocalist", "musician": "artist"}
PRONOUNS = ("It", "He", "She", "They")


def paraphrase(s, win, rng):
    """A label-preserving paraphrase of s against its window, or s: a leading pronoun replaced by the
    name that starts the window's sentence before it, a name like "The Eiffel Tower" shortened to
    "the tower", or a synonym the window does not use."""
    ops = []
    first = s.split(" ", 1)[0]
    i = win.find(s)
    if first in PRONOUNS and i > 0:
        prev = sentences(win[:i])
        ents = entities(prev[-1]) if prev else []
        if ents:
            name = next((p for p in ("The " + ents[0], ents[0]) if prev[-1].startswith(p)), None)
            if name:
                ops.append(lambda x, name=name: name + x[len(first):] if x.startswith(first + " ") else x)
    for e in entities(s):
        words = e.split()
        m = re.search(r"(?<![\w])([Tt]he) " + re.escape(e) + r"(?![\w])", s)
        if m and len(words) >= 2 and words[-1].isalpha() and len(words[-1]) > 3:
            ops.append(lambda x, e=e, w=words[-1]: re.sub(r"(?<![\w])([Tt]he) " + re.escape(e) + r"(?![\w])",
                                                          lambda mm: mm.group(1) + " " + w.lower(), x, count=1))
            break
    for k, v in MORE_SYNONYMS.items():
        if wsub(s, k, "#") != s and wsub(win, v, "#") == win:
            ops.append(lambda x, k=k, v=v: wsub(x, k, v))
    return rng.choice(ops)(s) if ops else s


# ---------- perturbations: each returns an unsupported edit of s, or None when not applicable ----------
def p_entity(s, ctx, pool, rng):
    ents = entities(s)
    if not ents:
        return None
    e = rng.choice(ents)
    cands = [x for x in entities(ctx) if x not in s and e not in x and x not in e]
    if not cands or rng.random() < 0.3:
        cands = [x for x in pool if x not in ctx and e not in x]
    if not cands:
        return None
    return wsub(s, e, rng.choice(cands))


def _other_number(n, ctxnums, rng):
    alt = [x for x in ctxnums if x != n]
    if alt and rng.random() < 0.5:
        return rng.choice(alt)
    v = float(n.replace(",", ""))
    while True:
        w = v * rng.choice([0.5, 2, 3, 1.5, 0.75, 10, 0.1]) if v > 12 else v + rng.choice([-3, -2, -1, 1, 2, 3, 5])
        if w > 0 and w != v:
            break
    if "." in n:
        return f"{w:.{len(n.split('.')[1])}f}"
    w = int(round(w))
    return f"{w:,}" if "," in n else str(w)


def p_number(s, ctx, pool, rng):
    nums = [m.group(0) for m in NUM_RE.finditer(s) if not YEAR_RE.fullmatch(m.group(0))]
    words = [w for w in NUMWORDS if wsub(s, w, "#") != s]
    if nums:
        n = rng.choice(nums)
        ctxnums = [m.group(0) for m in NUM_RE.finditer(ctx) if not YEAR_RE.fullmatch(m.group(0))]
        return re.sub(r"(?<![\w.,])" + re.escape(n) + r"(?![\w])", _other_number(n, ctxnums, rng), s, count=1)
    if words:
        w = rng.choice(words)
        return wsub(s, w, rng.choice([x for x in NUMWORDS[:15] if x != w]))
    return None


def p_date(s, ctx, pool, rng):
    opts = []
    for m in YEAR_RE.finditer(s):
        opts.append(("y", m.group(0)))
    opts += [("m", x) for x in MONTHS if wsub(s, x, "#") != s]
    opts += [("d", x) for x in DAYS if wsub(s, x, "#") != s]
    if not opts:
        return None
    t, v = rng.choice(opts)
    if t == "y":
        new = str(int(v) + rng.choice([-12, -7, -4, -3, -2, -1, 1, 2, 3, 4, 6, 10]))
    else:
        new = rng.choice([x for x in (MONTHS if t == "m" else DAYS) if x != v])
    return wsub(s, v, new)


NEG_RE = re.compile(r"\b(not|never|n't|no longer)\b|n't", re.I)


def p_negation_add(s, ctx, pool, rng):
    if NEG_RE.search(s):
        return None
    for a in AUX:
        m = re.search(r"(?<![\w])" + a + r"(?![\w])", s)
        if m:
            word = "never" if rng.random() < 0.15 and a not in ("is", "are", "do", "does") else "not"
            return s[:m.end()] + " " + word + s[m.end():]
    return None


def p_negation_remove(s, ctx, pool, rng):
    rules = [(r"\bcan't\b", "can"), (r"\bwon't\b", "will"), (r"\bcannot\b", "can"), (r"(\w+)n't\b", r"\1"),
             (r"\b(is|was|are|were|has|have|had|will|can|could|would|should|may|might|must|does|did|do) not\b", r"\1"),
             (r"\bno longer\b", "still"), (r"\bnever\b ", ""), (r"\bnot\b ", "")]
    for pat, rep in rules:
        if re.search(pat, s):
            return re.sub(pat, rep, s, count=1)
    return None


LIST_GLUE = {"and", "or", "nor", "the", "a", "an", "of", "such", "as", "including", "with", "plus", "both", "jr", "sr"}


def _listed_together(between):
    """True when the text between two names is only list glue ("A, B and C", "Dessau, Germany"): swapping
    list members or a place and its region keeps the claim true, so it cannot be an unsupported example."""
    return all(w in LIST_GLUE or w[:1].isupper() or w[:1].isdigit() for w in re.findall(r"[\w'’-]+", between))


def p_role_swap(s, ctx, pool, rng):
    ents = [e for e in entities(s) if s.count(e) == 1]
    ents = [e for i, e in enumerate(ents) if not any(e in f for f in ents if f != e)]
    if len(ents) < 2:
        nums = [m.group(0) for m in NUM_RE.finditer(s)]
        if len(nums) >= 2 and nums[0] != nums[1]:
            a, b = nums[0], nums[1]
        else:
            return None
    else:
        a, b = ents[0], ents[-1]
    i, j = s.find(a), s.find(b)
    if i < 0 or j < 0 or i == j:
        return None
    if i > j:
        a, b, i, j = b, a, j, i
    if i + len(a) > j or _listed_together(s[i + len(a):j]):
        return None
    return s[:i] + b + s[i + len(a):j] + a + s[j + len(b):]


def p_antonym(s, ctx, pool, rng):
    hits = [w for w in ANT if re.search(r"(?<![\w-])" + re.escape(w) + r"(?![\w-])", s)]
    if not hits:
        return None
    w = rng.choice(hits)
    return re.sub(r"(?<![\w-])" + re.escape(w) + r"(?![\w-])", ANT[w], s, count=1)


PERTURB = {"entity": p_entity, "number": p_number, "date": p_date, "negation_add": p_negation_add,
           "negation_remove": p_negation_remove, "role_swap": p_role_swap, "antonym": p_antonym}


def toks(s):
    return set(re.findall(r"\w+", s.lower()))


def similar_sentence(s, others, rng):
    """A sentence from other documents with high word overlap and length within 30 % of s."""
    ts, n, best, bs = toks(s), len(s.split()), None, -1.0
    for o in others:
        m = len(o.split())
        if abs(m - n) > 0.3 * n or o == s:
            continue
        sc = len(ts & toks(o)) / (len(ts | toks(o)) or 1) + rng.random() * 0.01
        if sc > bs:
            best, bs = o, sc
    return best


def join(a, b):
    """Two sentences as one claim: 'A, and b'."""
    a = a.rstrip(" .!?")
    return a + ", and " + (b[0].lower() + b[1:] if b[:2].isalpha() and not b[:2].isupper() and b.split()[0] not in
                            entities(b) else b)


def build(split, docs, rng):
    """Round-robin over kinds so that every kind gets the same number of (supported, unsupported) twins."""
    need = {k: PAIRS_PER_KIND[split] for k in KINDS}
    out = []
    pool_ents = []
    for d in docs[:3000]:
        pool_ents += entities(d["text"])[:5]
    all_sents = [(i, s) for i, d in enumerate(docs) for s in d["sents"]]
    order = list(range(len(docs)))
    per_doc = 2 if split == "train" else 3
    for rounds in range(6):
        rng.shuffle(order)
        for di in order:
            if all(v <= 0 for v in need.values()):
                return out
            d = docs[di]
            wins = windows(d["text"])
            made = 0
            cand = [s for s in d["sents"] if 5 <= len(s.split()) <= 30]
            rng.shuffle(cand)
            for s in cand:
                if made >= per_doc:
                    break
                full = [w for w in wins if s in w]
                if not full:
                    continue
                win = rng.choice(full)
                if split == "train" and DISTRACTOR_RATE > 0 and rng.random() < DISTRACTOR_RATE:
                    other = [x for _, x in (all_sents[rng.randrange(len(all_sents))] for _ in range(20))
                             if x not in d["text"] and 5 <= len(x.split()) <= 25]
                    if other:
                        win = f"{other[0]} {win}" if rng.random() < 0.5 else f"{win} {other[0]}"
                kinds = sorted((k for k in KINDS if need[k] > 0), key=lambda k: -need[k] + rng.random())
                for k in kinds:
                    base = rewrite(s, rng) if rng.random() < 0.5 else s
                    if split == "train" and PARAPHRASE_RATE > 0 and rng.random() < PARAPHRASE_RATE:
                        base = paraphrase(base, win, rng)
                    pos, neg = base, None
                    if k in PERTURB:
                        neg = PERTURB[k](base, win, pool_ents, rng)
                    elif k == "other_doc":
                        others = [x for _, x in (all_sents[rng.randrange(len(all_sents))] for _ in range(300))
                                  if x not in d["sents"]]
                        neg = similar_sentence(base, others, rng)
                    elif k == "outside_window":
                        outside = [x for x in d["sents"] if x not in win and 5 <= len(x.split()) <= 30]
                        if outside:
                            neg = min(outside, key=lambda x: abs(len(x) - len(base)) + rng.random())
                    elif k == "extrinsic_add":
                        nxt = [x for x in d["sents"] if x != s and x in win and 4 <= len(x.split()) <= 18]
                        if nxt and len(base.split()) <= 22:
                            b2 = rng.choice(nxt)
                            others = [x for _, x in (all_sents[rng.randrange(len(all_sents))] for _ in range(200))
                                      if x not in d["text"]]
                            x = similar_sentence(b2, others, rng)
                            if x:
                                pos, neg = join(base, b2), join(base, x)
                    if not neg or neg == pos or neg in win or len(neg.split()) < 4:
                        continue
                    for text, label in ((pos, 1), (neg, 0)):
                        out.append({"context": win, "claim": text, "label": label, "kind": k, "doc": d["id"]})
                    need[k] -= 1
                    made += 1
                    break
    print(f"[{split}] unmet quotas: {need}", file=sys.stderr)
    return out


def main():
    rng = random.Random(SEED)
    docs = {"train": [], "dev": [], "test": []}
    seen = set()
    for task in ("qa", "dialogue", "summarization"):
        for it in halueval_items(task):
            t = it["context"]
            if t in seen or len(t.split()) < 12:
                continue
            seen.add(t)
            docs[it["split"]].append({"id": f"{task}:{len(seen)}", "text": t, "sents": sentences(t)})
    os.makedirs(os.path.join(WORK, "data"), exist_ok=True)
    # TRAIN_SEED=n: only a fresh train set (train_n.jsonl, other windows/sentences/edits of the same train
    # documents) for a second training phase; dev/test stay as built with SEED.
    extra = os.environ.get("TRAIN_SEED")
    for split in ("dev", "test", "train"):
        if extra and split != "train":
            continue
        if extra:
            rng = random.Random(int(extra))
        rows = build(split, docs[split], rng)
        rng.shuffle(rows)
        name = f"train_{extra}" if extra else split
        with open(os.path.join(WORK, "data", f"{name}.jsonl"), "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        c = collections.Counter((r["kind"], r["label"]) for r in rows)
        print(split, len(docs[split]), "docs", len(rows), "pairs", dict(sorted(c.items())), file=sys.stderr)


if __name__ == "__main__":
    main()
