#!/usr/bin/env python3
"""Checks that Hugging Face `transformers` loads a model folder Sankshep wrote and computes the same
logits as the PyTorch reference.

    python scripts/check_transformers_load.py DIR REFERENCE.safetensors

DIR is loaded with AutoModelForSequenceClassification (every weight must come from the folder: a
missing or unexpected key fails the check); REFERENCE.safetensors is a fixture's reference file with
`input_ids`, `attention_mask`, optionally `token_type_ids`, and the expected `logits`. Prints the
largest absolute logit difference and exits 1 above 1e-5.

A head-pruned folder (`pruned_heads` in config.json, written by `structure=heads` and by the
StructuredHeadsTests export with its own reference.safetensors) needs transformers 4.x: version 5
no longer applies `pruned_heads` and reports a size mismatch.
"""
import sys

import torch
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification

TOLERANCE = 1e-5


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    folder, reference_path = sys.argv[1], sys.argv[2]
    model, info = AutoModelForSequenceClassification.from_pretrained(folder, output_loading_info=True)
    problems = {kind: keys for kind, keys in info.items() if keys and kind in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    if problems:
        print(f"{folder}: transformers did not load every weight from the folder: {problems}")
        return 1
    model.eval()

    reference = load_file(reference_path)
    inputs = {"input_ids": reference["input_ids"], "attention_mask": reference["attention_mask"]}
    if "token_type_ids" in reference and model.config.model_type != "distilbert":
        inputs["token_type_ids"] = reference["token_type_ids"]
    with torch.no_grad():
        logits = model(**inputs).logits
    difference = (logits - reference["logits"]).abs().max().item()
    verdict = "ok" if difference <= TOLERANCE else "FAILED"
    print(f"{folder}: {type(model).__name__}, max |logit difference| = {difference:.3e} ({verdict}, tolerance {TOLERANCE:g})")
    return 0 if difference <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
