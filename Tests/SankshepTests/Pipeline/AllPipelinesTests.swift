import Foundation
import Testing
@testable import Host

/// Every `--pipeline` name, end to end, on a slice of the bundled data with tiny settings. The
/// pipelines run once for the whole suite, on one baseline: each starts from a copy of the
/// baseline-only run's folder with `--resume` (which takes its completed folds and teacher), as the
/// README's measurements do. `baseline_quant` runs with every built-in quantizer, so each on-disk
/// layout is checked.
@Suite("Every --pipeline name runs end to end", .serialized)
struct AllPipelinesTests {
    static let arguments = ["--data_path", Fixtures.bundledData.path, "--data_fraction", "0.03", "--num_folds", "2",
                            "--epochs", "1", "--fine_tune_epochs", "1", "--calib_samples", "32",
                            "--quant_calibration_batches", "2", "--threads", "1"]

    struct Run: Sendable {
        var name: String
        var pipeline: PipelineName
        var folder: URL
    }

    struct RunFailure: Error, CustomStringConvertible { var description: String }

    /// Where the runs are made; removed when the test process exits (every test of the suite reads it).
    static let root = FileManager.default.temporaryDirectory
        .appendingPathComponent("sankshep-tests-all-pipelines-\(ProcessInfo.processInfo.processIdentifier)")

    /// The runs, made on first use (a failure is every test's failure).
    static let runs: Result<[Run], RunFailure> = {
        do {
            try? FileManager.default.removeItem(at: root)
            try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
            atexit { try? FileManager.default.removeItem(at: AllPipelinesTests.root) }
            let baseline = root.appendingPathComponent("baseline")
            try run(.baseline, [], into: baseline)
            var runs = [Run(name: "baseline", pipeline: .baseline, folder: baseline)]
            let others = PipelineName.allCases.filter { $0 != .baseline }.map { ($0.rawValue, $0, [String]()) }
                + ["static", "int4", "fp16"].map { ("baseline_quant-\($0)", PipelineName.baseline_quant, ["--quant_method", $0]) }
            for (name, pipeline, extra) in others {
                let folder = root.appendingPathComponent(name)
                try FileManager.default.copyItem(at: baseline, to: folder)
                try run(pipeline, extra + ["--resume"], into: folder)
                runs.append(Run(name: name, pipeline: pipeline, folder: folder))
            }
            return .success(runs)
        } catch {
            return .failure(RunFailure(description: "\(error)"))
        }
    }()

    static func run(_ pipeline: PipelineName, _ extra: [String], into folder: URL) throws {
        let command = try RunCommand.parseAsRoot(["--pipeline", pipeline.rawValue, "--output_dir", folder.path] + arguments + extra) as! RunCommand
        try command.run()
    }

    @Test("the pipeline runs every stage and writes a summary row per stage and the final folder",
          arguments: PipelineName.allCases)
    func pipelineRuns(_ pipeline: PipelineName) throws {
        let folder = try #require(try Self.runs.get().first { $0.name == pipeline.rawValue }).folder
        let recipe = try Recipe.builtIn(pipeline)
        let summary = try PipelineSummary.read(from: folder.appendingPathComponent("pipeline_summary_\(pipeline.rawValue).csv"))
        #expect(summary.rows.map(\.stage) == recipe.stageLabels)
        let final = folder.appendingPathComponent(recipe.stageTag)
        for name in ["config.json", "model.safetensors", "README.md", "provenance.json", "sankshep.json", "vocab.txt", "tokenizer_config.json"] {
            #expect(FileManager.default.fileExists(atPath: final.appendingPathComponent(name).path), "missing \(name)")
        }
        // One copy of the weights and of each tokenizer file: nothing else in the folder.
        let files = try FileManager.default.contentsOfDirectory(atPath: final.path)
        #expect(files.count == 7, "\(files.sorted())")
        #expect(SankshepSettings.read(from: final)?.maxLength == 128)
        // No temporary file is left under the output folder.
        let leftovers = FileManager.default.enumerator(atPath: folder.path)?.compactMap { $0 as? String }
            .filter { $0.contains(".tmp") || $0.hasSuffix("~") } ?? []
        #expect(leftovers.isEmpty, "\(leftovers)")
    }

