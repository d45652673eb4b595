import Foundation
import Testing
@testable import Host

@Suite("A quantized classifier's folder in compressed-tensors' layout", .serialized)
struct QuantizedLayoutTests {
    /// A quantized copy of the small test classifier, saved into a fresh folder. `sparse` names
    /// modules its config announces as sparse-bitmask, as a pruned model's does.
    func quantizedFolder(_ method: String, options: [String: String] = [:], sparse: [String] = []) throws
        -> (model: QuantizedClassifier, folder: URL, sequences: [[Int]]) {
        let registry = try PluginTestSupport.builtInRegistry()
        let (classifier, sequences) = try QuantizedClassifierTests().makeClassifier()
        if !sparse.isEmpty { classifier.config.raw["quantization_config"] = SparseBitmask.quantizationConfig(targets: sparse, globalSparsity: 0.5) }
        let model = try QuantizedClassifier.quantize(classifier, method: registry.quantizer(named: method), options: options, registry: registry,
                                                     calibration: (sequences, Array(sequences.indices), 2), seed: 1, logger: nil)
        let folder = try Fixtures.temporaryFolder()
        try model.save(to: folder, extra: ["stage": "quantize"])
        return (model, folder, sequences)
    }

    /// The folder `transformers` loads is the stage folder itself.
    func export(_ folder: URL) -> URL { folder }

    @Test("dynamic, static and int4 store each linear layer's integer weights under the names, dtypes and shapes of compressed-tensors",
          arguments: ["dynamic", "static", "int4"])
    func tensorLayout(method: String) throws {
        let (model, folder, _) = try quantizedFolder(method, options: method == "int4" ? ["group_size": "32"] : [:])
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = try SafeTensorsFile(contentsOf: export(folder).appendingPathComponent("model.safetensors"))
        #expect(file.metadata["format"] == "pt")
        let names = model.float.network.names
        let layer = names.layers[0]
        // (hidden 32, FFN 64): Q, K, V come apart again, each 32 x 32.
        for (module, rows, cols) in [(layer.query, 32, 32), (layer.key, 32, 32), (layer.value, 32, 32), (layer.attentionOutput, 32, 32),
                                     (layer.ffnIn, 64, 32), (layer.ffnOut, 32, 64)] {
            let scale = try #require(file.entry(named: module + ".weight_scale"), "\(module)")
            #expect(scale.dtype == .f32)
            if method == "int4" {
                #expect(file.entry(named: module + ".weight") == nil)
                #expect(file.entry(named: module + ".weight_packed").map { [$0.dtype.rawValue, "\($0.shape)"] } == ["I32", "\([rows, cols / 8])"])
                #expect(file.entry(named: module + ".weight_shape").map { [$0.dtype.rawValue, "\($0.shape)"] } == ["I64", "[2]"])
                #expect(try file.integers(named: module + ".weight_shape").values == [rows, cols])
                #expect(scale.shape == [rows, cols / 32])
            } else {
                #expect(file.entry(named: module + ".weight").map { [$0.dtype.rawValue, "\($0.shape)"] } == ["I8", "\([rows, cols])"])
                #expect(scale.shape == [rows, 1])
            }
            let inputScale = file.entry(named: module + ".input_scale")
            #expect((inputScale?.shape == [1]) == (method == "static"), "\(module)")
            #expect(file.entry(named: module + ".weight_zero_point") == nil && file.entry(named: module + ".input_zero_point") == nil)
            // The bias stays float under its own name.
            #expect(file.entry(named: module + ".bias")?.dtype == .f32)
        }
        // The shared input of the fused Q/K/V has one static scale: each of the three gets it.
        if method == "static" {
            let scales = try [layer.query, layer.key, layer.value].map { try file.tensor(named: $0 + ".input_scale").scalars }
            #expect(scales[0] == scales[1] && scales[1] == scales[2] && scales[0][0] > 0)
        }
        // The tables (embeddings, the head's hidden layer) are int8 codes with their scales (int4's
        // 4-bit values in int8 storage, one scale per group); the final classifier is float32.
        for table in [names.wordEmbeddings, names.positionEmbeddings, names.headHidden + ".weight"] {
            #expect(file.entry(named: table)?.dtype == .i8, "\(table)")
            let module = String(table.dropLast(".weight".count))
            // One scale per row: int8's channel, or int4's one group of 32 over the 32 columns.
            #expect(file.entry(named: module + ".weight_scale")?.shape.last == 1, "\(table)")
        }
        #expect(file.entry(named: names.headOutput + ".weight")?.dtype == .f32)
        // No second copy of the weights: one weights file, no export sub-folders.
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        #expect(files == ["config.json", "model.safetensors", "sankshep.json", "tokenizer_config.json", "vocab.txt"], "\(files)")
    }

