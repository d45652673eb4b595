import Foundation
import Testing
@testable import Host

/// Against a real `mlflow server` (SQLite backend, proxied artifacts, loopback), started once for the
/// test run; what was logged is read back with MLflow's own Python client.
@Suite("MLflow tracking server", .serialized)
struct MLflowServerTests {
    private static let slice = ["--data_path", Fixtures.bundledData.path, "--data_fraction", "0.03", "--num_folds", "2",
                                "--epochs", "1", "--threads", "1"]

    private func run(_ arguments: [String]) throws {
        try (RunCommand.parseAsRoot(arguments) as! RunCommand).run()
    }

    private func check(_ server: URL, experiment: String, job: String, user: String, stages: [String], artifacts: [String]) throws -> PythonEnvironment.Result {
        try PythonEnvironment.run("check_mlflow_server.py",
                                  [server.absoluteString, "--experiment", experiment, "--job", job, "--user", user, "--folds", "2"]
                                  + stages.flatMap { ["--stage", $0] } + artifacts.flatMap { ["--artifact", $0] },
                                  environment: ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"])
    }

    private func unsentLines(in folder: URL) throws -> [[String: Any]] {
        let text = try String(contentsOf: folder.appendingPathComponent(MLflowServer.unsentFileName), encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
    }

    @Test("a slice run logs its experiment, fold and stage runs, params, per-epoch metrics, author and artifacts to the server, and a resumed run continues the same runs",
          .enabled(if: PythonEnvironment.available))
    func sliceRun() throws {
        let server = try MLflowTestServer.url()
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let arguments = Self.slice + ["--pipeline", "baseline_quant", "--quant_method", "fp16", "--output_dir", folder.path,
                                      "--mlflow_tracking_uri", server.absoluteString, "--author_name", "tester",
                                      "--mlflow_experiment_name", "slice-run"]
        try run(arguments)
        // Every stage is complete: the resumed job reopens its runs (and finishes them again), starts none.
        try run(arguments + ["--resume"])
        // Nothing went to a file store, and every call was delivered.
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path)
        #expect(!files.contains("mlruns"))
        #expect(!files.contains(MLflowServer.unsentFileName))

        let result = try check(server, experiment: "slice-run", job: "baseline_quant", user: "tester",
                               stages: ["baseline", "quantize_fp16"],
                               artifacts: ["fold_summary_baseline_quant.csv", "best_metrics_baseline_quant.csv",
                                           "pipeline_summary_baseline_quant.csv", "report.html"])
        #expect(result.status == 0, "\(result.standardOutput)\n\(result.standardError)")
        #expect(result.standardOutput.contains("ok: job 'baseline_quant' with 4 nested runs"))   // check counts one job run

        // The provenance names the author too.
        let provenance = try String(contentsOf: folder.appendingPathComponent("final_quantized_teacher/provenance.json"), encoding: .utf8)
        #expect(provenance.contains("\"author\" : \"tester\""))
    }

    @Test("a server that cannot be reached at start stops the job in one line, before any data is read")
    func unreachableAtStart() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let address = "http://127.0.0.1:\(try MLflowTestServer.closedPort())"
        let started = Date()
        let error = #expect(throws: TrackingError.self) {
            try run(Self.slice + ["--output_dir", folder.path, "--mlflow_tracking_uri", address])
        }
        let message = try #require(error).description
        #expect(message.hasPrefix(address + ": cannot look up the experiment 'Bangla-HateSpeech-Detection'"))
        #expect(!message.contains("\n"))
        #expect(Date().timeIntervalSince(started) < 15)
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("checkpoints").path))
    }

    @Test("an address that is not an MLflow server's API (a 404 page) is refused at start in one line",
          .enabled(if: PythonEnvironment.available))
    func refusedAtStart() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let address = try MLflowTestServer.url().absoluteString + "/not-mlflow"
        let error = #expect(throws: TrackingError.self) {
            try run(Self.slice + ["--output_dir", folder.path, "--mlflow_tracking_uri", address])
        }
        let message = try #require(error).description
        // The page's HTML is not repeated: the status names the problem.
        #expect(message.hasPrefix("\(address): cannot look up the experiment 'Bangla-HateSpeech-Detection': HTTP 404: "))
        #expect(message.lowercased().hasSuffix("not found; is this the address of an mlflow tracking server?"))
        #expect(!message.contains("<") && !message.contains("\n"))
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("checkpoints").path))
    }

    @Test("a server that goes away mid-job does not stop training: the job completes and the unsent calls are kept",
          .enabled(if: PythonEnvironment.available))
    func serverGoneMidJob() throws {
        let server = try MLflowTestServer.url()
        // The job talks to the server through a forwarder; stopping it is the server going away, while
        // the server itself keeps what was logged before.
        let forwarder = try LoopbackProcess.start(["forward", "--to", String(try #require(server.port))], timeout: 60)
        defer { forwarder.stop() }
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        // Stops the forwarder as soon as the first fold is complete, while the second one trains.
        let firstFold = folder.appendingPathComponent("checkpoints/baseline/fold-1.json")
        let watcher = Thread {
            let deadline = Date().addingTimeInterval(300)
            while !FileManager.default.fileExists(atPath: firstFold.path) && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
            forwarder.stop()
        }
        watcher.start()
        try run(Self.slice + ["--output_dir", folder.path, "--mlflow_tracking_uri", forwarder.url.absoluteString,
                              "--author_name", "tester", "--mlflow_experiment_name", "gone-mid-job"])
        // Training went on: both folds, the summary and the report are there.
        let summary = try String(contentsOf: folder.appendingPathComponent("fold_summary_baseline.csv"), encoding: .utf8)
        #expect(summary.split(separator: "\n").count == 3)
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("report.html").path))
        // What could not be sent is kept, as it would have been sent: the second fold's run and its
        // metrics, the job's artifacts and its end.
        let lines = try unsentLines(in: folder)
        let runs = Set(lines.compactMap { $0["run_name"] as? String })
        #expect(runs.contains("baseline-fold-2"))
        #expect(runs.contains("baseline"))
        #expect(lines.allSatisfy { ($0["reason"] as? String)?.isEmpty == false })
        #expect(lines.contains { ($0["path"] as? String) == "/api/2.0/mlflow/runs/create" && ($0["body"] as? [String: Any])?["run_name"] as? String == "baseline-fold-2" })
        #expect(lines.contains { ($0["file"] as? String)?.hasSuffix("report.html") == true })
        let metrics = lines.compactMap { ($0["body"] as? [String: Any])?["metrics"] as? [[String: Any]] }.flatMap { $0 }
        #expect(metrics.contains { $0["key"] as? String == "val_macro_f1" && $0["step"] as? Int == 1 })
    }

    @Test("closing after the server went away answers one warning line naming what was not logged and where it is kept",
          .enabled(if: PythonEnvironment.available))
    func warningLine() throws {
        let server = try MLflowTestServer.url()
        let forwarder = try LoopbackProcess.start(["forward", "--to", String(try #require(server.port))], timeout: 60)
        defer { forwarder.stop() }
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = MLflowServer(uri: forwarder.url, user: "tester", authorization: nil,
                                 unsentFile: folder.appendingPathComponent(MLflowServer.unsentFileName), retryDelays: [0.1])
        let experiment = try store.experiment(named: "warning-line")
        #expect(try store.experiment(named: "warning-line") == experiment)
        let run = try store.startRun(experimentID: experiment, name: "job")
        try run.logParams(["lr": "2e-05"])
        #expect(store.close() == nil)   // delivered so far
        forwarder.stop()
        let started = Date()
        try run.logMetrics(["loss": 0.5, "nan": .nan], step: 1)
        try run.finish()
        #expect(Date().timeIntervalSince(started) < 1)   // the calls return at once; retries are in the background
        let warning = try #require(store.close())
        #expect(!warning.contains("\n"))
        #expect(warning.hasPrefix("MLflow server \(forwarder.url.absoluteString): 2 of 6 calls could not be logged (runs job): the server stopped answering"))
        #expect(warning.hasSuffix("the job's outputs are in \(folder.path) and the unsent calls are in \(folder.appendingPathComponent(MLflowServer.unsentFileName).path)"))
        let lines = try unsentLines(in: folder)
        #expect(lines.count == 2)
        let metrics = try #require((lines.first?["body"] as? [String: Any])?["metrics"] as? [[String: Any]])
        #expect(metrics.map { $0["value"] as? String } == [nil, "NaN"])   // loss 0.5 is a number, NaN MLflow's string
        #expect((lines.last?["body"] as? [String: Any])?["status"] as? String == "FINISHED")
    }
}
