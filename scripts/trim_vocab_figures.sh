#!/usr/bin/env bash
# Vocabulary-trimming figures for the README: the distilbert-base-multilingual-cased and
# xlm-roberta-base shapes (random weights, made by transformers from a config: no download) trimmed
# by `sankshep trim-vocab` to the tokens the bundled comments use, then checked in transformers
# (scripts/check_trimmed_vocabulary.py: same tokens and logits within 1e-5 on 300 comments).
#
# The real vocabularies (mBERT's 119,547-entry WordPiece, XLM-R's 250,002-piece SentencePiece) are
# not available here, so the tokenizers are stand-ins trained on the bundled comments: the bundled
# 8,000-entry WordPiece (data/tokenizer) and a SentencePiece Unigram of up to 32,000 pieces (nmt_nfkc,
# XLM-R's layout, converted by transformers). The model keeps the real number of embedding rows; the
# stand-in's ids are its first rows. With a real vocabulary the kept count differs; parameters and
# bytes after trimming are the same arithmetic: (rows kept) × hidden + everything else.
#
#     scripts/trim_vocab_figures.sh [sankshep binary]      (default .build/release/sankshep)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${SANKSHEP_PYTHON:-.venv/bin/python}
BIN=${1:-.build/release/sankshep}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$PY" - "$work" <<'EOF'
import csv, json, os, shutil, sys
import sentencepiece as spm
import torch
from transformers import (AutoTokenizer, DistilBertConfig, DistilBertForSequenceClassification, XLMRobertaConfig,
                          XLMRobertaForSequenceClassification, XLMRobertaTokenizerFast)
work = sys.argv[1]
torch.manual_seed(0)
comments = [r["Comments"] for r in csv.DictReader(open("data/HateSpeech.csv", encoding="utf-8", newline=""))]
json.dump(comments[-300:], open(os.path.join(work, "texts.json"), "w"), ensure_ascii=False)

# distilbert-base-multilingual-cased's shape with the bundled WordPiece.
folder = os.path.join(work, "distilbert-multilingual")
model = DistilBertForSequenceClassification(DistilBertConfig(vocab_size=119547, dim=768, n_layers=6, n_heads=12,
                                                             hidden_dim=3072, num_labels=1))
model.save_pretrained(folder)
for name in ("vocab.txt", "tokenizer_config.json"):
    shutil.copy(os.path.join("data", "tokenizer", name), folder)

# xlm-roberta-base's shape with a SentencePiece Unigram trained on the comments.
text = os.path.join(work, "comments.txt")
open(text, "w", encoding="utf-8").write("\n".join(c.replace("\n", " ") for c in comments) + "\n")
spm.SentencePieceTrainer.train(input=text, model_prefix=os.path.join(work, "spm"), model_type="unigram", vocab_size=32000,
                               hard_vocab_limit=False, unk_id=0, bos_id=1, eos_id=2, pad_id=-1, minloglevel=2, num_threads=2)
source = os.path.join(work, "spm-folder")
os.makedirs(source)
shutil.copy(os.path.join(work, "spm.model"), os.path.join(source, "sentencepiece.bpe.model"))
folder = os.path.join(work, "xlm-roberta-base")
XLMRobertaTokenizerFast.from_pretrained(source).save_pretrained(folder)
model = XLMRobertaForSequenceClassification(XLMRobertaConfig(vocab_size=250002, hidden_size=768, num_hidden_layers=12,
                                                             num_attention_heads=12, intermediate_size=3072,
                                                             max_position_embeddings=514, type_vocab_size=1, num_labels=1))
model.save_pretrained(folder)
os.remove(os.path.join(folder, "sentencepiece.bpe.model")) if os.path.exists(os.path.join(folder, "sentencepiece.bpe.model")) else None
print("stand-in Unigram pieces:", len(json.load(open(os.path.join(folder, "tokenizer.json")))["model"]["vocab"]))
EOF

for shape in distilbert-multilingual xlm-roberta-base; do
    echo "== $shape"
    "$BIN" trim-vocab --model "$work/$shape" --data_path data/HateSpeech.csv --output "$work/$shape-trimmed"
    du -b "$work/$shape/model.safetensors" "$work/$shape-trimmed/model.safetensors"
    "$PY" scripts/check_trimmed_vocabulary.py "$work/$shape" "$work/$shape-trimmed" "$work/texts.json"
done