    @Test("int8 codes and unpacked int4 values times their exported scales give back the quantized model's weights",
          arguments: ["dynamic", "int4"])
    func unpackingGivesTheWeights(method: String) throws {
        let (model, folder, sequences) = try quantizedFolder(method, options: method == "int4" ? ["group_size": "32"] : [:])
        defer { try? FileManager.default.removeItem(at: folder) }
        // Sankshep reads the folder back as a float model, dequantizing every layer (w = value · scale).
        let reloaded = try Classifier.load(from: export(folder))
        let store = model.float.network.store
        var inexact = 0, total = 0
        for record in model.weights.map(\.record) where record.role == .linear {
            for name in record.weights {
                let expected = store.tensor(name).scalars, actual = reloaded.network.store.tensor(name).scalars
                for (e, a) in zip(expected, actual) {
                    total += 1
                    if e != a { inexact += 1 }
                    // INT8: the same product q · scale. INT4: compressed-tensors keeps one float scale
                    // s · D per group, and Sankshep dequantizes as (u − 8) · fl(s · D) too.
                    #expect(e == a, "\(name): \(a) vs \(e)")
                }
            }
        }
        #expect(total == 4 * 32 * 32 + 2 * 64 * 32)
        #expect(inexact == 0)
        // Everything else (the tables as the quantized model looks them up) is the quantized model's
        // float parameters as they are.
        for view in store.views where !model.weights.contains(where: { $0.record.role == .linear && $0.record.weights.contains(view.name) }) {
            #expect(reloaded.network.store.tensor(view.name) == store.tensor(view.name), "\(view.name)")
        }
        #expect(reloaded.threshold == model.threshold)
        // Read back as float, it is saved as float: the quantization_config no longer applies.
        #expect(reloaded.config.raw["quantization_config"] == nil)
        let resaved = folder.appendingPathComponent("resaved")
        try reloaded.save(to: resaved)
        #expect(try SafeTensorsFile(contentsOf: resaved.appendingPathComponent("model.safetensors")).entries.allSatisfy { $0.dtype == .f32 })
        let rows = Array(sequences.indices)
        for (r, q) in zip(try reloaded.probabilities(sequences: sequences, rows: rows, batchSize: 2),
                          try model.probabilities(sequences: sequences, rows: rows, batchSize: 2)) {
            #expect(abs(r - q) < 0.05)
        }
    }

