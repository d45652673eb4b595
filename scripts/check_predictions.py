"""Checks that Hugging Face `transformers` loads a model folder Sankshep wrote and gives the same
probabilities as `sankshep predict` on the same comments.

    python scripts/check_predictions.py MODEL_DIR [--sankshep .build/release/sankshep] [--rows 200]
                                        [--transformers-dir DIR]

--transformers-dir: the folder transformers loads when it is not MODEL_DIR itself, e.g. the dense
folder `sankshep export --model MODEL_DIR --format transformers` writes (sankshep predicts on MODEL_DIR).

Exits non-zero when any probability differs by more than 1e-5.
"""
import argparse, csv, os, sys
import torch
from transformers import AutoTokenizer, AutoModelForSequenceClassification

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_compressed_tensors import sankshep_probabilities  # noqa: E402  (sankshep predict on a CSV of texts)

parser = argparse.ArgumentParser()
parser.add_argument("model")
parser.add_argument("--sankshep", default=".build/release/sankshep")
parser.add_argument("--data", default="data/HateSpeech.csv")
parser.add_argument("--rows", type=int, default=200)
parser.add_argument("--transformers-dir", help="folder for transformers to load (default: MODEL)")
args = parser.parse_args()

texts = [row["Comments"] for row, _ in zip(csv.DictReader(open(args.data, encoding="utf-8")), range(args.rows))]
ours = sankshep_probabilities(args.sankshep, args.model, texts)

hf_folder = args.transformers_dir or args.model
tokenizer = AutoTokenizer.from_pretrained(hf_folder)
model = AutoModelForSequenceClassification.from_pretrained(hf_folder).eval()
theirs = []
with torch.no_grad():
    for start in range(0, len(texts), 32):
        batch = tokenizer(texts[start:start + 32], padding=True, truncation=True, max_length=128, return_tensors="pt")
        logits = model(**batch).logits
        # A two-label head: softmax of index 1, the positive class (as Sankshep saves it).
        theirs += (torch.softmax(logits, dim=-1)[:, 1] if logits.shape[1] == 2 else torch.sigmoid(logits[:, 0])).tolist()
worst = max(abs(a - b) for a, b in zip(ours, theirs))
print(f"{len(texts)} comments, max |sankshep - transformers| probability difference: {worst:.2e}")
sys.exit(0 if worst <= 1e-5 else 1)
