#!/usr/bin/env python3
"""Checks a vocabulary-trimmed model folder against the folder it was trimmed from, in transformers.

    python scripts/check_trimmed_vocabulary.py ORIGINAL TRIMMED TEXTS.json

Both folders are loaded with AutoTokenizer and AutoModelForSequenceClassification. For every text
of TEXTS.json (a list of strings) whose original tokens all survive in the trimmed vocabulary, the
trimmed tokenizer must give the same tokens and the trimmed model the same logits (within 1e-5).
Prints one JSON object: {"texts", "compared", "unseen", "token_mismatches", "max_logit_difference",
"vocab_before", "vocab_after", "parameters_before", "parameters_after"}; exits 1 on any mismatch.
"""
import json, sys

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

TOLERANCE = 1e-5


def main() -> int:
    original_folder, trimmed_folder, texts_path = sys.argv[1:4]
    texts = json.load(open(texts_path, encoding="utf-8"))
    tokenizers = [AutoTokenizer.from_pretrained(f) for f in (original_folder, trimmed_folder)]
    models = [AutoModelForSequenceClassification.from_pretrained(f).eval() for f in (original_folder, trimmed_folder)]
    kept = set(tokenizers[1].convert_ids_to_tokens(list(range(models[1].config.vocab_size))))
    compared, unseen, token_mismatches, worst = 0, 0, 0, 0.0
    for text in texts:
        before = tokenizers[0](text, truncation=True, max_length=128)
        tokens_before = tokenizers[0].convert_ids_to_tokens(before["input_ids"])
        if any(token not in kept for token in tokens_before):
            unseen += 1
            continue
        after = tokenizers[1](text, truncation=True, max_length=128)
        if tokenizers[1].convert_ids_to_tokens(after["input_ids"]) != tokens_before:
            token_mismatches += 1
            continue
        with torch.no_grad():
            logits = [m(**{k: torch.tensor([v]) for k, v in enc.items()}).logits for m, enc in zip(models, (before, after))]
        worst = max(worst, (logits[0] - logits[1]).abs().max().item())
        compared += 1
    print(json.dumps({"texts": len(texts), "compared": compared, "unseen": unseen, "token_mismatches": token_mismatches,
                      "max_logit_difference": worst, "vocab_before": models[0].config.vocab_size,
                      "vocab_after": models[1].config.vocab_size,
                      "parameters_before": sum(p.numel() for p in models[0].parameters()),
                      "parameters_after": sum(p.numel() for p in models[1].parameters())}))
    return 0 if token_mismatches == 0 and worst <= TOLERANCE and compared > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
