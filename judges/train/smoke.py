"""Scores a candidate groundedness model on the sentences the end-to-end tests check
(tests/e2e_judge.rs, tests/e2e_evals.rs with tests/python/export_eval_traffic.py), with the
candidate's own threshold and the server's windowing, and exits non-zero when a verdict differs.

Why: a full evaluation takes ~18 min on 2 cores, and two adapter rounds that measured better there
still failed these tests (supported paraphrases scored under the threshold; judges/STATUS.md).
Run it first: `python smoke.py [model dir]` (default .work/lora_model). The strings mirror the
tests; when a test's text changes, change it here too."""
import json
import os
import sys

from common import WORK, windows
from export import ort_scores, session
from train import tokenizer

EIFFEL = ("The Eiffel Tower is a wrought-iron lattice tower in Paris, France. It was completed in 1889 "
          "for the World's Fair and is 330 metres tall.")
PARIS = "Paris is the capital of France and its largest city."
JOINED = EIFFEL + "\n\n" + PARIS  # the online evaluator joins retrieved documents with a blank line
API_CONTEXT = ("The Eiffel Tower was finished in 1889 for the World's Fair in Paris. It is made of wrought iron and "
               "was designed by the company of Gustave Eiffel.")
CHECKS = [  # (context, sentence, supported?)
    (JOINED, "The Eiffel Tower was completed in 1889.", True),
    (JOINED, "It is 330 metres tall.", True),
    (JOINED, "The Eiffel Tower was completed in 1920 in Rome.", False),
    (JOINED, "It is made of gold.", False),
    (API_CONTEXT, "The tower was completed in 1889.", True),
    (API_CONTEXT, "It is made of bronze.", False),
    (API_CONTEXT, "It was designed by Gustave Eiffel's company.", True),
    (API_CONTEXT, "The tower is in Berlin.", False),
]


def main():
    model_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(WORK, "lora_model")
    thr = json.load(open(os.path.join(model_dir, "plumb-judge.json")))["threshold"]
    sess, tok = session(os.path.join(model_dir, "model.onnx")), tokenizer()
    failed = 0
    for ctx, sentence, supported in CHECKS:
        # One input per run, as the server runs an int8 model (max_batch 1); a sentence is supported
        # if some window supports it.
        score = max(ort_scores(sess, tok, [(w, sentence) for w in windows(ctx)], bs=1))
        ok = (score >= thr) == supported
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {score:.4f} (threshold {thr}) {'supported' if supported else 'unsupported'}: {sentence}")
    print(f"{len(CHECKS) - failed} of {len(CHECKS)} verdicts as the tests expect")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
