import Foundation
import Testing
@testable import Host

/// The whole pipeline with an XLM-RoBERTa teacher and with an ALBERT teacher, each with a Unigram
/// tokenizer of its own (so the preset student learns from pooled hidden states, as with any teacher whose ids are
/// not the student's): baseline, distillation, pruning and quantization complete; the teacher's folders
/// load in transformers as its own class; every pruning method and every quantizer runs on the teachers.
@Suite("XLM-RoBERTa and ALBERT teachers through the pipeline", .serialized)
struct ModelFamilyPipelineTests {
    static let slice = ["--data_path", Fixtures.bundledData.path, "--data_fraction", "0.03", "--num_folds", "2",
                        "--epochs", "1", "--fine_tune_epochs", "1", "--calib_samples", "32", "--quant_calibration_batches", "2",
                        "--max_length", "64", "--threads", "1"]

    /// A small random teacher folder of `type` with a SentencePiece Unigram tokenizer.json of its own
    /// (Fixtures/unigram, made by scripts/fixtures/make_unigram_tokenizers.py): XLM-R's <pad> is id 1, so
    /// its positions count from 2; ALBERT's is 0.
    static func teacher(_ type: ModelConfig.ModelType, in folder: URL) throws -> URL {
        let tokenizerFolder = Fixtures.url(type == .xlmRoberta ? "unigram/xlmr-nmt-nfkc-1000" : "unigram/albert-nfkc-cf-800")
        let tokenizer = try TokenizerFolder.load(tokenizerFolder)
        #expect(tokenizer is PipelineTokenizer && tokenizer.padId == (type == .xlmRoberta ? 1 : 0))
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

    @Test("baseline_kd_prune_quant completes with the teacher, the pruning methods and quantizers run on it, and transformers loads its folders as its class",
          arguments: [ModelConfig.ModelType.xlmRoberta, .albert])
    func fullPipeline(type: ModelConfig.ModelType) throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let teacher = try Self.teacher(type, in: folder)
        // One baseline; every other run starts from a copy of it with --resume (as AllPipelinesTests does).
        let baselineRun = folder.appendingPathComponent("baseline")
        try Self.run(.baseline, teacher: teacher, into: baselineRun)
        func resumed(_ name: String, _ pipeline: PipelineName, _ extra: [String]) throws -> URL {
            let output = folder.appendingPathComponent(name)
            try FileManager.default.copyItem(at: baselineRun, to: output)
            try Self.run(pipeline, teacher: teacher, into: output, extra + ["--resume"])
            return output
        }
        let output = try resumed("full", .baseline_kd_prune_quant, [])
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

        // Every pruner and quantizer on one teacher or the other (structured on both), their folders of its
        // model type (magnitude and dynamic ran above, on both).
        let pruners = type == .albert ? ["gradual", "structured"] : ["wanda", "structured"]
        let quantizers = type == .albert ? ["int4"] : ["static", "fp16"]
        var checked = [baseline]
        for method in pruners {
            let run = try resumed("prune-\(method)", .baseline_prune, ["--prune_method", method])
            let pruned = run.appendingPathComponent(try Recipe.builtIn(.baseline_prune).stageTag)
            let model = try Classifier.load(from: pruned)
            #expect(model.config.modelType == type, "\(method)")
            #expect(model.nonZeroParameterCount < fineTuned.parameterCount, "\(method) removed nothing")
            checked.append(pruned)
        }
        for method in quantizers {
            let run = try resumed("quant-\(method)", .baseline_quant, ["--quant_method", method])
            let rows = try PipelineSummary.read(from: run.appendingPathComponent("pipeline_summary_baseline_quant.csv")).rows
            #expect(rows.map(\.stage) == ["baseline", "quantize_\(method)"])
            #expect(rows.allSatisfy { $0.macroF1.isFinite && $0.macroF1 > 0 }, "\(method)")
            checked.append(run.appendingPathComponent(try Recipe.builtIn(.baseline_quant).stageTag))
        }

        // predict reads each folder through the teacher's own tokenizer; transformers loads them as the teacher's class.
        let texts = try CommentTexts.load(contentsOf: Fixtures.bundledData, options: CommentCSVOptions(), logger: nil).texts.prefix(12).map { $0 }
        var folders: [[String: Any]] = []
        for model in checked {
            let probabilities = try AllPipelinesTests.predict(model, texts, scratch: folder)
            #expect(probabilities.count == texts.count && probabilities.allSatisfy { (0...1).contains($0) })
            let config = try ModelConfig.read(model.appendingPathComponent("config.json"))
            folders.append(["path": model.path, "sankshep": probabilities, "tolerance": config.raw["quantization_config"] == nil ? 1e-5 : 1e-2])
        }
        guard PythonEnvironment.available else { return }
        let manifest = folder.appendingPathComponent("manifest.json")
        try JSONSerialization.data(withJSONObject: ["texts": texts, "max_length": 64, "folders": folders]).write(to: manifest)
        let result = try PythonEnvironment.run("check_final_folders.py", [manifest.path])
        let lines = result.standardOutput.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(lines.count == folders.count, "\(result.standardError.suffix(2000))")
        for line in lines {
            #expect(line["ok"] as? Bool == true, "\(line.filter { $0.key != "transformers" })")
            #expect(line["model_class"] as? String == type.sequenceClassificationClass, "\(line["path"] ?? "")")
        }
        #expect(result.status == 0, "\(result.standardError.suffix(2000))")
    }
}
