#!/usr/bin/env python3
"""Loads Sankshep model folders in Hugging Face `transformers` at their top level and compares
their probabilities with Sankshep's.

    python scripts/check_final_folders.py MANIFEST.json

MANIFEST.json: {"texts": [...], "max_length": 128,
                "folders": [{"path": DIR, "sankshep": [probability per text], "tolerance": 1e-5}, ...]}

Each folder is loaded with AutoModelForSequenceClassification.from_pretrained(DIR) and
AutoTokenizer.from_pretrained(DIR) (a quantized folder through the `compressed-tensors` package, as
transformers loads any compressed-tensors checkpoint). A folder fails when transformers reports a
missing, unexpected or mismatched key (compressed-tensors' zero points of symmetric schemes, which it
creates itself, aside) or when a probability differs from Sankshep's by more than its tolerance.
Prints one JSON line per folder (with the class transformers loaded); exits 1 when any folder failed.
"""
import json
import sys

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer


def check(folder, texts, max_length):
    model, info = AutoModelForSequenceClassification.from_pretrained(folder, output_loading_info=True)
    missing = [k for k in info.get("missing_keys", []) if not k.endswith("_zero_point")]
    problems = {"missing_keys": sorted(missing), "unexpected_keys": sorted(info.get("unexpected_keys", [])),
                "mismatched_keys": [str(k) for k in info.get("mismatched_keys", [])]}
    problems = {kind: keys for kind, keys in problems.items() if keys}
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    probabilities = []
    with torch.no_grad():
        for start in range(0, len(texts), 32):
            batch = tokenizer(texts[start:start + 32], padding=True, truncation=True, max_length=max_length,
                              return_tensors="pt")
            logits = model(**batch).logits.float()
            if logits.shape[1] == 1:
                probabilities += torch.sigmoid(logits[:, 0]).tolist()
            else:
                probabilities += torch.softmax(logits, dim=1)[:, 1].tolist()
    quantized = sorted({type(getattr(m, "quantization_scheme", None)).__name__ for m in model.modules()
                        if getattr(m, "quantization_scheme", None) is not None})
    return problems, probabilities, bool(quantized), type(model).__name__


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        manifest = json.load(f)
    texts, max_length = manifest["texts"], manifest.get("max_length", 128)
    failed = False
    for entry in manifest["folders"]:
        result = {"path": entry["path"]}
        try:
            problems, probabilities, quantized, model_class = check(entry["path"], texts, max_length)
            worst = max(abs(a - b) for a, b in zip(probabilities, entry["sankshep"]))
            result.update({"problems": problems, "max_difference": worst, "quantized_modules": quantized,
                           "model_class": model_class,
                           "transformers": probabilities})
            ok = not problems and worst <= entry["tolerance"] and len(probabilities) == len(entry["sankshep"])
        except Exception as error:  # one line per folder, whatever transformers raised
            result["error"] = f"{type(error).__name__}: {error}".splitlines()[0]
            ok = False
        result["ok"] = ok
        failed = failed or not ok
        print(json.dumps(result))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