    @Test("config.json announces the method's scheme for the encoder's linear layers and a weights-only one for the tables",
          arguments: ["dynamic", "static", "int4"])
    func quantizationConfig(method: String) throws {
        let (model, folder, _) = try quantizedFolder(method, options: method == "int4" ? ["group_size": "32"] : [:])
        defer { try? FileManager.default.removeItem(at: folder) }
        let config = try ModelConfig.read(export(folder).appendingPathComponent("config.json"))
        let quantization = try #require(config.raw["quantization_config"]?.objectValue)
        #expect(quantization["quant_method"] == .string("compressed-tensors"))
        #expect(quantization["quantization_status"] == .string("compressed"))
        #expect(quantization["sparsity_config"] == nil)
        let format = method == "int4" ? "pack-quantized" : "int-quantized"
        // int4's tables are int-quantized (transformers builds no Embedding from packed weights).
        #expect(quantization["format"] == .string(method == "int4" ? "mixed-precision" : "int-quantized"))
        let names = model.float.network.names
        #expect(quantization["ignore"] == .array([.string(names.headOutput)]))
        let groups = try #require(quantization["config_groups"]?.objectValue)
        #expect(groups.count == 2)
        // The tables come first (quantized first), then the encoder's linear layers.
        let tables = try #require(groups["group_0"]?.objectValue), group = try #require(groups["group_1"]?.objectValue)
        let tableModules = [names.wordEmbeddings, names.positionEmbeddings, names.headHidden + ".weight"].map { String($0.dropLast(".weight".count)) }
        #expect(tables["targets"] == .array(tableModules.map { .string($0) }))
        #expect(tables["input_activations"] == .null && tables["format"] == .string("int-quantized"))
        let layer = names.layers[0]
        #expect(group["targets"] == .array([layer.query, layer.key, layer.value, layer.attentionOutput, layer.ffnIn, layer.ffnOut].map { .string($0) }))
        #expect(group["format"] == .string(format))
        let weights = try #require(group["weights"]?.objectValue)
        let input = try #require(group["input_activations"]?.objectValue)
        #expect(weights["type"] == .string("int") && weights["symmetric"] == .bool(true) && weights["dynamic"] == .bool(false))
        #expect(input["num_bits"] == .int(8) && input["type"] == .string("int") && input["symmetric"] == .bool(true))
        switch method {
        case "int4":
            #expect(weights["num_bits"] == .int(4) && weights["strategy"] == .string("group") && weights["group_size"] == .int(32))
            #expect(input["strategy"] == .string("token") && input["dynamic"] == .bool(true))
        case "static":
            #expect(weights["num_bits"] == .int(8) && weights["strategy"] == .string("channel") && weights["group_size"] == .null)
            #expect(input["strategy"] == .string("tensor") && input["dynamic"] == .bool(false))
        default:
            #expect(weights["num_bits"] == .int(8) && weights["strategy"] == .string("channel"))
            #expect(input["strategy"] == .string("token") && input["dynamic"] == .bool(true))
        }
        #expect(SankshepSettings.read(from: folder)?.extra["quantization"] == method)
    }

    @Test("a pruned model's folder and its transformers export store its weights dense, without the sparse-bitmask entry")
    func prunedExportsAreDense() throws {
        let query = try QuantizedClassifierTests().makeClassifier().0.network.names.layers[0].query
        let (model, folder, _) = try quantizedFolder("dynamic", sparse: [query])
        defer { try? FileManager.default.removeItem(at: folder) }
        let dequantized = folder.appendingPathComponent("dequantized")
        try ExportCommand.export(model, format: .transformers, extra: [:], to: dequantized)
        #expect(try ModelConfig.read(dequantized.appendingPathComponent("config.json")).raw["quantization_config"] == nil)
        let float = try SafeTensorsFile(contentsOf: dequantized.appendingPathComponent("model.safetensors"))
        #expect(float.entry(named: query + ".weight")?.dtype == .f32 && float.entry(named: query + ".bitmask") == nil)
        let config = try ModelConfig.read(export(folder).appendingPathComponent("config.json"))
        #expect(config.raw["quantization_config"]?.objectValue?["sparsity_config"] == nil)
        let quantized = try SafeTensorsFile(contentsOf: export(folder).appendingPathComponent("model.safetensors"))
        #expect(quantized.entry(named: query + ".weight")?.dtype == .i8 && quantized.entry(named: query + ".bitmask") == nil)
    }

