import Foundation
import Testing
@testable import Host

@Suite("sankshep run, eval and predict", .serialized)
struct RunCommandTests {
    @Test("the baseline on a slice of the bundled data writes the fold summary, best metrics, the teacher folder and an MLflow store")
    func baselineArtifacts() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let command = try RunCommand.parseAsRoot(["--data_path", Fixtures.bundledData.path, "--data_fraction", "0.03",
                                                  "--num_folds", "2", "--epochs", "1", "--output_dir", folder.path,
                                                  "--threads", "1"]) as! RunCommand
        try command.run()
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path)
        for name in ["fold_summary_baseline.csv", "best_metrics_baseline.csv", "best_model_baseline", "best_model_baseline.safetensors", "mlruns"] {
            #expect(files.contains(name), "missing \(name)")
        }
        let summary = try String(contentsOf: folder.appendingPathComponent("fold_summary_baseline.csv"), encoding: .utf8)
        #expect(summary.split(separator: "\n").count == 3)   // header + 2 folds
        let teacher = try Classifier.load(from: folder.appendingPathComponent("best_model_baseline"))
        #expect((0.3...0.6).contains(teacher.threshold))
        // Runs per fold in the "sankshep" experiment, with params and per-epoch metrics.
        let tracking = try MLflowStore(root: folder.appendingPathComponent("mlruns"))
        let experiment = try #require(try tracking.experimentID(named: "sankshep"))
        let runs = try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("mlruns/\(experiment)").path)
            .filter { $0 != "meta.yaml" }
        #expect(runs.count == 3)   // a run per fold, and the baseline stage's measurement run
        let foldRuns = try runs.filter { run in
            try String(contentsOf: folder.appendingPathComponent("mlruns/\(experiment)/\(run)/tags/mlflow.runName"), encoding: .utf8).hasPrefix("baseline-fold")
        }
        #expect(foldRuns.count == 2)
        for run in foldRuns {
            let metrics = folder.appendingPathComponent("mlruns/\(experiment)/\(run)/metrics/val_macro_f1")
            #expect(FileManager.default.fileExists(atPath: metrics.path))
        }
        // Rerunning with --resume finds every fold complete and gives the same summary.
        let resumed = try RunCommand.parseAsRoot(["--data_path", Fixtures.bundledData.path, "--data_fraction", "0.03",
                                                  "--num_folds", "2", "--epochs", "1", "--output_dir", folder.path,
                                                  "--threads", "1", "--resume"]) as! RunCommand
        try resumed.run()
        #expect(try String(contentsOf: folder.appendingPathComponent("fold_summary_baseline.csv"), encoding: .utf8) == summary)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("mlruns/\(experiment)").path).count == runs.count + 1)
    }

    @Test("--resume under another --pipeline reuses the completed baseline folds and their teacher instead of training again")
    func resumeUnderAnotherPipeline() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let common = ["--data_path", Fixtures.bundledData.path, "--data_fraction", "0.03", "--num_folds", "2", "--epochs", "1",
                      "--output_dir", folder.path, "--threads", "1"]
        try (RunCommand.parseAsRoot(common) as! RunCommand).run()
        let teacherWeights = try Data(contentsOf: folder.appendingPathComponent("best_model_baseline/model.safetensors"))
        try (RunCommand.parseAsRoot(common + ["--pipeline", "baseline_quant", "--quant_method", "fp16", "--resume"]) as! RunCommand).run()
        // The teacher came over unchanged: the folds were not trained again.
        #expect(try Data(contentsOf: folder.appendingPathComponent("best_model_baseline_quant/model.safetensors")) == teacherWeights)
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("best_model_baseline_quant.safetensors").path))
        #expect(try String(contentsOf: folder.appendingPathComponent("fold_summary_baseline_quant.csv"), encoding: .utf8)
                == String(contentsOf: folder.appendingPathComponent("fold_summary_baseline.csv"), encoding: .utf8))
        #expect(!(try FileManager.default.contentsOfDirectory(atPath: folder.path)).contains { $0.contains(".partial-") })
    }

    @Test("predict gives the probabilities evaluation computed for the same rows")
    func predictMatchesEvaluation() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let preset = ModelPreset(name: "test-tiny", summary: "", hiddenSize: 16, layers: 1, heads: 2,
                                 intermediateSize: 32, maxPositions: 64, learningRate: 3e-3, epochs: 1, batchSize: 16)
        let classifier = try Classifier.fromPreset(preset, tokenizerDirectory: Fixtures.bundledTokenizer, dropout: 0.1, pooling: .cls, seed: 3)
        classifier.threshold = 0.45
        let texts = ["তুমি খুব ভালো মানুষ", "এই লোকটা একটা চোর", "ধন্যবাদ"]
        let sequences = texts.map { classifier.tokenizer.encode($0, maxLength: 128) }
        let evaluated = try Evaluator.probabilities(network: classifier.network, sequences: sequences, rows: [0, 1, 2],
                                                padID: classifier.tokenizer.padId, batchSize: 2)
        let modelFolder = folder.appendingPathComponent("model")
        try classifier.save(to: modelFolder)
        let output = folder.appendingPathComponent("predictions.jsonl")
        let command = try PredictCommand.parseAsRoot(["--model", modelFolder.path, "--output", output.path]
                                                     + texts.flatMap { ["--text", $0] }) as! PredictCommand
        try command.run()
        let lines = try String(contentsOf: output, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 3)
        for (index, line) in lines.enumerated() {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            let probability = object["probability"] as! Double
            #expect(abs(probability - Double(evaluated[index])) < 1e-6)
            #expect(object["label"] as? Int == (probability > 0.45 ? 1 : 0))
        }
    }

    @Test("impossible option values are refused in one line naming the option")
    func impossibleOptions() {
        for (arguments, option) in [(["--batch", "0"], "--batch"), (["--dropout", "1"], "--dropout"),
                                    (["--num_folds", "1"], "--num_folds"), (["--pooling_type", "sum"], "pooling_type"),
                                    (["--data_fraction", "0"], "--data_fraction")] {
            do {
                _ = try RunCommand.parseAsRoot(arguments)
                Issue.record("\(arguments) was accepted")
            } catch {
                let message = RunCommand.message(for: error)
                #expect(message.contains(option), "\(message)")
                #expect(!message.contains("\n"), "\(message)")
            }
        }
    }
}

