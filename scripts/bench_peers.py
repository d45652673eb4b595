#!/usr/bin/env python3
"""Sankshep against its peers, on the same shapes, the same CPU, in the same run.

For each case (mode, shape, batch × sequence length) this measures
  - PyTorch: a training step (forward + BCE-with-logits + backward + AdamW) or FP32 inference,
  - ONNX Runtime FP32 inference (the model exported once to a temporary directory),
  - with --quant: PyTorch `quantize_dynamic` INT8 and ONNX Runtime dynamic INT8 inference,
  - `sankshep bench --mode ... --shape ... --batch B --seq T` (one JSON object with `median_ms`),
and prints a table and a JSON summary with the ratios sankshep / peer (below 1: Sankshep is faster).
Every figure is the median of --iterations timed runs after --warmup untimed ones; models are
random-initialised (seeded), inputs are full-length random token ids.

    scripts/setup_python.sh                      # once: a virtualenv with torch, transformers, onnxruntime
    swift build -c release                       # the sankshep binary at .build/release/sankshep
    .venv/bin/python scripts/bench_peers.py [--quant] [--bert-base-train] [--json summary.json]

Python and these libraries are only for measuring; the Sankshep product never imports them.
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

THREADS = 2


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sankshep", default=".build/release/sankshep",
                        help="the sankshep binary (default: .build/release/sankshep)")
    parser.add_argument("--iterations", type=int, default=10, help="timed runs per measurement (median)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs before timing")
    parser.add_argument("--slow-iterations", type=int, default=3,
                        help="timed runs for cases whose first run takes over 2 s (bert-base training)")
    parser.add_argument("--quant", action="store_true",
                        help="also PyTorch quantize_dynamic INT8 and ONNX Runtime dynamic INT8 inference")
    parser.add_argument("--sankshep-quant", default="dynamic,int4", metavar="METHODS",
                        help="with --quant: sankshep's quantizers to time (comma-separated); the first is compared "
                             "with the peers' INT8, the others with the first (default: dynamic,int4)")
    parser.add_argument("--bert-base-train", action="store_true",
                        help="add the bert-base training step at 32×32 (slow: ~12 s a step in PyTorch)")
    parser.add_argument("--case", action="append", default=[], metavar="MODE:SHAPE:BATCH:SEQ",
                        help="measure this case instead of the defaults (repeatable), e.g. infer:small:8:64")
    parser.add_argument("--no-sankshep", action="store_true", help="measure the peers only")
    parser.add_argument("--json", metavar="FILE", help="also write the JSON summary to FILE")
    arguments = parser.parse_args()
    if arguments.iterations < 1 or arguments.warmup < 0 or arguments.slow_iterations < 1:
        parser.error("--iterations and --slow-iterations must be at least 1, --warmup at least 0")
    return arguments


# ---------------------------------------------------------------- shapes (as `sankshep bench --shape`)

SHAPES = {
    # The embedded default's teacher size: BERT 4 × 256, 4 heads, FFN 1024, vocab 8000.
    "small": dict(kind="bert", vocab_size=8000, hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                  intermediate_size=1024, max_position_embeddings=128),
    # sagorsarker/bangla-bert-base.
    "bert-base": dict(kind="bert", vocab_size=102025, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                      intermediate_size=3072, max_position_embeddings=512),
    # distilbert-base-multilingual-cased.
    "distilbert-multilingual": dict(kind="distilbert", vocab_size=119547, dim=768, n_layers=6, n_heads=12,
                                    hidden_dim=3072, max_position_embeddings=512),
    # xlm-roberta-base (XLMRobertaForSequenceClassification: pad 1, 514 position rows, the RoBERTa head).
    "xlm-roberta-base": dict(kind="xlm-roberta", vocab_size=250002, hidden_size=768, num_hidden_layers=12,
                             num_attention_heads=12, intermediate_size=3072, max_position_embeddings=514,
                             type_vocab_size=1, layer_norm_eps=1e-5, pad_token_id=1),
    # neuropark/sahajBERT (AlbertForSequenceClassification: one layer run 24 times, embeddings 128 wide).
    "sahajbert": dict(kind="albert", vocab_size=32000, embedding_size=128, hidden_size=1024, num_hidden_layers=24,
                      num_attention_heads=16, intermediate_size=4096, max_position_embeddings=512, hidden_act="gelu_new",
                      hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0),
}


def parse_cases(arguments):
    if arguments.case:
        cases = []
        for text in arguments.case:
            parts = text.split(":")
            if len(parts) != 4 or parts[0] not in ("train", "infer") or parts[1] not in SHAPES \
                    or not parts[2].isdigit() or not parts[3].isdigit() or int(parts[2]) < 1 or int(parts[3]) < 1:
                sys.exit(f"error: --case {text!r}: expected MODE:SHAPE:BATCH:SEQ with MODE train|infer, "
                         f"SHAPE one of {', '.join(SHAPES)}, BATCH and SEQ positive integers")
            cases.append((parts[0], parts[1], int(parts[2]), int(parts[3])))
        return cases
    cases = [("train", "small", 32, 32)]
    if arguments.bert_base_train:
        cases.append(("train", "bert-base", 32, 32))
    cases += [("infer", "distilbert-multilingual", 1, 32), ("infer", "distilbert-multilingual", 32, 32)]
    return cases


def make_model(shape_name):
    import torch
    from transformers import (AlbertConfig, AlbertForSequenceClassification, BertConfig, BertForSequenceClassification,
                              DistilBertConfig, DistilBertForSequenceClassification, XLMRobertaConfig,
                              XLMRobertaForSequenceClassification)
    shape = dict(SHAPES[shape_name])
    kind = shape.pop("kind")
    torch.manual_seed(0)
    if kind == "bert":
        return BertForSequenceClassification(BertConfig(num_labels=1, **shape))
    if kind == "xlm-roberta":
        return XLMRobertaForSequenceClassification(XLMRobertaConfig(num_labels=1, **shape))
    if kind == "albert":
        return AlbertForSequenceClassification(AlbertConfig(num_labels=1, **shape))
    return DistilBertForSequenceClassification(DistilBertConfig(num_labels=1, **shape))


def make_inputs(shape_name, batch, seq):
    import torch
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(5, SHAPES[shape_name]["vocab_size"], (batch, seq), generator=generator)
    ids[:, 0] = 2  # a [CLS]-like first token, as every real batch has
    mask = torch.ones_like(ids)
    labels = torch.randint(0, 2, (batch,), generator=generator).float()
    return ids, mask, labels


# ---------------------------------------------------------------- timing

def median_ms(run, arguments):
    """(median, fastest) wall time of `run()` in milliseconds; slow cases (first run > 2 s) get fewer runs."""
    start = time.perf_counter()
    run()
    first = time.perf_counter() - start
    slow = first > 2.0
    warmup = min(arguments.warmup, 1) if slow else arguments.warmup
    iterations = min(arguments.iterations, arguments.slow_iterations) if slow else arguments.iterations
    for _ in range(max(warmup - 1, 0)):
        run()
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), min(times)


# ---------------------------------------------------------------- PyTorch

def pytorch_train(shape_name, batch, seq, arguments):
    import torch
    model = make_model(shape_name).train()          # dropout on, as in training
    ids, mask, labels = make_inputs(shape_name, batch, seq)
    loss_function = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor([8081 / 8326]))
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5, weight_decay=0.01, eps=1e-8)

    def step():
        optimizer.zero_grad(set_to_none=True)
        logits = model(input_ids=ids, attention_mask=mask).logits
        loss = loss_function(logits.view(-1), labels)
        loss.backward()
        optimizer.step()
    return median_ms(step, arguments)


def pytorch_infer(model, ids, mask, arguments):
    import torch

    def forward():
        with torch.inference_mode():
            model(input_ids=ids, attention_mask=mask)
    return median_ms(forward, arguments)


# ---------------------------------------------------------------- ONNX Runtime

def export_onnx(model, shape_name, directory):
    """Exports the FP32 model once (dynamic batch and sequence axes); returns the file."""
    import torch
    path = os.path.join(directory, f"{shape_name}.onnx")
    if os.path.exists(path):
        return path
    ids, mask, _ = make_inputs(shape_name, 2, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # The TorchScript exporter (dynamo=False) needs no extra package and handles BERT's
        # data-dependent mask code; axes 0/1 stay dynamic so one file serves every case.
        torch.onnx.export(model, (ids, mask), path, input_names=["input_ids", "attention_mask"],
                          output_names=["logits"], opset_version=17, dynamo=False,
                          dynamic_axes={"input_ids": {0: "batch", 1: "sequence"},
                                        "attention_mask": {0: "batch", 1: "sequence"}, "logits": {0: "batch"}})
    return path


def quantize_onnx(path):
    from onnxruntime.quantization import QuantType, quantize_dynamic
    quantized = path.replace(".onnx", ".int8.onnx")
    if not os.path.exists(quantized):
        import logging
        logging.getLogger().setLevel(logging.ERROR)  # the "consider pre-processing" notice
        quantize_dynamic(path, quantized, weight_type=QuantType.QInt8)
    return quantized


def onnxruntime_session(path):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = THREADS
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def onnxruntime_infer(session, ids, mask, arguments):
    feeds = {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}
    return median_ms(lambda: session.run(["logits"], feeds), arguments)


# ---------------------------------------------------------------- sankshep

class Sankshep:
    """Runs `sankshep bench` when the binary and its bench command exist; otherwise says why not."""

    def __init__(self, path, disabled):
        self.path = path
        self.status = None
        self.flags = set()
        if disabled:
            self.status = "not measured (--no-sankshep)"
            return
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            self.status = f"not measured: no executable at {path} (build it with `swift build -c release`)"
            return
        try:
            helped = subprocess.run([path, "bench", "--help"], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as error:
            self.status = f"not measured: `{path} bench --help` failed ({error})"
            return
        text = helped.stdout + helped.stderr
        if helped.returncode != 0 or "--mode" not in text:
            self.status = f"not measured: {path} has no `bench` command yet"
            return
        # Pass the optional flags only where this build of the command offers them.
        self.flags = {flag for flag in ("--threads", "--iterations", "--warmup", "--quant") if flag in text}

    def measure(self, mode, shape, batch, seq, arguments, quant=None):
        """Returns (median_ms, the JSON object) or (None, reason)."""
        if self.status:
            return None, self.status
        if quant and "--quant" not in self.flags:
            return None, "this sankshep bench has no --quant option"
        command = [self.path, "bench", "--mode", mode, "--shape", shape, "--batch", str(batch), "--seq", str(seq)]
        if "--threads" in self.flags:
            command += ["--threads", str(THREADS)]
        if "--iterations" in self.flags:
            command += ["--iterations", str(arguments.iterations)]
        if "--warmup" in self.flags:
            command += ["--warmup", str(arguments.warmup)]
        if quant:
            command += ["--quant", quant]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=3600)
        except (OSError, subprocess.TimeoutExpired) as error:
            return None, f"`{' '.join(command)}` failed: {error}"
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["(no message)"])[-1]
            return None, f"`{' '.join(command)}` exited with {result.returncode}: {last}"
        for line in reversed(result.stdout.strip().splitlines()):
            try:
                report = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(report, dict) and isinstance(report.get("median_ms"), (int, float)):
                return float(report["median_ms"]), report
        return None, f"`{' '.join(command)}` printed no JSON object with median_ms"


# ---------------------------------------------------------------- main

def machine_description():
    import onnxruntime
    import torch
    import transformers
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu, "logical_cpus": os.cpu_count(), "threads": THREADS, "python": platform.python_version(),
            # Other work on the machine slows every figure (two OpenMP threads on a busy 2-core machine
            # can take several times longer than one): the load average says how quiet the run was.
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
            "torch": torch.__version__, "transformers": transformers.__version__,
            "onnxruntime": onnxruntime.__version__}


def main():
    arguments = parse_arguments()
    cases = parse_cases(arguments)
    try:
        import torch
    except ImportError:
        sys.exit("error: PyTorch is not installed in this Python; run scripts/setup_python.sh and use its python")
    torch.set_num_threads(THREADS)
    torch.set_num_interop_threads(1)
    warnings.filterwarnings("ignore")
    from transformers.utils import logging as transformers_logging
    transformers_logging.set_verbosity_error()

    sankshep = Sankshep(arguments.sankshep, arguments.no_sankshep)
    summary = {"machine": machine_description(), "iterations": arguments.iterations, "warmup": arguments.warmup,
               "sankshep": sankshep.status or f"measured with {arguments.sankshep}", "cases": []}
    print(f"# {summary['machine']['cpu']}, {THREADS} threads; torch {summary['machine']['torch']}, "
          f"onnxruntime {summary['machine']['onnxruntime']}; load average {summary['machine']['load_average_at_start']}",
          flush=True)

    models = {}
    exported = {}
    workdir = tempfile.mkdtemp(prefix="sankshep-bench-")
    try:
        for mode, shape, batch, seq in cases:
            label = f"{mode} {shape} {batch}x{seq}"
            print(f"# measuring {label} ...", flush=True)
            peers = {}   # peer name -> median ms
            fastest = {}  # peer name -> fastest run, ms (a hint of the noise on a shared machine)
            notes = {}
            sankshep_ms = {}  # peer name -> the sankshep figure it is compared with
            own = {}          # another sankshep quantizer -> its time against the first one's
            if mode == "train":
                peers["pytorch"], fastest["pytorch"] = pytorch_train(shape, batch, seq, arguments)
                ms, report = sankshep.measure(mode, shape, batch, seq, arguments)
                sankshep_ms["pytorch"] = ms
                notes["sankshep"] = report
            else:
                if shape not in models:
                    models[shape] = make_model(shape).eval()
                model = models[shape]
                ids, mask, _ = make_inputs(shape, batch, seq)
                peers["pytorch"], fastest["pytorch"] = pytorch_infer(model, ids, mask, arguments)
                if shape not in exported:
                    exported[shape] = export_onnx(model, shape, workdir)
                session = onnxruntime_session(exported[shape])
                with torch.inference_mode():
                    expected = model(input_ids=ids, attention_mask=mask).logits.numpy()
                got = session.run(["logits"], {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
                notes["onnx_max_abs_diff"] = float(abs(expected - got).max())
                peers["onnxruntime"], fastest["onnxruntime"] = onnxruntime_infer(session, ids, mask, arguments)
                ms, report = sankshep.measure(mode, shape, batch, seq, arguments)
                sankshep_ms["pytorch"] = sankshep_ms["onnxruntime"] = ms
                notes["sankshep"] = report
                if arguments.quant:
                    quantized_model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
                    with torch.inference_mode():
                        got = quantized_model(input_ids=ids, attention_mask=mask).logits.numpy()
                    notes["pytorch_int8_max_abs_diff"] = float(abs(expected - got).max())
                    peers["pytorch-int8"], fastest["pytorch-int8"] = pytorch_infer(quantized_model, ids, mask, arguments)
                    del quantized_model
                    quantized_session = onnxruntime_session(quantize_onnx(exported[shape]))
                    got = quantized_session.run(["logits"], {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
                    notes["onnxruntime_int8_max_abs_diff"] = float(abs(expected - got).max())
                    peers["onnxruntime-int8"], fastest["onnxruntime-int8"] = onnxruntime_infer(quantized_session, ids, mask, arguments)
                    del quantized_session
                    methods = [m for m in arguments.sankshep_quant.split(",") if m]
                    ms8, report8 = sankshep.measure(mode, shape, batch, seq, arguments, quant=methods[0])
                    sankshep_ms["pytorch-int8"] = sankshep_ms["onnxruntime-int8"] = ms8
                    notes["sankshep_int8"] = report8
                    for method in methods[1:]:
                        ms_other, report_other = sankshep.measure(mode, shape, batch, seq, arguments, quant=method)
                        own[method] = {"ms": ms_other, "vs": methods[0], "vs_ms": ms8,
                                       "ratio": round(ms_other / ms8, 3) if ms_other and ms8 else None}
                        notes[f"sankshep_{method}"] = report_other
            ratios = {peer: (round(sankshep_ms[peer] / peers[peer], 3) if sankshep_ms.get(peer) else None)
                      for peer in peers}
            summary["cases"].append({
                "mode": mode, "shape": shape, "batch": batch, "seq": seq,
                "peers_ms": {peer: round(ms, 2) for peer, ms in peers.items()},
                "peers_fastest_ms": {peer: round(ms, 2) for peer, ms in fastest.items()},
                "sankshep_ms": {peer: (round(ms, 2) if ms else None) for peer, ms in sankshep_ms.items()},
                "ratio_sankshep_over_peer": ratios,
                "sankshep_methods": {method: {k: (round(v, 3) if isinstance(v, float) else v) for k, v in entry.items()}
                                     for method, entry in own.items()},
                # Differences of the exported/quantized logits from PyTorch FP32, and sankshep's own JSON
                # report (or the reason it was not measured).
                "notes": {key: value for key, value in notes.items() if value is not None},
            })
            for peer, ms in peers.items():
                print(f"#   {peer:17s} median {ms:10.1f} ms, fastest {fastest[peer]:10.1f} ms", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    summary["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print_table(summary)
    print(json.dumps(summary, indent=1))
    if arguments.json:
        with open(arguments.json, "w") as f:
            json.dump(summary, f, indent=1)
            f.write("\n")


def print_table(summary):
    print()
    header = f"{'case':38s} {'peer':17s} {'peer ms':>10s} {'sankshep ms':>12s} {'ratio':>7s}"
    print(header)
    print("-" * len(header))
    for case in summary["cases"]:
        label = f"{case['mode']} {case['shape']} {case['batch']}x{case['seq']}"
        for peer, ms in case["peers_ms"].items():
            ours = case["sankshep_ms"].get(peer)
            ratio = case["ratio_sankshep_over_peer"].get(peer)
            print(f"{label:38s} {peer:17s} {ms:10.1f} {(f'{ours:.1f}' if ours else '—'):>12s} "
                  f"{(f'{ratio:.2f}' if ratio else '—'):>7s}")
            label = ""
        for method, entry in case.get("sankshep_methods", {}).items():
            if entry["ms"] and entry["vs_ms"]:
                print(f"{'':38s} {'sankshep ' + entry['vs']:17s} {entry['vs_ms']:10.1f} {entry['ms']:12.1f} "
                      f"{entry['ratio']:7.2f}   (sankshep {method} / sankshep {entry['vs']})")
    print()
    if not summary["sankshep"].startswith("measured"):
        print(f"sankshep: {summary['sankshep']}")
    else:
        for case in summary["cases"]:
            for key in ("sankshep", "sankshep_int8"):
                if isinstance(case["notes"].get(key), str):  # a reason it was not measured
                    print(f"sankshep ({case['mode']} {case['shape']} {case['batch']}x{case['seq']}): {case['notes'][key]}")
    print("ratio = sankshep / peer (below 1: Sankshep is faster); load average at start "
          f"{summary['machine']['load_average_at_start']}, at end {summary['machine']['load_average_at_end']}")
    print()


if __name__ == "__main__":
    main()