    @Test("fp16 is stored as F16 weights in a float32 model, without quantization_config; it has no compressed-tensors export")
    func fp16IsHalfPrecision() throws {
        let (int4, folder, sequences) = try quantizedFolder("int4")
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(try ModelConfig.read(folder.appendingPathComponent("config.json")).raw["quantization_config"] != nil)
        let (fp16, other, _) = try quantizedFolder("fp16")
        try? FileManager.default.removeItem(at: other)
        // Saved over the int4 folder, nothing of int4 is left.
        try fp16.save(to: folder, extra: [:])
        let config = try ModelConfig.read(folder.appendingPathComponent("config.json"))
        #expect(config.raw["quantization_config"] == nil && config.raw["dtype"] == .string("float32"))
        let file = try SafeTensorsFile(contentsOf: folder.appendingPathComponent("model.safetensors"))
        let names = fp16.float.network.names
        #expect(file.entry(named: names.layers[0].ffnIn + ".weight")?.dtype == .f16)
        #expect(file.entry(named: names.wordEmbeddings)?.dtype == .f16)
        #expect(!file.entries.contains { $0.name.hasSuffix("weight_packed") || $0.name.hasSuffix("weight_scale") })
        let loaded = try #require(try loadDeployableModel(from: folder, registry: PluginTestSupport.builtInRegistry()) as? QuantizedClassifier)
        let rows = Array(sequences.indices)
        #expect(try loaded.probabilities(sequences: sequences, rows: rows, batchSize: 2) == fp16.probabilities(sequences: sequences, rows: rows, batchSize: 2))
        #expect(try loaded.probabilities(sequences: sequences, rows: rows, batchSize: 2) != int4.probabilities(sequences: sequences, rows: rows, batchSize: 2))
        #expect(throws: ExportError.self) { try ExportCommand.export(loaded, format: .compressedTensors, extra: [:], to: other) }
    }

    @Test("Sankshep's own format, written on request, loads to the same outputs", arguments: ["static", "int4", "fp16"])
    func sankshepFormatRoundTrip(method: String) throws {
        let (model, folder, sequences) = try quantizedFolder(method)
        defer { try? FileManager.default.removeItem(at: folder) }
        let own = folder.appendingPathComponent("own")
        try ExportCommand.export(model, format: .sankshep, extra: [:], to: own)
        #expect(FileManager.default.fileExists(atPath: own.appendingPathComponent(QuantizedClassifier.weightsFileName).path))
        #expect(!FileManager.default.fileExists(atPath: own.appendingPathComponent("model.safetensors").path))
        let loaded = try #require(try loadDeployableModel(from: own, registry: PluginTestSupport.builtInRegistry()) as? QuantizedClassifier)
        let rows = Array(sequences.indices)
        #expect(try loaded.probabilities(sequences: sequences, rows: rows, batchSize: 2) == model.probabilities(sequences: sequences, rows: rows, batchSize: 2))
        // And back: the Hugging Face layout written from it is byte for byte the stage folder's weights.
        let again = folder.appendingPathComponent("again")
        try ExportCommand.export(loaded, format: method == "fp16" ? .transformers : .compressedTensors, extra: [:], to: again)
        if method != "fp16" {
            #expect(try Data(contentsOf: again.appendingPathComponent("model.safetensors")) == Data(contentsOf: folder.appendingPathComponent("model.safetensors")))
        }
    }

    @Test("an int4 group scale that is no integer multiple of its channel scale is refused in one line naming the tensor")
    func tamperedScaleIsRefused() throws {
        let (_, folder, _) = try quantizedFolder("int4")
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("model.safetensors")
        let file = try SafeTensorsFile(contentsOf: url)
        let module = try QuantizedClassifierTests().makeClassifier().0.network.names.layers[0].ffnIn
        var entries = file.entries.map { SafeTensorsWriter.Entry(name: $0.name, dtype: $0.dtype, shape: $0.shape, bytes: file.rawBytes(of: $0)) }
        let index = try #require(entries.firstIndex { $0.name == module + ".weight_scale" })
        var scales = try file.tensor(named: module + ".weight_scale")
        scales.scalars[0] *= 1.0001
        entries[index] = SafeTensorsWriter.Entry(name: entries[index].name, tensor: scales)
        try SafeTensorsWriter.write(entries: entries, metadata: file.metadata, to: url)
        do {
            _ = try loadDeployableModel(from: folder, registry: PluginTestSupport.builtInRegistry())
            Issue.record("a tampered scale loaded")
        } catch {
            let message = "\(error)"
            #expect(message.contains(module + ".weight_scale") && message.contains("model.safetensors") && !message.contains("\n"), "\(message)")
        }
    }

