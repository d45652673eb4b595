import Foundation
import Testing
@testable import Host

/// The whole pipeline with an XLM-RoBERTa teacher and with an ALBERT teacher, each with a tokenizer of
/// its own (so the preset student learns from pooled hidden states, as with any teacher whose ids are
/// not the student's): baseline, distillation, pruning and quantization complete; the teacher's folders
/// load in transformers as its own class; every pruning method and every quantizer runs on the teachers.
@Suite("XLM-RoBERTa and ALBERT teachers through the pipeline", .serialized)
struct ModelFamilyPipelineTests {
    static let slice = ["--data_path", Fixtures.bundledData.path, "--data_fraction", "0.03", "--num_folds", "2",
                        "--epochs", "1", "--fine_tune_epochs", "1", "--calib_samples", "32", "--quant_calibration_batches", "2",
                        "--max_length", "64", "--threads", "1"]

    /// A small random teacher folder of `type` with a WordPiece vocabulary of its own: the bundled one with
    /// its first two entries swapped (XLM-R: <pad> is id 1, so positions count from 2) or 500 entries added.
    static func teacher(_ type: ModelConfig.ModelType, in folder: URL) throws -> URL {
        var entries = try String(contentsOf: Fixtures.bundledTokenizer.appendingPathComponent("vocab.txt"), encoding: .utf8)
            .split(separator: "\n").map(String.init)
        if type == .xlmRoberta { entries.swapAt(0, 1) } else { entries += (0..<500).map { "[unused\($0)]" } }
        let tokenizerFolder = folder.appendingPathComponent("tokenizer-\(type.rawValue)")
        try FileManager.default.createDirectory(at: tokenizerFolder, withIntermediateDirectories: true)
        try (entries.joined(separator: "\n") + "\n").write(to: tokenizerFolder.appendingPathComponent("vocab.txt"), atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(at: Fixtures.bundledTokenizer.appendingPathComponent("tokenizer_config.json"),
                                         to: tokenizerFolder.appendingPathComponent("tokenizer_config.json"))
        let tokenizer = try BertTokenizer(directory: tokenizerFolder)
        let config = ModelConfig(modelType: type, vocabSize: tokenizer.vocabularySize, hiddenSize: 32, numLayers: 2, numHeads: 2,
                                 intermediateSize: 64, maxPositionEmbeddings: type == .xlmRoberta ? 66 : 64,
                                 layerNormEps: type == .xlmRoberta ? 1e-5 : 1e-12, padTokenId: tokenizer.padId, embeddingSize: 16)
        let shape = EncoderShape(config)
        #expect(shape.paddingIndex == (type == .xlmRoberta ? 1 : nil))
        let network = SequenceClassifier(shape: shape, head: .huggingFace(for: shape.modelType), numLabels: 1, dropoutSeed: 5)
        network.initializeRandomly(seed: 5)
        let classifier = Classifier(network: network, config: config, tokenizer: tokenizer,
                                    tokenizerFiles: HuggingFaceDirectory.tokenizerFiles(in: tokenizerFolder))
        let model = folder.appendingPathComponent("teacher-\(type.rawValue)")
        try classifier.save(to: model)
        return model
    }

    static func run(_ pipeline: PipelineName, teacher: URL, into output: URL, _ extra: [String] = []) throws {
        let command = try RunCommand.parseAsRoot(["--pipeline", pipeline.rawValue, "--model_path", teacher.path,
                                                  "--output_dir", output.path] + slice + extra) as! RunCommand
        try command.run()
    }

    @Test("baseline_kd_prune_quant completes with the teacher, and transformers loads its folders as its class",
          arguments: [ModelConfig.ModelType.xlmRoberta, .albert])
    func fullPipeline(type: ModelConfig.ModelType) throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let teacher = try Self.teacher(type, in: folder)
        let output = folder.appendingPathComponent("out")
        try Self.run(.baseline_kd_prune_quant, teacher: teacher, into: output)
        let summary = try PipelineSummary.read(from: output.appendingPathComponent("pipeline_summary_baseline_kd_prune_quant.csv"))
        #expect(summary.rows.map(\.stage) == ["baseline", "distill", "prune_magnitude", "quantize_dynamic"])
        for row in summary.rows { #expect(row.macroF1.isFinite && row.macroF1 > 0) }

        // The fine-tuned teacher keeps its architecture; the student is the preset BERT.
        let recipe = try Recipe.builtIn(.baseline_kd_prune_quant)
        let baseline = output.appendingPathComponent("best_model_baseline_kd_prune_quant")
        let fineTuned = try Classifier.load(from: baseline)
        #expect(fineTuned.config.modelType == type && fineTuned.network.shape.modelType == EncoderType(fineTuned.config))
        let student = try Classifier.load(from: output.appendingPathComponent(recipe.modelTag(afterStage: 1)))
        #expect(student.config.modelType == .bert)

        // predict and eval read the teacher's folder through its own tokenizer.
        let texts = try CommentTexts.load(contentsOf: Fixtures.bundledData, options: CommentCSVOptions(), logger: nil).texts.prefix(12).map { $0 }
        let probabilities = try AllPipelinesTests.predict(baseline, texts, scratch: folder)
        #expect(probabilities.count == texts.count && probabilities.allSatisfy { (0...1).contains($0) })

        guard PythonEnvironment.available else { return }
        let manifest = folder.appendingPathComponent("manifest.json")
        let folders: [[String: Any]] = [["path": baseline.path, "sankshep": probabilities, "tolerance": 1e-5]]
        try JSONSerialization.data(withJSONObject: ["texts": texts, "max_length": 64, "folders": folders]).write(to: manifest)
        let result = try PythonEnvironment.run("check_final_folders.py", [manifest.path])
        #expect(result.status == 0, "\(result.standardOutput.suffix(2000)) \(result.standardError.suffix(2000))")
        #expect(result.standardOutput.contains(type.sequenceClassificationClass), "\(result.standardOutput.suffix(1000))")
    }
}
