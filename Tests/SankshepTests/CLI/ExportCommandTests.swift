import Foundation
import Testing
@testable import Host

@Suite("sankshep export and the saved max_length", .serialized)
struct ExportCommandTests {
    static let texts = ["তুমি খুব ভালো মানুষ", "এই লোকটা একটা চোর আর সবাই মিলে কাজ করি তোর মত বেয়াদব আর দেখি নাই ধন্যবাদ সবাইকে"]

    func classifier() throws -> Classifier {
        let preset = ModelPreset(name: "test-tiny", summary: "", hiddenSize: 16, layers: 1, heads: 2,
                                 intermediateSize: 32, maxPositions: 64, learningRate: 3e-3, epochs: 1, batchSize: 16)
        return try Classifier.fromPreset(preset, tokenizerDirectory: Fixtures.bundledTokenizer, dropout: 0.1, pooling: .cls, seed: 3)
    }

    func predict(_ arguments: [String], in folder: URL) throws -> [Double] {
        let output = folder.appendingPathComponent("predictions-\(UUID().uuidString).jsonl")
        let command = try PredictCommand.parseAsRoot(arguments + ["--output", output.path] + Self.texts.flatMap { ["--text", $0] }) as! PredictCommand
        try command.run()
        return try String(contentsOf: output, encoding: .utf8).split(separator: "\n").map { line in
            try #require((try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["probability"] as? Double)
        }
    }

    @Test("predict cuts comments at the max_length saved in sankshep.json unless --max_length is given")
    func savedMaxLengthIsTheDefault() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = try classifier()
        model.maxLength = 6
        // A random head barely tells comments apart: a steeper one makes the cut visible.
        let head = model.network.store.pointer(model.network.names.headOutput + ".weight")
        for i in 0..<16 { head[i] *= 200 }
        let expectedAt64 = try model.probabilities(of: Self.texts, maxLength: 64, batchSize: 2).map(Double.init)
        let modelFolder = folder.appendingPathComponent("model")
        try model.save(to: modelFolder)
        #expect(SankshepSettings.read(from: modelFolder)?.maxLength == 6)
        #expect(try Classifier.load(from: modelFolder).maxLength == 6)
        let expected = try model.probabilities(of: Self.texts, maxLength: 6, batchSize: 2).map(Double.init)
        let atSaved = try predict(["--model", modelFolder.path], in: folder)
        for (a, e) in zip(atSaved, expected) { #expect(abs(a - e) < 1e-6) }
        // The long comment is cut: at 64 tokens it gets another probability.
        let atGiven = try predict(["--model", modelFolder.path, "--max_length", "64"], in: folder)
        for (a, e) in zip(atGiven, expectedAt64) { #expect(abs(a - e) < 1e-6) }
        #expect(abs(expectedAt64[1] - expected[1]) > 1e-5, "\(expectedAt64) vs \(expected)")
        // A folder without it (from elsewhere) uses 128.
        var settings = try #require(SankshepSettings.read(from: modelFolder))
        settings.maxLength = nil
        try settings.write(to: modelFolder)
        let atDefault = try predict(["--model", modelFolder.path], in: folder)
        for (a, g) in zip(atDefault, atGiven) { #expect(abs(a - g) < 1e-6) }
    }

    @Test("export writes a quantized model's dequantized transformers folder and its own format, each loading back")
    func exportsQuantized() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let registry = try PluginTestSupport.builtInRegistry()
        let model = try QuantizedClassifier.quantize(try classifier(), method: registry.quantizer(named: "dynamic"), options: [:],
                                                     registry: registry, calibration: nil, seed: 1, logger: nil)
        let modelFolder = folder.appendingPathComponent("model")
        try model.save(to: modelFolder, extra: ["stage": "quantize_dynamic"])
        let quantized = try predict(["--model", modelFolder.path], in: folder)
        for format in ["transformers", "sankshep", "compressed-tensors"] {
            let output = folder.appendingPathComponent(format)
            let command = try ExportCommand.parseAsRoot(["--model", modelFolder.path, "--format", format, "--output", output.path]) as! ExportCommand
            try command.run()
            #expect(SankshepSettings.read(from: output)?.extra["stage"] == "quantize_dynamic")
            let probabilities = try predict(["--model", output.path], in: folder)
            // The dequantized folder runs float activations; the others the plugin's.
            for (p, q) in zip(probabilities, quantized) { #expect(format == "transformers" ? abs(p - q) < 0.05 : p == q, "\(format)") }
        }
        let float = try Classifier.load(from: folder.appendingPathComponent("transformers"))
        #expect(float.config.raw["quantization_config"] == nil)
        #expect(!QuantizedClassifier.isQuantizedFolder(folder.appendingPathComponent("transformers")))
    }

    @Test("export refuses, in one line, a format the model has no form in and an output that is the model folder")
    func refusals() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try classifier().save(to: folder)
        #expect(throws: (any Error).self) { _ = try ExportCommand.parseAsRoot(["--model", folder.path, "--format", "transformers", "--output", folder.path + "/"]) }
        #expect(throws: (any Error).self) { _ = try ExportCommand.parseAsRoot(["--model", folder.path, "--format", "onnx", "--output", "/tmp/x"]) }
        let command = try ExportCommand.parseAsRoot(["--model", folder.path, "--format", "sankshep", "--output", folder.appendingPathComponent("out").path]) as! ExportCommand
        do {
            try command.run()
            Issue.record("a float model was written in the quantized format")
        } catch {
            #expect("\(error)".contains("float model") && !"\(error)".contains("\n"), "\(error)")
        }
    }
}
