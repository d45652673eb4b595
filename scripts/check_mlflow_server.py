"""Checks, with MLflow's own client, what a Sankshep job logged to an MLflow tracking server.

    python scripts/check_mlflow_server.py http://127.0.0.1:5000 --experiment Bangla-HateSpeech-Detection \
        --job baseline --user tester --folds 2 --artifact fold_summary_baseline.csv --artifact report.html

Finds the job's run (named by its tag) and checks: it is FINISHED, has params, its `mlflow.user` tag,
the final model's `macro_f1` and the baseline's `cv_mean_macro_f1`, and the named artifacts (downloaded through the server, non-empty); every other run of the experiment
whose `sankshep.tag` is the job's is nested under it (`mlflow.parentRunId`), is FINISHED and carries
the same user; there are `--folds` fold runs, each with a per-epoch `val_macro_f1` history of
`--epochs` values at steps 1…epochs, and one `stage-<label>` run per `--stage`. Prints a summary line
per run as JSON and exits non-zero on the first problem.
"""
import argparse
import json
import os
import sys
import tempfile

from mlflow.tracking import MlflowClient


def fail(message: str) -> int:
    print(f"problem: {message}")
    return 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tracking_uri")
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--job", required=True, help="the job's tag (its run's name)")
    parser.add_argument("--user", required=True)
    parser.add_argument("--folds", type=int, required=True)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--stage", action="append", default=[], help="a stage label with its own run (repeatable)")
    parser.add_argument("--artifact", action="append", default=[], help="an artifact of the job's run (repeatable)")
    args = parser.parse_args()

    client = MlflowClient(tracking_uri=args.tracking_uri)
    experiment = client.get_experiment_by_name(args.experiment)
    if experiment is None:
        return fail(f"no experiment {args.experiment!r}")
    runs = client.search_runs([experiment.experiment_id], filter_string=f"tags.`sankshep.tag` = '{args.job}'",
                              max_results=1000)
    jobs = [run for run in runs if run.info.run_name == args.job and "mlflow.parentRunId" not in run.data.tags]
    if len(jobs) != 1:
        return fail(f"expected one job run {args.job!r}, found {len(jobs)} among {[r.info.run_name for r in runs]}")
    job = jobs[0]
    children = [run for run in runs if run.info.run_id != job.info.run_id]

    for run in [job] + children:
        info, data = run.info, run.data
        print(json.dumps({"run": info.run_name, "status": info.status, "params": len(data.params),
                          "metrics": sorted(data.metrics), "user": data.tags.get("mlflow.user"),
                          "parent": data.tags.get("mlflow.parentRunId")}))
        if info.status != "FINISHED":
            return fail(f"run {info.run_name!r} is {info.status}")
        if data.tags.get("mlflow.user") != args.user or info.user_id != args.user:
            return fail(f"run {info.run_name!r} is by {data.tags.get('mlflow.user')!r} / {info.user_id!r}, not {args.user!r}")
        if not data.params:
            return fail(f"run {info.run_name!r} has no params")
        if run is not job and data.tags.get("mlflow.parentRunId") != job.info.run_id:
            return fail(f"run {info.run_name!r} is not nested under the job's run")

    if "macro_f1" not in job.data.metrics or "cv_mean_macro_f1" not in job.data.metrics:
        return fail(f"the job's run has metrics {sorted(job.data.metrics)}, not the final model's macro_f1 and cv_mean_macro_f1")

    folds = [run for run in children if run.info.run_name.startswith("baseline-fold-")]
    if len(folds) != args.folds:
        return fail(f"expected {args.folds} fold runs, found {len(folds)}")
    for run in folds:
        history = client.get_metric_history(run.info.run_id, "val_macro_f1")
        steps = sorted(metric.step for metric in history)
        if steps != list(range(1, args.epochs + 1)):
            return fail(f"{run.info.run_name}: val_macro_f1 steps {steps}, expected 1…{args.epochs}")
        if "best_macro_f1" not in run.data.metrics or "train_loss" not in run.data.metrics:
            return fail(f"{run.info.run_name}: metrics {sorted(run.data.metrics)}")
        if run.data.params.get("num_folds") != str(args.folds):
            return fail(f"{run.info.run_name}: param num_folds {run.data.params.get('num_folds')!r}")
    for label in args.stage:
        stage_runs = [run for run in children if run.info.run_name == f"stage-{label}"]
        if len(stage_runs) != 1 or "macro_f1" not in stage_runs[0].data.metrics:
            return fail(f"expected one stage-{label} run with macro_f1, found {len(stage_runs)}")

    listed = {item.path for item in client.list_artifacts(job.info.run_id)}
    with tempfile.TemporaryDirectory() as folder:
        for name in args.artifact:
            if name not in listed:
                return fail(f"artifact {name!r} missing from the job's run (has {sorted(listed)})")
            local = client.download_artifacts(job.info.run_id, name, folder)
            if os.path.getsize(local) == 0:
                return fail(f"artifact {name!r} is empty")
    print(f"ok: job {args.job!r} with {len(children)} nested runs, artifacts {sorted(listed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
