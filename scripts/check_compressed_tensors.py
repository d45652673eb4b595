#!/usr/bin/env python3
"""Checks that Hugging Face `transformers` (with the `compressed-tensors` package) loads a quantized
Sankshep model folder and computes what Sankshep computes.

    python scripts/check_compressed_tensors.py STAGE_DIR [--sankshep .build/release/sankshep] [--rows 200]

STAGE_DIR is a quantized stage folder (or a final folder) that `sankshep run` wrote: a
compressed-tensors checkpoint at its top level. It is loaded with AutoModelForSequenceClassification
on the CPU; its probabilities on the first ROWS comments of the data are compared with those of
`sankshep predict` on STAGE_DIR (the quantized model, run through its plugin). For reference the same
is done for the dequantized FP32 folder that `sankshep export --format transformers` writes (float
weights, float activations). Prints the largest probability and logit differences and exits 1 when
the compressed-tensors one is above --tolerance (probability).
"""
import argparse
import csv
import json
import math
import os
import subprocess
import sys
import tempfile

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer


def sankshep_probabilities(binary, model, texts):
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "input.csv")
        with open(path, "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["Comments"])
            writer.writerows([[t] for t in texts])
        out = subprocess.run([binary, "predict", "--model", model, "--input", path], check=True,
                             capture_output=True, text=True).stdout
    return [json.loads(line)["probability"] for line in out.splitlines()]


def transformers_logits(folder, texts, **kwargs):
    model, info = AutoModelForSequenceClassification.from_pretrained(folder, output_loading_info=True, **kwargs)
    # Symmetric schemes store no zero points; compressed-tensors creates them as zeros.
    missing = [k for k in info.get("missing_keys", []) if not k.endswith("_zero_point")]
    problems = {"missing_keys": missing, "unexpected_keys": info.get("unexpected_keys", []),
                "mismatched_keys": info.get("mismatched_keys", [])}
    problems = {kind: keys for kind, keys in problems.items() if keys}
    if problems:
        sys.exit(f"{folder}: transformers did not load every weight from the folder: {problems}")
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    logits = []
    with torch.no_grad():
        for start in range(0, len(texts), 32):
            batch = tokenizer(texts[start:start + 32], padding=True, truncation=True, max_length=128, return_tensors="pt")
            out = model(**batch).logits
            # The binary logit: l1 - l0 for a two-label head (sigmoid of it is softmax[1]).
            logits += (out[:, 1] - out[:, 0] if out.shape[1] == 2 else out[:, 0]).tolist()
    return model, logits


def describe(model):
    """Which modules compressed-tensors quantized, and how."""
    schemes = {}
    for name, module in model.named_modules():
        scheme = getattr(module, "quantization_scheme", None)
        if scheme is not None:
            weights, inputs = scheme.weights, scheme.input_activations
            key = (f"W{weights.num_bits} {weights.strategy}" + (f"/{weights.group_size}" if weights.group_size else "")
                   + (f", A{inputs.num_bits} {inputs.strategy} {'dynamic' if inputs.dynamic else 'static'}" if inputs else ", A16"))
            schemes.setdefault(key, []).append(name)
    return "; ".join(f"{key}: {len(names)} modules" for key, names in schemes.items()) or "no quantized modules"


def compare(name, ours, logits):
    probabilities = [1 / (1 + math.exp(-x)) for x in logits]
    worst_p = max(abs(a - b) for a, b in zip(ours, probabilities))
    # Sankshep prints probabilities (float32); its logits are recovered from them, so the logit
    # difference is only as precise as that (worst for probabilities near 0 or 1).
    our_logits = [math.log(p / (1 - p)) for p in ours if 0 < p < 1]
    worst_logit = max(abs(a - math.log(p / (1 - p))) for a, p in zip(logits, ours) if 0 < p < 1)
    print(f"{name}: max |probability difference| {worst_p:.2e}, max |logit difference| {worst_logit:.2e} "
          f"over {len(our_logits)} comments")
    return worst_p


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage")
    parser.add_argument("--sankshep", default=".build/release/sankshep")
    parser.add_argument("--data", default="data/HateSpeech.csv")
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--tolerance", type=float, default=1e-2)
    args = parser.parse_args()

    export = args.stage
    with open(os.path.join(export, "config.json"), encoding="utf-8") as f:
        quantization = json.load(f).get("quantization_config")
    if quantization is None:
        sys.exit(f"{args.stage}: no quantization_config (fp16, or a float model)")
    print(f"{export}: format {quantization['format']}, ignore {quantization['ignore']}")

    texts = [row["Comments"] for row, _ in zip(csv.DictReader(open(args.data, encoding="utf-8")), range(args.rows))]
    ours = sankshep_probabilities(args.sankshep, args.stage, texts)

    model, logits = transformers_logits(export, texts)
    print(f"transformers loaded it as: {describe(model)}")
    worst = compare("the folder in transformers (compressed-tensors) vs sankshep (quantized, through the plugin)", ours, logits)

    scratch = tempfile.TemporaryDirectory()
    dequantized = os.path.join(scratch.name, "transformers")
    subprocess.run([args.sankshep, "export", "--model", args.stage, "--format", "transformers", "--output", dequantized],
                   check=True, capture_output=True)
    if os.path.exists(os.path.join(dequantized, "config.json")):
        float_model, float_logits = transformers_logits(dequantized, texts)
        compare("dequantized FP32 export vs sankshep", ours, float_logits)
        # The weights compressed-tensors decompressed (after the first forward) against Sankshep's
        # dequantized ones: the same numbers up to float32 rounding of the INT4 group scales.
        reference = float_model.state_dict()
        difference, relative = 0.0, 0.0
        for name, tensor in model.state_dict().items():
            if name.endswith(".weight") and name in reference and tensor.dtype.is_floating_point:
                delta = (tensor.float() - reference[name]).abs().max().item()
                difference = max(difference, delta)
                relative = max(relative, delta / max(reference[name].abs().max().item(), 1e-30))
        print(f"decompressed weights vs the dequantized export: max |difference| {difference:.2e} (relative {relative:.2e})")
        # With its activation quantization switched off, the compressed-tensors model is the float one.
        for module in model.modules():
            module.quantization_enabled = False
        tokenizer = AutoTokenizer.from_pretrained(export)
        with torch.no_grad():
            off = []
            for start in range(0, len(texts), 32):
                batch = tokenizer(texts[start:start + 32], padding=True, truncation=True, max_length=128, return_tensors="pt")
                off += model(**batch).logits[:, 0].tolist()
        print(f"compressed-tensors with activation quantization off vs the dequantized export: "
              f"max |logit difference| {max(abs(a - b) for a, b in zip(off, float_logits)):.2e}")
    return 0 if worst <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
