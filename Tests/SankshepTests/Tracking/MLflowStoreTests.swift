import Foundation
import Testing
import Yams
@testable import Host

@Suite("MLflow file store")
struct MLflowStoreTests {
    /// A fresh `mlruns` folder. With SANKSHEP_MLRUNS_OUT set, the store is written there and kept, so
    /// `scripts/check_mlflow_store.py` can read it with a real MLflow.
    private func freshRoot(_ name: String) throws -> URL {
        if let out = ProcessInfo.processInfo.environment["SANKSHEP_MLRUNS_OUT"] {
            return URL(fileURLWithPath: out).appendingPathComponent(name)
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sankshep-mlruns-\(UUID().uuidString)")
        return dir.appendingPathComponent("mlruns")
    }

    private func read(_ url: URL) throws -> String { try String(contentsOf: url, encoding: .utf8) }

    private func yaml(_ url: URL) throws -> [String: Any] {
        try #require(try Yams.load(yaml: read(url)) as? [String: Any])
    }

    @Test("a new store has MLflow's Default experiment 0 and a .trash folder")
    func defaultExperiment() throws {
        let root = try freshRoot("default")
        let store = try MLflowStore(root: root)
        let meta = try yaml(store.root.appendingPathComponent("0/meta.yaml"))
        #expect(meta["name"] as? String == "Default")
        #expect(meta["experiment_id"] as? String == "0")
        #expect(meta["lifecycle_stage"] as? String == "active")
        #expect(meta["artifact_location"] as? String == "file://" + store.root.path + "/0")
        #expect(meta["creation_time"] is Int)
        #expect(FileManager.default.fileExists(atPath: store.root.appendingPathComponent(".trash").path))
    }

    @Test("an experiment is created once and found again by name")
    func experimentByName() throws {
        let store = try MLflowStore(root: try freshRoot("by-name"))
        let id = try store.experiment(named: "sankshep-baseline")
        #expect(try store.experiment(named: "sankshep-baseline") == id)
        #expect(id != "0" && Int(id) != nil)
        let meta = try yaml(store.root.appendingPathComponent("\(id)/meta.yaml"))
        #expect(meta["name"] as? String == "sankshep-baseline")
        #expect(meta["experiment_id"] as? String == id)
        // The id is written as a quoted string, as MLflow writes it.
        #expect(try read(store.root.appendingPathComponent("\(id)/meta.yaml")).contains("experiment_id: '\(id)'"))
    }

    @Test("a run writes meta.yaml, params, metric lines '<ms> <value> <step>' and tags in MLflow's layout")
    func runLayout() throws {
        let store = try MLflowStore(root: try freshRoot("layout"))
        let experiment = try store.experiment(named: "layout")
        let start = Date(timeIntervalSince1970: 1_700_000_000.123)
        let run = try store.startRun(experimentID: experiment, name: "fold_1", tags: ["sankshep.stage": "baseline"], startTime: start)
        try run.logParams(["batch": "32", "lr": "2e-05"])
        try run.logMetric("val_macro_f1", 0.75, step: 0, timestamp: Date(timeIntervalSince1970: 1_700_000_001))
        try run.logMetric("val_macro_f1", 0.8125, step: 1, timestamp: Date(timeIntervalSince1970: 1_700_000_002.5))
        try run.logMetric("train/loss", .nan, step: 1, timestamp: Date(timeIntervalSince1970: 1_700_000_003))

        let dir = run.directory
        #expect(run.runID.count == 32 && run.runID.allSatisfy(\.isHexDigit))
        #expect(try read(dir.appendingPathComponent("params/batch")) == "32")
        #expect(try read(dir.appendingPathComponent("params/lr")) == "2e-05")
        #expect(try read(dir.appendingPathComponent("metrics/val_macro_f1")) == "1700000001000 0.75 0\n1700000002500 0.8125 1\n")
        #expect(try read(dir.appendingPathComponent("metrics/train/loss")) == "1700000003000 nan 1\n")
        #expect(try read(dir.appendingPathComponent("tags/mlflow.runName")) == "fold_1")
        #expect(try read(dir.appendingPathComponent("tags/sankshep.stage")) == "baseline")
        #expect(try read(dir.appendingPathComponent("tags/mlflow.source.type")) == "LOCAL")
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("artifacts").path))

        var meta = try yaml(dir.appendingPathComponent("meta.yaml"))
        #expect(meta["run_id"] as? String == run.runID)
        #expect(meta["run_uuid"] as? String == run.runID)
        #expect(meta["run_name"] as? String == "fold_1")
        #expect(meta["experiment_id"] as? String == experiment)
        #expect(meta["status"] as? Int == 1)
        #expect(meta["start_time"] as? Int == 1_700_000_000_123)
        #expect(meta["end_time"] is NSNull || meta["end_time"] == nil)
        #expect(meta["lifecycle_stage"] as? String == "active")
        #expect(meta["source_type"] as? Int == 4)
        #expect(meta["artifact_uri"] as? String == "file://" + dir.path + "/artifacts")
        #expect(meta["tags"] as? [Any] != nil)

