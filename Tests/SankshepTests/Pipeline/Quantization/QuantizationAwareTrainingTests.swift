import Foundation
import Logging
import Testing
@testable import Host

@Suite("Quantization-aware training: train for a quantizer, convert to its layers", .serialized)
struct QuantizationAwareTrainingTests {
    static let texts = QuantizedClassifierTests.texts
    static let labels = [0, 1, 0, 0, 1]
    static let settings = TrainingSettings(batchSize: 2, learningRate: 3e-3, epochs: 2, warmupRatio: 0, weightDecay: 0.01,
                                           gradientClipNorm: 1, earlyStoppingPatience: 5, scheduler: .linear, loss: .bce,
                                           focalAlpha: 0.25, focalGamma: 2, useClassWeights: false, freezeBase: false, seed: 3)

    static func train(_ classifier: Classifier, _ sequences: [[Int]], for method: QuantizerMethod, options: [String: String] = [:],
                      registry: PluginRegistry) throws -> QuantizationAwareTraining.Outcome {
        let rows = Array(sequences.indices)
        return try QuantizationAwareTraining.train(classifier, for: method, options: options, registry: registry, sequences: sequences,
                                                   labels: labels, train: rows, validation: rows, calibration: rows, settings: settings,
                                                   label: "test", logger: Logger(label: "test"))
    }

    @Test("static, int4 and a third-party C quantizer: trained weights move, tables stay as quantized, the converted model gives the fake-quantized model's outputs and saves as the post-training one does",
          arguments: ["static", "int4", "qat-rows"])
    func trainAndConvert(method name: String) throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let plugins = try PluginTestSupport.makeFolder()
        let thirdParty = try PluginTestSupport.compile(sourceFile: Fixtures.url("plugins/qat_rows_quantizer.c").path, name: "qat_rows", in: plugins)
        let registry = try PluginTestSupport.builtInRegistry(plus: [thirdParty])
        let method = try registry.quantizer(named: name)
        let (classifier, sequences) = try QuantizedClassifierTests().makeClassifier()
        let before = Array(UnsafeBufferPointer(start: classifier.network.store.values, count: classifier.network.store.count))
        let outcome = try Self.train(classifier, sequences, for: method, registry: registry)
        let model = outcome.model
        // The given classifier is left as it was.
        #expect(Array(UnsafeBufferPointer(start: classifier.network.store.values, count: classifier.network.store.count)) == before)
        #expect(outcome.training.history.count == 2)
        #expect(outcome.checkedRows == Self.texts.count && outcome.largestDifference < 1e-4, "\(outcome.largestDifference)")
        let linear = model.weights.filter { $0.record.role == .linear }
        #expect(linear.count == 4 && linear.allSatisfy { $0.record.method == name })

        // Tables are the post-training quantizer's, unchanged by training.
        let ptq = try QuantizedClassifier.quantize(classifier, method: method, options: [:], registry: registry,
                                                   calibration: (sequences, Array(sequences.indices), 2), seed: 1, logger: nil)
        let word = classifier.network.names.wordEmbeddings
        #expect(model.float.network.store.tensor(word).scalars == ptq.float.network.store.tensor(word).scalars)
        // The linear weights were trained.
        let ffn = classifier.network.names.layers[0].ffnIn + ".weight"
        #expect(model.float.network.store.tensor(ffn).scalars != ptq.float.network.store.tensor(ffn).scalars)

        let directory = folder.appendingPathComponent("qat")
        try model.save(to: directory, extra: ["stage": "quantize_qat"])
        let loaded = try #require(try loadDeployableModel(from: directory, registry: registry) as? QuantizedClassifier)
        #expect(loaded.method == name)
        let rows = Array(sequences.indices)
        #expect(try loaded.probabilities(sequences: sequences, rows: rows, batchSize: 2) == (try model.probabilities(sequences: sequences, rows: rows, batchSize: 2)))
        // The built-in methods write the same compressed-tensors folder as their post-training path.
        let huggingFace = QuantizedClassifier.quantizedWeightsFile(in: directory)?.huggingFace
        #expect(huggingFace == (name != "qat-rows"))
    }

    @Test("a quantizer without the extension is refused before any training, in one line")
    func refusedWithoutExtension() throws {
        let registry = try PluginTestSupport.builtInRegistry()
        let (classifier, sequences) = try QuantizedClassifierTests().makeClassifier()
        let error = #expect(throws: PluginError.self) { _ = try Self.train(classifier, sequences, for: registry.quantizer(named: "dynamic"), registry: registry) }
        #expect(error?.description.contains("quantizer 'dynamic'") == true && error?.description.contains("offers no quantization-aware training") == true)

        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let command = try RunCommand.parseAsRoot(["--pipeline", "baseline_quant", "--quant_method", "qat", "--qat_quantizer", "fp16",
                                                  "--data_path", Fixtures.bundledData.path, "--data_fraction", "0.03", "--num_folds", "2",
                                                  "--epochs", "1", "--output_dir", folder.path, "--threads", "1"]) as! RunCommand
        let refusal = #expect(throws: RecipeError.self) { try command.run() }
        #expect(refusal?.description == "--pipeline baseline_quant: --qat_quantizer: quantizer 'fp16' (sankshep-quant) offers no quantization-aware training (no sankshep.qat/1 extension); qat can train for int4, static")
        // Nothing was trained.
        let files = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        #expect(!files.contains { $0.hasPrefix("fold_summary_") }, "\(files)")
    }

    @Test("baseline_quant --quant_method qat on a slice: a quantize_qat row, a static folder, and predict gives the converted model's outputs")
    func endToEnd() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let command = try RunCommand.parseAsRoot(["--pipeline", "baseline_quant", "--quant_method", "qat", "--qat_epochs", "1",
                                                  "--quant_calibration_batches", "2", "--data_path", Fixtures.bundledData.path,
                                                  "--data_fraction", "0.03", "--num_folds", "2", "--epochs", "1",
                                                  "--output_dir", folder.path, "--threads", "1"]) as! RunCommand
        try command.run()
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path)
        let summaryName = try #require(files.first { $0.hasPrefix("pipeline_summary_") })
        let summary = try String(contentsOf: folder.appendingPathComponent(summaryName), encoding: .utf8)
        #expect(summary.split(separator: "\n").count == 3 && summary.contains("quantize_qat"), "\(summary)")
        let final = folder.appendingPathComponent(try #require(files.first { $0.hasPrefix("final_") }))
        let registry = try PluginTestSupport.builtInRegistry()
        let model = try #require(try loadDeployableModel(from: final, registry: registry) as? QuantizedClassifier)
        #expect(model.method == "static" && model.summary.hasSuffix("static"))
        let expected = try model.probabilities(of: Self.texts, maxLength: 64, batchSize: 8)
        let output = folder.appendingPathComponent("predictions.jsonl")
        let predict = try PredictCommand.parseAsRoot(["--model", final.path, "--output", output.path, "--max_length", "64"]
                                                     + Self.texts.flatMap { ["--text", $0] }) as! PredictCommand
        try predict.run()
        let lines = try String(contentsOf: output, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == Self.texts.count)
        for (line, probability) in zip(lines, expected) {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(abs((object["probability"] as? Double ?? -1) - Double(probability)) < 1e-6)
        }
    }
}