@Suite("sankshep run --recipe")
struct RunRecipeTests {
    @Test("a recipe naming an unknown method is refused in one line before any work")
    func unknownMethodRefused() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let recipe = folder.appendingPathComponent("bad.yaml")
        try "stages:\n  - baseline: {}\n  - prune: {method: no-such-pruner, sparsity: 0.5}\n".write(to: recipe, atomically: true, encoding: .utf8)
        let output = folder.appendingPathComponent("out")
        let command = try RunCommand.parseAsRoot(["--recipe", recipe.path, "--output_dir", output.path]) as! RunCommand
        do {
            try command.run()
            Issue.record("the recipe was accepted")
        } catch {
            let message = "\(error)"
            #expect(message.contains("no-such-pruner"), "\(message)")
            #expect(!message.contains("\n"), "\(message)")
        }
        #expect(!FileManager.default.fileExists(atPath: output.path))
    }

    @Test("the final folder of a run holds the model, its card and its provenance, and the run writes report.html")
    func finalFolder() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let command = try RunCommand.parseAsRoot(["--data_path", Fixtures.bundledData.path, "--data_fraction", "0.03",
                                                  "--num_folds", "2", "--epochs", "1", "--output_dir", folder.path,
                                                  "--threads", "1"]) as! RunCommand
        try command.run()
        let final = folder.appendingPathComponent("final_teacher")
        for name in ["config.json", "model.safetensors", "tokenizer.json", "vocab.txt", "tokenizer_config.json", "README.md",
                     "provenance.json", "sankshep.json"] {
            #expect(FileManager.default.fileExists(atPath: final.appendingPathComponent(name).path), "missing \(name)")
        }
        let provenance = try JSONSerialization.jsonObject(with: Data(contentsOf: final.appendingPathComponent("provenance.json"))) as! [String: Any]
        #expect((provenance["dataSHA256"] as? String)?.count == 64)
        let html = try String(contentsOf: folder.appendingPathComponent("report.html"), encoding: .utf8)
        #expect(html.contains("<svg"))
        let summary = try PipelineSummary.read(from: folder.appendingPathComponent("pipeline_summary_baseline.csv"))
        #expect(summary.rows.map(\.stage) == ["baseline"])
    }
}