    /// Rewrites the folder's model.safetensors with `change` applied to its entries and metadata.
    func rewriteWeights(in folder: URL, _ change: (inout [SafeTensorsWriter.Entry], inout [String: String], SafeTensorsFile) throws -> Void) throws {
        let url = folder.appendingPathComponent("model.safetensors")
        let file = try SafeTensorsFile(contentsOf: url)
        var entries = file.entries.map { SafeTensorsWriter.Entry(name: $0.name, dtype: $0.dtype, shape: $0.shape, bytes: file.rawBytes(of: $0)) }
        var metadata = file.metadata
        try change(&entries, &metadata, file)
        try SafeTensorsWriter.write(entries: entries, metadata: metadata, to: url)
    }

    /// The one-line error loading `folder` gives; records an issue when it loads.
    func loadError(_ folder: URL) -> String {
        do {
            _ = try loadDeployableModel(from: folder, registry: PluginTestSupport.builtInRegistry())
            Issue.record("\(folder.path) loaded")
            return ""
        } catch {
            let message = "\(error)"
            #expect(!message.contains("\n"), "\(message)")
            return message
        }
    }

    @Test("a manifest that lists a layer twice is refused in one line naming the weight")
    func layerListedTwice() throws {
        let (_, folder, _) = try quantizedFolder("dynamic")
        defer { try? FileManager.default.removeItem(at: folder) }
        var first = ""
        try rewriteWeights(in: folder) { _, metadata, _ in
            let manifest = try #require(metadata["sankshep.layers"])
            var records = try #require(try JSONSerialization.jsonObject(with: Data(manifest.utf8)) as? [Any])
            first = try #require(((records.first as? [String: Any])?["weights"] as? [String])?.first)
            records.append(records[0])
            metadata["sankshep.layers"] = String(decoding: try JSONSerialization.data(withJSONObject: records), as: UTF8.self)
        }
        let message = loadError(folder)
        #expect(message.contains("'\(first)' is listed twice") && message.contains("model.safetensors"), "\(message)")
    }

    @Test("an inf weight in a quantized folder is refused in one line naming the tensor")
    func infiniteWeight() throws {
        let (_, folder, _) = try quantizedFolder("dynamic")
        defer { try? FileManager.default.removeItem(at: folder) }
        var name = ""
        try rewriteWeights(in: folder) { entries, _, file in
            let index = try #require(entries.firstIndex { $0.name.hasSuffix("LayerNorm.weight") || $0.name.hasSuffix("layer_norm.weight") })
            name = entries[index].name
            var tensor = try file.tensor(named: name)
            tensor.scalars[0] = .infinity
            entries[index] = SafeTensorsWriter.Entry(name: name, tensor: tensor)
        }
        let message = loadError(folder)
        #expect(message.contains("'\(name)'") && message.contains("inf"), "\(message)")
    }

    @Test("a sankshep.json naming another quantization method than the weights' is refused in one line")
    func settingsNameAnotherMethod() throws {
        let (_, folder, _) = try quantizedFolder("dynamic")
        defer { try? FileManager.default.removeItem(at: folder) }
        let settingsFile = folder.appendingPathComponent(SankshepSettings.fileName)
        var settings = try #require(try SankshepSettings.load(from: folder))
        settings.extra["quantization"] = "no-such-method"
        try settings.write(to: folder)
        let message = loadError(folder)
        #expect(message.contains(settingsFile.path) && message.contains("'no-such-method'") && message.contains("'dynamic'"), "\(message)")
    }
}
