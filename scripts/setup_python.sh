#!/usr/bin/env bash
# Creates the Python virtualenv used only by the peer benchmark (scripts/bench_peers.py) and the
# fixture and parity scripts: PyTorch, transformers, ONNX Runtime and ONNX from PyPI. Nothing in the
# Sankshep product imports Python; this is for measuring and checking it against its peers.
#
#   scripts/setup_python.sh [VENV_DIR]        default: .venv in the repository (or $SANKSHEP_VENV)
#
# TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu selects PyTorch's CPU-only wheels (smaller
# download, same CPU kernels); by default everything comes from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-${SANKSHEP_VENV:-.venv}}"
python="${PYTHON:-python3}"
packages=(torch transformers onnxruntime onnx safetensors numpy)

if [ ! -x "$venv/bin/python" ]; then
    echo "creating virtualenv $venv"
    "$python" -m venv "$venv" || {
        echo "error: '$python -m venv' failed; on Debian install python3-venv (apt-get install python3-venv)" >&2
        exit 1
    }
fi

# Install only when something is missing, so running the script again is quick.
if "$venv/bin/python" -c "import torch, transformers, onnxruntime, onnx, safetensors, numpy" 2>/dev/null; then
    echo "all packages already present in $venv"
else
    "$venv/bin/python" -m pip install --upgrade pip
    if [ -n "${TORCH_INDEX_URL:-}" ]; then
        "$venv/bin/python" -m pip install --index-url "$TORCH_INDEX_URL" torch
    fi
    "$venv/bin/python" -m pip install "${packages[@]}"
fi

"$venv/bin/python" - <<'PY'
import onnx, onnxruntime, torch, transformers
print(f"torch {torch.__version__}, transformers {transformers.__version__}, "
      f"onnxruntime {onnxruntime.__version__}, onnx {onnx.__version__}")
PY
echo "run the peer benchmark with: $venv/bin/python scripts/bench_peers.py"
