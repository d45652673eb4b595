import Foundation
import Testing
@testable import Host

@Suite("The prune stage in sankshep run", .serialized)
struct PruningPipelineTests {
    /// Runs `--pipeline baseline_prune` on 3% of the bundled data and returns the output folder.
    private func run(_ extra: [String], in folder: URL) throws {
        let arguments = ["--pipeline", "baseline_prune", "--data_path", Fixtures.bundledData.path, "--data_fraction", "0.03",
                         "--num_folds", "2", "--epochs", "1", "--output_dir", folder.path, "--threads", "1",
                         "--prune_sparsity", "0.5"] + extra
        let command = try RunCommand.parseAsRoot(arguments) as! RunCommand
        try command.run()
    }

    private func sparsityRows(_ folder: URL) throws -> [[String]] {
        let text = try String(contentsOf: folder.appendingPathComponent("sparsity_baseline_prune.csv"), encoding: .utf8)
        return text.split(separator: "\n").dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
    }

    @Test("magnitude, wanda and gradual each run end to end: every layer at 50%, a dense folder that reloads, a smaller compact export, a summary row", arguments: [
        ["--prune_method", "magnitude", "--fine_tune_epochs", "1"],
        ["--prune_method", "wanda", "--fine_tune_epochs", "1", "--calib_samples", "64"],
        ["--prune_method", "gradual", "--fine_tune_epochs", "2", "--prune_frequency", "3"],
    ])
    func endToEnd(_ method: [String]) throws {
        let folder = try Fixtures.temporaryFolder("prune-\(method[1])")
        defer { try? FileManager.default.removeItem(at: folder) }
        try run(method, in: folder)
        let rows = try sparsityRows(folder)
        #expect(rows.count == 1 + 2 * 6 + 1 + 1)   // the word embeddings, 6 linear layers × 2, the pooler, the total
        #expect(rows.first?.first?.hasSuffix("word_embeddings") == true && rows.first?[1] == "embedding")
        for row in rows.dropLast() {
            let weights = Double(row[4])!, zeros = Double(row[5])!
            // Per layer for magnitude and gradual; per output row for wanda (± one weight per row).
            #expect(abs(zeros - weights / 2) <= Double(row[2])!, "\(row)")
        }
        let final = folder.appendingPathComponent("final_pruned_teacher")
        let model = try Classifier.load(from: final)
        let teacher = try Classifier.load(from: folder.appendingPathComponent("best_model_baseline_prune"))
        #expect(model.nonZeroParameterCount < teacher.nonZeroParameterCount)
        func size(_ url: URL) throws -> Int { try FileManager.default.attributesOfItem(atPath: url.appendingPathComponent("model.safetensors").path)[.size] as! Int }
        // The folder is dense, for today's transformers; the sparse-bitmask export is the smaller file.
        #expect(try size(final) == size(folder.appendingPathComponent("best_model_baseline_prune")))
        let compact = folder.appendingPathComponent("compact")
        try ExportCommand.export(model, format: .compressedTensors, extra: [:], to: compact)
        #expect(try size(compact) < size(final))
        #expect(try Classifier.load(from: compact).nonZeroParameterCount == model.nonZeroParameterCount)
        let summary = try String(contentsOf: folder.appendingPathComponent("pipeline_summary_baseline_prune.csv"), encoding: .utf8)
        #expect(summary.contains("prune_\(method[1])"))
    }

    @Test("structure=ffn removes half of the FFN neurons: intermediate_size halves and the model still loads")
    func structuredFFN() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try run(["--prune_method", "magnitude", "--prune_layers", "ffn", "--prune_option", "structure=ffn",
                 "--fine_tune_epochs", "1"], in: folder)
        let model = try Classifier.load(from: folder.appendingPathComponent("final_pruned_teacher"))
        #expect(model.config.intermediateSize == ModelPreset.teacherSmall.intermediateSize / 2)
        #expect(model.config.raw["quantization_config"] == nil)
    }

    @Test("structure=heads removes half of the heads of every layer: pruned_heads in the config and the model still loads")
    func structuredHeads() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try run(["--prune_method", "magnitude", "--prune_layers", "attention", "--prune_option", "structure=heads",
                 "--fine_tune_epochs", "1"], in: folder)
        let model = try Classifier.load(from: folder.appendingPathComponent("final_pruned_teacher"))
        let heads = ModelPreset.teacherSmall.heads
        #expect(model.config.prunedHeads.count == ModelPreset.teacherSmall.layers)
        #expect(model.config.prunedHeads.values.allSatisfy { $0.count == heads / 2 })
        let query = model.network.names.layers[0].query + ".weight"
        #expect(model.network.store.view(named: query)?.shape == [ModelPreset.teacherSmall.hiddenSize / 2, ModelPreset.teacherSmall.hiddenSize])
        #expect(model.config.raw["quantization_config"] == nil)
    }

    @Test("a host option with an unknown value is refused in one line naming it")
    func badHostOption() throws {
        let command = try RunCommand.parseAsRoot(["--pipeline", "baseline_prune", "--prune_option", "scope=everywhere",
                                                  "--output_dir", "/nonexistent/never-created"]) as! RunCommand
        do {
            try command.run()
            Issue.record("scope=everywhere was accepted")
        } catch {
            let message = RunCommand.message(for: error)
            #expect(message.contains("scope") && message.contains("everywhere") && !message.contains("\n"), "\(message)")
        }
        #expect(!FileManager.default.fileExists(atPath: "/nonexistent/never-created"))
    }
}