        try run.finish(status: .finished, endTime: Date(timeIntervalSince1970: 1_700_000_100))
        meta = try yaml(dir.appendingPathComponent("meta.yaml"))
        #expect(meta["status"] as? Int == 3)
        #expect(meta["end_time"] as? Int == 1_700_000_100_000)
        #expect(meta["start_time"] as? Int == 1_700_000_000_123)
    }

    @Test("a run called '0' or 'yes' keeps its name as a string")
    func quotedNames() throws {
        let store = try MLflowStore(root: try freshRoot("quoted"))
        let run = try store.startRun(experimentID: "0", name: "yes")
        #expect(try yaml(run.directory.appendingPathComponent("meta.yaml"))["run_name"] as? String == "yes")
    }

    @Test("a param cannot change once logged, but may be logged again with the same value")
    func paramsFixed() throws {
        let store = try MLflowStore(root: try freshRoot("params"))
        let run = try store.startRun(experimentID: "0", name: "p")
        try run.logParam("epochs", "15")
        try run.logParam("epochs", "15")
        #expect(throws: TrackingError.self) { try run.logParam("epochs", "3") }
    }

    @Test("keys MLflow would refuse are refused in one line naming the key")
    func invalidKeys() throws {
        let store = try MLflowStore(root: try freshRoot("keys"))
        let run = try store.startRun(experimentID: "0", name: "k")
        for key in ["../escape", "/abs", "f1@0.5", ""] {
            let error = #expect(throws: TrackingError.self) { try run.logMetric(key, 1, step: 0) }
            #expect(error?.description.contains("invalid key '\(key)'") == true)
        }
    }

    @Test("a resumed run keeps its start time and appends to its metric history")
    func resume() throws {
        let store = try MLflowStore(root: try freshRoot("resume"))
        let run = try store.startRun(experimentID: "0", name: "r", startTime: Date(timeIntervalSince1970: 1_700_000_000))
        try run.logMetric("loss", 0.5, step: 0, timestamp: Date(timeIntervalSince1970: 1_700_000_001))
        try run.finish(status: .killed)
        let resumed = try store.resumeRun(experimentID: "0", runID: run.runID)
        try resumed.logMetric("loss", 0.25, step: 1, timestamp: Date(timeIntervalSince1970: 1_700_000_002))
        let meta = try yaml(run.directory.appendingPathComponent("meta.yaml"))
        #expect(meta["status"] as? Int == 1)
        #expect(meta["start_time"] as? Int == 1_700_000_000_000)
        #expect(try read(run.directory.appendingPathComponent("metrics/loss")) == "1700000001000 0.5 0\n1700000002000 0.25 1\n")
    }

    @Test("an artifact is copied into the run's artifacts folder, under its sub-folder when given")
    func artifact() throws {
        let store = try MLflowStore(root: try freshRoot("artifact"), user: "tester")
        let run = try store.startRun(experimentID: "0", name: "a")
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("sankshep-artifact-\(UUID().uuidString)/summary.csv")
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: file.deletingLastPathComponent()) }
        try Data("stage,f1\nbaseline,0.5\n".utf8).write(to: file)
        try run.logArtifact(file)
        try run.logArtifact(file, directory: "tables")
        #expect(try read(run.directory.appendingPathComponent("artifacts/summary.csv")) == "stage,f1\nbaseline,0.5\n")
        #expect(try read(run.directory.appendingPathComponent("artifacts/tables/summary.csv")) == "stage,f1\nbaseline,0.5\n")
        #expect(throws: TrackingError.self) { try run.logArtifact(file, directory: "../escape") }
        #expect(try read(run.directory.appendingPathComponent("tags/mlflow.user")) == "tester")
        #expect(try yaml(run.directory.appendingPathComponent("meta.yaml"))["user_id"] as? String == "tester")
    }

    @Test("a slice job's file store, named by a file: URI, reads in MLflow with the job's run, its nested runs and artifacts",
          .enabled(if: PythonEnvironment.available))
    func sliceJobReadsInMLflow() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = folder.appendingPathComponent("elsewhere/mlruns")
        try (RunCommand.parseAsRoot(["--data_path", Fixtures.bundledData.path, "--data_fraction", "0.03", "--num_folds", "2",
                                     "--epochs", "1", "--threads", "1", "--output_dir", folder.path, "--author_name", "tester",
                                     "--mlflow_tracking_uri", "file://" + store.path]) as! RunCommand).run()
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("mlruns").path))
        let result = try PythonEnvironment.run("check_mlflow_store.py", [store.path, "--experiment", "Bangla-HateSpeech-Detection",
                                                                          "--min-runs", "4"])
        #expect(result.status == 0, "\(result.standardOutput)\n\(result.standardError)")
        let listing = try PythonEnvironment.run("-c", [
            "import os, sys; os.environ['MLFLOW_ALLOW_FILE_STORE'] = 'true'\n"
            + "from mlflow.tracking import MlflowClient\n"
            + "client = MlflowClient('file://' + sys.argv[1])\n"
            + "runs = client.search_runs([client.get_experiment_by_name('Bangla-HateSpeech-Detection').experiment_id])\n"
            + "job = [r for r in runs if r.info.run_name == 'baseline'][0]\n"
            + "print(sorted(a.path for a in client.list_artifacts(job.info.run_id)))\n"
            + "print(sorted({r.data.tags.get('mlflow.parentRunId') == job.info.run_id for r in runs if r is not job}))\n"
            + "print(sorted({r.data.tags['mlflow.user'] for r in runs}))",
            store.path])
        #expect(listing.standardOutput == "['best_metrics_baseline.csv', 'fold_summary_baseline.csv', 'folds_baseline.csv', 'pipeline_summary_baseline.csv', 'report.html']\n[True]\n['tester']\n",
                "\(listing.standardError)")
    }

    @Test("nested runs carry their parent's id in mlflow.parentRunId")
    func nested() throws {
        let store = try MLflowStore(root: try freshRoot("nested"))
        let parent = try store.startRun(experimentID: "0", name: "job")
        let child = try store.startRun(experimentID: "0", name: "fold_1", parentRunID: parent.runID)
        #expect(try read(child.directory.appendingPathComponent("tags/mlflow.parentRunId")) == parent.runID)
    }
}
