import Foundation
import Testing
@testable import Host

/// Every model reads the ids of its own tokenizer: a teacher whose vocabulary is not the student's
/// must not hand its ids to the student, the pruner or the quantizer.
@Suite("Each model with its own tokenizer", .serialized)
struct OwnTokenizerTests {
    /// A small BERT folder whose vocabulary is the bundled one behind 1,500 extra entries, so its ids
    /// for the same words run past the default student's 8,000 rows (as a real checkpoint's do).
    static func teacherWithOwnVocabulary(in folder: URL) throws -> URL {
        let bundled = try String(contentsOf: Fixtures.bundledTokenizer.appendingPathComponent("vocab.txt"), encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let entries = (0..<1500).map { "[unused\($0)]" } + bundled.filter { !$0.isEmpty }
        let tokenizerFolder = folder.appendingPathComponent("own-vocabulary")
        try FileManager.default.createDirectory(at: tokenizerFolder, withIntermediateDirectories: true)
        try (entries.joined(separator: "\n") + "\n").write(to: tokenizerFolder.appendingPathComponent("vocab.txt"), atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(at: Fixtures.bundledTokenizer.appendingPathComponent("tokenizer_config.json"),
                                         to: tokenizerFolder.appendingPathComponent("tokenizer_config.json"))
        let preset = ModelPreset(name: "test-own-vocabulary", summary: "", hiddenSize: 32, layers: 1, heads: 2,
                                 intermediateSize: 64, maxPositions: 64, learningRate: 2e-3, epochs: 1, batchSize: 32)
        let teacher = try Classifier.fromPreset(preset, tokenizerDirectory: tokenizerFolder, dropout: 0.1, pooling: .cls, seed: 3)
        #expect(teacher.tokenizer.vocabularySize == 9500)
        let model = folder.appendingPathComponent("teacher")
        try teacher.save(to: model)
        return model
    }

    @Test("the whole pipeline with a teacher of its own vocabulary and the default student completes, every stage evaluated with its model's ids")
    func pipelineWithOwnVocabularyTeacher() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let teacher = try Self.teacherWithOwnVocabulary(in: folder)
        let output = folder.appendingPathComponent("out")
        let command = try RunCommand.parseAsRoot([
            "--pipeline", "baseline_kd_prune_quant", "--model_path", teacher.path, "--data_path", Fixtures.bundledData.path,
            "--data_fraction", "0.03", "--num_folds", "2", "--epochs", "1", "--lr", "1e-3", "--fine_tune_epochs", "1",
            "--max_length", "200", "--quant_method", "int4", "--output_dir", output.path, "--threads", "1",
        ]) as! RunCommand
        try command.run()
        let summary = try PipelineSummary.read(from: output.appendingPathComponent("pipeline_summary_baseline_kd_prune_quant.csv"))
        #expect(summary.rows.map(\.stage) == ["baseline", "distill", "prune_magnitude", "quantize_int4"])
        for row in summary.rows { #expect(row.macroF1.isFinite && row.macroF1 > 0) }
        // The final model is the preset student: it predicts from its own 8,000-entry vocabulary.
        let final = try loadDeployableModel(from: output.appendingPathComponent("final_quantized_pruned_student"),
                                            registry: PluginTestSupport.builtInRegistry())
        #expect(final.tokenizer.vocabularySize == 8000)
        let probabilities = try final.probabilities(of: ["একটি ভালো মন্তব্য", String(repeating: "খারাপ ", count: 300)], maxLength: 512, batchSize: 2)
        #expect(probabilities.count == 2 && probabilities.allSatisfy { (0...1).contains($0) })
    }

    @Test("a tokenizer with more entries than the embedding table has rows is refused in one line when the model loads")
    func vocabularyLargerThanEmbeddings() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let teacher = try Self.teacherWithOwnVocabulary(in: folder)
        let configURL = teacher.appendingPathComponent("config.json")
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: configURL)) as! [String: Any]
        config["vocab_size"] = 9000
        try JSONSerialization.data(withJSONObject: config).write(to: configURL)
        do {
            _ = try Classifier.load(from: teacher)
            Issue.record("a 9,500-entry tokenizer was accepted for a 9,000-row embedding table")
        } catch {
            let message = "\(error)"
            #expect(!message.contains("\n"))
            #expect(message.contains("9500 entries") || message.contains("9000"), "\(message)")
        }
    }

    @Test("a comment longer than the model's positions is cut to them, whatever --max_length says")
    func longCommentWithinPositions() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let teacher = try Classifier.load(from: Self.teacherWithOwnVocabulary(in: folder))
        let long = String(repeating: "ভালো ", count: 500)
        let sequences = try TokenizedCorpus(texts: [long], maxLength: 4096).sequences(for: teacher)
        #expect(sequences[0].count == 64)
        #expect(try teacher.probabilities(of: [long], maxLength: 4096, batchSize: 1).count == 1)
    }
}