    @Test("every final folder's bytes on disk are the summary's size plus its model card and provenance")
    func finalFolderSizeIsTheSummarys() throws {
        for run in try Self.runs.get() {
            let recipe = try Recipe.builtIn(run.pipeline)
            let summary = try PipelineSummary.read(from: run.folder.appendingPathComponent("pipeline_summary_\(run.pipeline.rawValue).csv"))
            let last = try #require(summary.rows.last)
            let final = run.folder.appendingPathComponent(recipe.stageTag)
            var onDisk = 0, described = 0
            for name in try FileManager.default.contentsOfDirectory(atPath: final.path) {
                let size = try #require(try FileManager.default.attributesOfItem(atPath: final.appendingPathComponent(name).path)[.size] as? Int)
                onDisk += size
                if HuggingFaceDirectory.notShipped.contains(name) { described += size }
            }
            #expect(abs(Double(onDisk - described) - last.sizeMB * StageSummaryRow.bytesPerMB) < 0.5,
                    "\(run.name): \(onDisk) bytes on disk, \(described) of them card and provenance, summary \(last.sizeMB) MB")
        }
    }

    /// Comments of the bundled data (the first rows).
    static func texts(_ count: Int) throws -> [String] {
        try CommentTexts.load(contentsOf: Fixtures.bundledData, options: CommentCSVOptions(), logger: nil).texts.prefix(count).map { $0 }
    }

    /// `sankshep predict`'s probabilities of `texts` with the model in `folder`.
    static func predict(_ folder: URL, _ texts: [String], scratch: URL) throws -> [Double] {
        let output = scratch.appendingPathComponent("predictions-\(UUID().uuidString).jsonl")
        let command = try PredictCommand.parseAsRoot(["--model", folder.path, "--output", output.path, "--threads", "1"]
                                                     + texts.flatMap { ["--text", $0] }) as! PredictCommand
        try command.run()
        return try String(contentsOf: output, encoding: .utf8).split(separator: "\n").map { line in
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            return try #require(object?["probability"] as? Double)
        }
    }

    @Test("transformers loads every final folder (and every stage folder) at its top level with no missing or unexpected key, and gives sankshep predict's probabilities",
          .enabled(if: PythonEnvironment.available))
    func transformersLoadsTheFinalFolders() throws {
        let scratch = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let texts = try Self.texts(24)
        var folders: [[String: Any]] = []
        var checked = Set<String>()
        for run in try Self.runs.get() {
            let recipe = try Recipe.builtIn(run.pipeline)
            var candidates = [run.folder.appendingPathComponent(recipe.stageTag)]
            // The stage folders of the longest pipeline, the teacher's included.
            if run.pipeline == .baseline_kd_prune_quant {
                candidates += (0..<recipe.stages.count).map { run.folder.appendingPathComponent($0 == 0 ? "best_model_\(run.pipeline.rawValue)" : recipe.modelTag(afterStage: $0)) }
            }
            for folder in candidates where checked.insert(folder.path).inserted {
                // compressed-tensors simulates the activation quantization its own way (step max|x| / 127.5,
                // Sankshep's / 127): check_compressed_tensors.py's tolerance. Float and F16 folders: float rounding.
                let config = try ModelConfig.read(folder.appendingPathComponent("config.json"))
                let tolerance = config.raw["quantization_config"] == nil ? 1e-5 : 1e-2
                folders.append(["path": folder.path, "sankshep": try Self.predict(folder, texts, scratch: scratch), "tolerance": tolerance])
            }
        }
        #expect(folders.count == 8 + 3 + 4)
        let manifest = scratch.appendingPathComponent("manifest.json")
        try JSONSerialization.data(withJSONObject: ["texts": texts, "max_length": 128, "folders": folders]).write(to: manifest)
        let result = try PythonEnvironment.run("check_final_folders.py", [manifest.path])
        let lines = result.standardOutput.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(lines.count == folders.count, "\(result.standardError.suffix(2000))")
        for line in lines {
            #expect(line["ok"] as? Bool == true, "\(line.filter { $0.key != "transformers" })")
        }
        // The quantized folders load as quantized models in transformers, the others as float ones.
        let quantized = lines.filter { $0["quantized_modules"] as? Bool == true }.compactMap { $0["path"] as? String }
        // The 4 dynamic pipelines' finals, the longest one's quantize stage folder, static and int4
        // (fp16 is F16 weights, no compressed-tensors scheme).
        #expect(quantized.count == 7, "\(quantized)")
        #expect(result.status == 0, "\(result.standardError.suffix(2000))")
    }
}
