import Foundation
import Testing
@testable import Host

@Suite("Quantized classifier and the quantize stage", .serialized)
struct QuantizedClassifierTests {
    static let preset = ModelPreset(name: "test-quant", summary: "", hiddenSize: 32, layers: 1, heads: 2,
                                    intermediateSize: 64, maxPositions: 64, learningRate: 3e-3, epochs: 1, batchSize: 16)
    static let texts = ["তুমি খুব ভালো মানুষ", "এই লোকটা একটা চোর", "ধন্যবাদ", "সবাই মিলে কাজ করি", "তোর মত বেয়াদব আর দেখি নাই"]

    func makeClassifier() throws -> (Classifier, [[Int]]) {
        let classifier = try Classifier.fromPreset(Self.preset, tokenizerDirectory: Fixtures.bundledTokenizer, dropout: 0.1, pooling: .cls, seed: 5)
        classifier.threshold = 0.4
        return (classifier, Self.texts.map { classifier.tokenizer.encode($0, maxLength: 64) })
    }

    @Test("each method: save then load gives identical outputs, close to the float model, in a smaller file", arguments: ["dynamic", "static", "int4", "fp16"])
    func saveLoadIdentical(method name: String) throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let registry = try PluginTestSupport.builtInRegistry()
        let (classifier, sequences) = try makeClassifier()
        let rows = Array(sequences.indices)
        let floatProbabilities = try classifier.probabilities(sequences: sequences, rows: rows, batchSize: 2)
        let floatCopy = classifier.network.store.tensor(classifier.network.names.wordEmbeddings)
        let model = try QuantizedClassifier.quantize(classifier, method: registry.quantizer(named: name), options: [:], registry: registry,
                                                     calibration: (sequences, rows, 2), seed: 1, logger: nil)
        // The float classifier is left as it was.
        #expect(classifier.network.store.tensor(classifier.network.names.wordEmbeddings).scalars == floatCopy.scalars)
        #expect(classifier.network.linearHook == nil)
        let quantized = try model.probabilities(sequences: sequences, rows: rows, batchSize: 2)
        #expect(model.hook.failure == nil)
        for (q, f) in zip(quantized, floatProbabilities) { #expect(abs(q - f) < 0.05, "\(name): \(q) vs float \(f)") }
        // 4 encoder linear layers (Q/K/V fused) and 3 tables.
        #expect(model.weights.filter { $0.record.role == .linear }.count == 4)
        #expect(model.weights.filter { $0.record.role == .table }.count == 3)

        let directory = folder.appendingPathComponent("quantized")
        try model.save(to: directory, extra: ["stage": "quantize"])
        let loaded = try #require(try loadDeployableModel(from: directory, registry: registry) as? QuantizedClassifier)
        #expect(loaded.threshold == 0.4)
        #expect(loaded.method == name)
        #expect(try loaded.probabilities(sequences: sequences, rows: rows, batchSize: 2) == quantized)
        #expect(try loaded.probabilities(sequences: sequences, rows: rows, batchSize: 5) == (try model.probabilities(sequences: sequences, rows: rows, batchSize: 5)))

        // The file names each layer's method, plugin and format version.
        let file = try SafeTensorsFile(contentsOf: directory.appendingPathComponent("model.safetensors"))
        #expect(file.metadata["sankshep.layout"] == QuantizedLayout.metadataTag)
        let records = try JSONDecoder().decode([QuantizedLayerRecord].self, from: Data(file.metadata["sankshep.layers"]!.utf8))
        let expectedTableMethod = name == "static" ? "dynamic" : name
        for record in records {
            #expect(record.method == (record.role == .linear ? name : expectedTableMethod))
            #expect(record.plugin == "sankshep-quant" && record.formatVersion == "1")
        }
        // Quantized: far smaller than the float weights.
        let floatFolder = folder.appendingPathComponent("float")
        try classifier.save(to: floatFolder)
        let size = { (url: URL) in try (FileManager.default.attributesOfItem(atPath: url.path)[.size] as! NSNumber).doubleValue }
        let ratio = try size(directory.appendingPathComponent("model.safetensors")) / size(floatFolder.appendingPathComponent("model.safetensors"))
        // int4's embeddings keep their 4-bit values in int8 storage (transformers builds no Embedding
        // from packed weights), so it is not half of int8's size.
        #expect(ratio < (name == "fp16" ? 0.56 : name == "int4" ? 0.33 : 0.32), "\(name): \(ratio)")

        // The transformers export is a float Hugging Face folder with the dequantized weights.
        let exportFolder = folder.appendingPathComponent("exported")
        try ExportCommand.export(loaded, format: .transformers, extra: [:], to: exportFolder)
        let exported = try Classifier.load(from: exportFolder)
        let word = classifier.network.names.wordEmbeddings
        #expect(exported.network.store.tensor(word).scalars == loaded.float.network.store.tensor(word).scalars)
        let exportedProbabilities = try exported.probabilities(sequences: sequences, rows: rows, batchSize: 2)
        for (e, q) in zip(exportedProbabilities, quantized) { #expect(abs(e - q) < 0.05) }
    }

    /// The test INT8 quantizer (Fixtures/plugins) as a third party that declares its blobs' types
    /// through "sankshep.blob_types/1".
    static let typedQuantizerSource = """
        #define sankshep_plugin_entry fixture_entry
        #include "\(Fixtures.url("plugins/int8_rows_quantizer.c").path)"
        #undef sankshep_plugin_entry
        static uint32_t blob_type(const sk_method *m, const char *name) {
            (void)m;
            if (strcmp(name, "qweight") == 0) return SK_BLOB_I8;
            if (strcmp(name, "scales") == 0 || strcmp(name, "bias") == 0) return SK_BLOB_F32;
            return SK_BLOB_U8;
        }
        static const sk_blob_types_ext blob_types = { sizeof(sk_blob_types_ext), blob_type };
        static const void *get_extension(const sk_method *m, const char *id) {
            (void)m; return strcmp(id, SK_EXT_BLOB_TYPES) == 0 ? &blob_types : NULL;
        }
        static sk_method typed_method;
        static uint32_t typed_count(void) { return 1; }
        static const sk_method *typed_at(uint32_t i) { return i == 0 ? &typed_method : NULL; }
        static sk_plugin_entry typed_entry;
        SK_EXPORT const sk_plugin_entry *sankshep_plugin_entry(uint32_t v) {
            (void)v;
            typed_method = method;
            typed_method.name = "int8-rows-typed";
            typed_method.get_extension = get_extension;
            typed_entry = entry;
            typed_entry.name = "test-int8-rows-typed";
            typed_entry.method_count = typed_count;
            typed_entry.method_at = typed_at;
            return &typed_entry;
        }
        """

    @Test("a third-party quantizer's blobs are stored with the types its blob_types extension declares, raw bytes without it")
    func thirdPartyBlobTypes() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let plugins = try PluginTestSupport.makeFolder()
        let typed = try PluginTestSupport.compile(source: Self.typedQuantizerSource, name: "int8_rows_typed", in: plugins)
        let untyped = try PluginTestSupport.compile(sourceFile: Fixtures.url("plugins/int8_rows_quantizer.c").path, name: "int8_rows", in: plugins)
        let registry = try PluginTestSupport.builtInRegistry(plus: [typed, untyped])
        let (classifier, sequences) = try makeClassifier()
        let rows = Array(sequences.indices)
        for (method, expected) in [("int8-rows-typed", ["qweight": SafeTensorsDType.i8, "scales": .f32]), ("int8-rows", ["qweight": .u8, "scales": .u8])] {
            let model = try QuantizedClassifier.quantize(classifier, method: registry.quantizer(named: method), options: [:], registry: registry,
                                                         calibration: nil, seed: 1, logger: nil)
            let directory = folder.appendingPathComponent(method)
            try model.save(to: directory, extra: [:])
            let file = try SafeTensorsFile(contentsOf: directory.appendingPathComponent(QuantizedClassifier.weightsFileName))
            let blobs = file.entries.filter { $0.name.contains(":") }
            #expect(blobs.count == 8, "\(method): 4 linear layers of 2 blobs")
            for entry in blobs {
                let blob = String(entry.name.split(separator: ":").last ?? "")
                #expect(entry.dtype == expected[blob], "\(method): \(entry.name)")
            }
            // The bytes are the same either way: the model loads back and gives the same outputs.
            let loaded = try #require(try loadDeployableModel(from: directory, registry: registry) as? QuantizedClassifier)
            #expect(try loaded.probabilities(sequences: sequences, rows: rows, batchSize: 2)
                    == (try model.probabilities(sequences: sequences, rows: rows, batchSize: 2)))
        }
    }

    @Test("a model quantized by a method whose plugin is absent fails to load in one line naming the method")
    func missingPlugin() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let registry = try PluginTestSupport.builtInRegistry()
        let (classifier, _) = try makeClassifier()
        let model = try QuantizedClassifier.quantize(classifier, method: registry.quantizer(named: "int4"), options: ["group_size": "32"],
                                                     registry: registry, calibration: nil, seed: 1, logger: nil)
        try model.save(to: folder, extra: [:])
        let empty = try PluginRegistry(searchPath: PluginSearchPath(explicit: [], environment: nil, executableFolder: nil))
        do {
            _ = try loadDeployableModel(from: folder, registry: empty)
            Issue.record("loaded without the Quant plugin")
        } catch {
            let message = "\(error)"
            #expect(message.contains("'int4'"), "\(message)")
            #expect(message.contains("model.safetensors"), "\(message)")
            #expect(!message.contains("\n"))
        }
    }

    @Test("predict reads a quantized folder and gives the quantized model's probabilities")
    func predictQuantized() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let registry = try PluginTestSupport.builtInRegistry()
        let (classifier, sequences) = try makeClassifier()
        let model = try QuantizedClassifier.quantize(classifier, method: registry.quantizer(named: "dynamic"), options: [:],
                                                     registry: registry, calibration: nil, seed: 1, logger: nil)
        let expected = try model.probabilities(sequences: sequences, rows: Array(sequences.indices), batchSize: 64)
        let modelFolder = folder.appendingPathComponent("model")
        try model.save(to: modelFolder, extra: [:])
        let output = folder.appendingPathComponent("predictions.jsonl")
        let command = try PredictCommand.parseAsRoot(["--model", modelFolder.path, "--output", output.path, "--max_length", "64"]
                                                     + Self.texts.flatMap { ["--text", $0] }) as! PredictCommand
        try command.run()
        let lines = try String(contentsOf: output, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == Self.texts.count)
        for (index, line) in lines.enumerated() {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            #expect(abs((object["probability"] as! Double) - Double(expected[index])) < 1e-6)
        }
    }

    @Test("calibration rows come from the best fold's training rows, never its held-out ones, whichever fold is best")
    func calibrationRowsAreTraining() {
        let folds = [FoldSplit(train: [2, 3, 4, 5], validation: [0, 1]), FoldSplit(train: [0, 1, 4, 5], validation: [2, 3]),
                     FoldSplit(train: [0, 1, 2, 3], validation: [4, 5])]
        for best in 1...3 {
            let rows = QuantizationStage.calibrationRows(folds: folds, bestFold: best, count: 3, seed: 42)
            #expect(rows.count == 3 && Set(rows).isSubset(of: folds[best - 1].train), "fold \(best): \(rows)")
        }
    }

    @Test("baseline_quant on a slice of the bundled data adds a smaller quantized stage row and its folders")
    func stageEndToEnd() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let command = try RunCommand.parseAsRoot(["--pipeline", "baseline_quant", "--quant_method", "static", "--quant_calibration_batches", "2",
                                                  "--data_path", Fixtures.bundledData.path, "--data_fraction", "0.03",
                                                  "--num_folds", "2", "--epochs", "1", "--output_dir", folder.path, "--threads", "1"]) as! RunCommand
        try command.run()
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path)
        let summaryName = try #require(files.first { $0.hasPrefix("pipeline_summary_") })
        let lines = try String(contentsOf: folder.appendingPathComponent(summaryName), encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 3, "\(lines)")   // header, baseline, quantize
        let quantizedFolders = files.filter { name in QuantizedClassifier.isQuantizedFolder(folder.appendingPathComponent(name)) }
        #expect(!quantizedFolders.isEmpty, "\(files)")
        for name in quantizedFolders {
            let model = try loadDeployableModel(from: folder.appendingPathComponent(name), registry: PluginTestSupport.builtInRegistry())
            #expect(model.summary.hasSuffix("static"))
        }
        // The final folder is the quantized model itself, with no export sub-folder, and its model card
        // loads it at its top level.
        let final = try #require(files.first { $0.hasPrefix("final_") })
        let finalFiles = try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent(final).path)
        #expect(!finalFiles.contains { QuantizedClassifier.legacyExportFolders.contains($0) }, "\(finalFiles)")
        let card = try String(contentsOf: folder.appendingPathComponent(final).appendingPathComponent("README.md"), encoding: .utf8)
        #expect(card.contains("from_pretrained(\"\(final)\")") && card.contains("`compressed-tensors`"), "\(card)")
    }
}
