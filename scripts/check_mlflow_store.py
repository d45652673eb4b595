"""Checks that a Sankshep `mlruns/` folder reads in a real MLflow.

    python3 -m venv /work/venv-mlflow && /work/venv-mlflow/bin/pip install mlflow
    /work/venv-mlflow/bin/python scripts/check_mlflow_store.py outputs/mlruns --experiment sankshep-baseline

Opens the folder as MLflow's file store, runs `mlflow.search_runs(experiment_names=[...])`, and checks
that every run has a name, a valid status, at least one param and one metric, and that each metric's
full history reads. Prints one line per run and exits non-zero on the first problem.

To try it on the store the Swift tests write:
    SANKSHEP_MLRUNS_OUT=/tmp/mlruns-check swift test --filter MLflowStoreTests
    /work/venv-mlflow/bin/python scripts/check_mlflow_store.py /tmp/mlruns-check/layout --experiment layout
"""
import argparse
import os
import sys

# MLflow 3.x keeps the file store in "maintenance mode" and refuses it unless asked; the folder layout
# is unchanged. `mlflow ui --backend-store-uri ./outputs/mlruns` needs the same variable.
os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")

import mlflow  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mlruns", help="the mlruns folder")
    parser.add_argument("--experiment", action="append", required=True, help="experiment name (repeatable)")
    parser.add_argument("--min-runs", type=int, default=1)
    args = parser.parse_args()

    uri = "file://" + os.path.abspath(args.mlruns)
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri)

    runs = mlflow.search_runs(experiment_names=args.experiment, output_format="list")
    if len(runs) < args.min_runs:
        print(f"{args.mlruns}: expected at least {args.min_runs} runs in {args.experiment}, found {len(runs)}")
        return 1
    for run in runs:
        info, data = run.info, run.data
        problems = []
        if not info.run_name:
            problems.append("no run name")
        if info.status not in {"RUNNING", "FINISHED", "FAILED", "KILLED", "SCHEDULED"}:
            problems.append(f"status {info.status!r}")
        if not data.params:
            problems.append("no params")
        if not data.metrics:
            problems.append("no metrics")
        if data.tags.get("mlflow.runName") != info.run_name:
            problems.append("mlflow.runName tag differs from run_name")
        for key in data.metrics:
            history = client.get_metric_history(info.run_id, key)
            if not history:
                problems.append(f"metric {key!r} has no history")
        summary = (f"{info.run_id} {info.run_name!r} {info.status}: {len(data.params)} params, "
                   f"{len(data.metrics)} metrics {sorted(data.metrics.items())}")
        print(summary)
        if problems:
            print(f"  problems: {'; '.join(problems)}")
            return 1
    # The pandas form, which users call, must read too.
    frame = mlflow.search_runs(experiment_names=args.experiment)
    print(f"ok: {len(runs)} runs; search_runs columns include "
          f"{sorted(c for c in frame.columns if c.startswith(('params.', 'metrics.')))[:6]} ...")
    return 0


if __name__ == "__main__":
    sys.exit(main())
