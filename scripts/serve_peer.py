#!/usr/bin/env python3
"""The peer service for scripts/bench_serve.sh: FastAPI + uvicorn + ONNX Runtime.

Serves the same model folder as `sankshep serve` — exported to ONNX with torch.onnx and quantized
to dynamic INT8 with onnxruntime.quantization — on the same route and JSON:
POST /v1/classify {"texts": [...]} -> {"results": [{"probability": p, "label": 0|1}]}, and GET /health.

    venv/bin/python scripts/serve_peer.py --model outputs/final_quantized_pruned_student --port 8181

A quantized Sankshep folder is read through its `transformers/` export (the dequantized float weights),
which ONNX Runtime then quantizes itself. Python and these libraries are only for measuring.
"""
import argparse
import json
import logging
import os
import tempfile
import warnings

THREADS = 2


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a Sankshep or Hugging Face model folder")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8181)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--threads", type=int, default=THREADS, help="ONNX Runtime intra-op threads")
    parser.add_argument("--workdir", help="where the ONNX files go (default: a temporary folder)")
    return parser.parse_args()


def float_folder(model):
    export = os.path.join(model, "transformers")
    return export if os.path.isfile(os.path.join(export, "config.json")) else model


def threshold_of(model):
    try:
        with open(os.path.join(model, "sankshep.json")) as file:
            return float(json.load(file)["threshold"])
    except (OSError, KeyError, ValueError):
        return 0.5


def export_int8(folder, workdir):
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModelForSequenceClassification
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    path = os.path.join(workdir, "model.onnx")
    ids = torch.tensor([[2, 10, 11, 3], [2, 12, 3, 0]])
    mask = (ids != 0).long()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (ids, mask), path, input_names=["input_ids", "attention_mask"],
                          output_names=["logits"], opset_version=17, dynamo=False,
                          dynamic_axes={"input_ids": {0: "batch", 1: "sequence"},
                                        "attention_mask": {0: "batch", 1: "sequence"}, "logits": {0: "batch"}})
    quantized = os.path.join(workdir, "model.int8.onnx")
    logging.getLogger().setLevel(logging.ERROR)
    quantize_dynamic(path, quantized, weight_type=QuantType.QInt8)
    return quantized


def make_app(arguments):
    import numpy
    import onnxruntime as ort
    from fastapi import FastAPI, HTTPException
    from pydantic import BaseModel
    from transformers import AutoTokenizer

    folder = float_folder(arguments.model)
    workdir = arguments.workdir or tempfile.mkdtemp(prefix="serve-peer-")
    options = ort.SessionOptions()
    options.intra_op_num_threads = arguments.threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(export_int8(folder, workdir), options, providers=["CPUExecutionProvider"])
    tokenizer = AutoTokenizer.from_pretrained(folder)
    threshold = threshold_of(arguments.model)
    app = FastAPI()

    class ClassifyRequest(BaseModel):
        texts: list[str]

    @app.get("/health")
    def health():
        return {"status": "ok"}

    @app.post("/v1/classify")
    def classify(request: ClassifyRequest):  # a plain def: FastAPI runs it on its thread pool
        if not request.texts:
            raise HTTPException(status_code=400, detail="texts is an empty list")
        encoded = tokenizer(request.texts, padding=True, truncation=True, max_length=arguments.max_length,
                            return_tensors="np")
        logits = session.run(["logits"], {"input_ids": encoded["input_ids"].astype(numpy.int64),
                                          "attention_mask": encoded["attention_mask"].astype(numpy.int64)})[0]
        probabilities = 1 / (1 + numpy.exp(-logits[:, 0].astype(numpy.float64)))
        return {"results": [{"probability": float(p), "label": int(p > threshold)} for p in probabilities]}

    return app


def main():
    arguments = parse_arguments()
    import uvicorn
    uvicorn.run(make_app(arguments), host=arguments.host, port=arguments.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
