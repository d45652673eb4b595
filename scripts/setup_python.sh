#!/usr/bin/env bash
# Creates the Python virtualenv used only to check Sankshep against its peers: the parity and
# loading checks of the test suite (transformers, compressed-tensors), the MLflow tracking-server
# tests (mlflow), fixture scripts and the peer benchmarks (PyTorch, ONNX Runtime; FastAPI + uvicorn for
# the serving peer). Nothing in the
# Sankshep product imports Python.
#
#   scripts/setup_python.sh [VENV_DIR]        default: .venv in the repository (or $SANKSHEP_VENV)
#
# PyTorch: a CPU-only wheel already on the machine (pip's find-links folder, e.g. /opt/wheels) is
# preferred, since PyPI's default wheel pulls in gigabytes of CUDA libraries this CPU tool never uses.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-${SANKSHEP_VENV:-.venv}}"
python="${PYTHON:-python3}"
packages=(transformers compressed-tensors mlflow onnxruntime onnx safetensors numpy sentencepiece fastapi uvicorn)
imports="import torch, transformers, compressed_tensors, mlflow, onnxruntime, onnx, safetensors, numpy, sentencepiece, fastapi, uvicorn"

if [ ! -x "$venv/bin/python" ]; then
    echo "creating virtualenv $venv"
    "$python" -m venv "$venv" || {
        echo "error: '$python -m venv' failed; on Debian install python3-venv (apt-get install python3-venv)" >&2
        exit 1
    }
fi

# Install only when something is missing, so running the script again is quick.
if "$venv/bin/python" -c "$imports" 2>/dev/null; then
    echo "python: all packages already present in $venv"
else
    torch_wheel=""
    for folder in $("$venv/bin/python" -m pip config get global.find-links 2>/dev/null) /opt/wheels; do
        candidate=$(ls "$folder"/torch-*+cpu-*.whl 2>/dev/null | sort -V | tail -n 1 || true)
        if [ -n "$candidate" ]; then torch_wheel="$candidate"; break; fi
    done
    "$venv/bin/python" -m pip install -q ${torch_wheel:-torch}
    "$venv/bin/python" -m pip install -q "${packages[@]}"
fi

"$venv/bin/python" - <<'PY'
import mlflow, torch, transformers
print(f"python: torch {torch.__version__}, transformers {transformers.__version__}, mlflow {mlflow.__version__}")
PY
