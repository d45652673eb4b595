import Foundation
import Testing
@testable import Host

@Suite("compressed-tensors export of a quantized classifier", .serialized)
struct CompressedTensorsExportTests {
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

    func export(_ folder: URL) -> URL { folder.appendingPathComponent(CompressedTensorsExport.folderName) }

    @Test("dynamic, static and int4 export each linear layer's integer weights under the names, dtypes and shapes of compressed-tensors",
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
        // Embeddings and the head are float32, the embeddings as the quantized model looks them up.
        #expect(try file.tensor(named: names.wordEmbeddings) == model.float.network.store.tensor(names.wordEmbeddings))
        #expect(file.entry(named: names.headHidden + ".weight")?.dtype == .f32)
        #expect(file.entry(named: names.headOutput + ".weight")?.dtype == .f32)
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
        // Everything else is the quantized model's float parameters as they are.
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

    @Test("config.json announces the method's compressed-tensors scheme for every Linear but the head", arguments: ["dynamic", "static", "int4"])
    func quantizationConfig(method: String) throws {
        let (model, folder, _) = try quantizedFolder(method, options: method == "int4" ? ["group_size": "32"] : [:])
        defer { try? FileManager.default.removeItem(at: folder) }
        let config = try ModelConfig.read(export(folder).appendingPathComponent("config.json"))
        let quantization = try #require(config.raw["quantization_config"]?.objectValue)
        #expect(quantization["quant_method"] == .string("compressed-tensors"))
        #expect(quantization["quantization_status"] == .string("compressed"))
        #expect(quantization["sparsity_config"] == nil)
        let format = method == "int4" ? "pack-quantized" : "int-quantized"
        #expect(quantization["format"] == .string(format))
        let names = model.float.network.names
        #expect(quantization["ignore"] == .array([.string(names.headHidden), .string(names.headOutput)]))
        let groups = try #require(quantization["config_groups"]?.objectValue)
        #expect(groups.count == 1)
        let group = try #require(groups["group_0"]?.objectValue)
        #expect(group["targets"] == .array([.string("Linear")]))
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
        // The stage folder's sankshep.json points at it; the export's own names its origin.
        let settings = try #require(SankshepSettings.read(from: folder))
        #expect(settings.extra["export_compressed_tensors"] == CompressedTensorsExport.folderName)
        #expect(SankshepSettings.read(from: export(folder))?.extra["format"] == "compressed-tensors \(format)")
    }

    @Test("a pruned model's exports store its weights dense, without the sparse-bitmask entry")
    func prunedExportsAreDense() throws {
        let query = try QuantizedClassifierTests().makeClassifier().0.network.names.layers[0].query
        let (_, folder, _) = try quantizedFolder("dynamic", sparse: [query])
        defer { try? FileManager.default.removeItem(at: folder) }
        let dequantized = folder.appendingPathComponent(QuantizedClassifier.exportFolderName)
        #expect(try ModelConfig.read(dequantized.appendingPathComponent("config.json")).raw["quantization_config"] == nil)
        let float = try SafeTensorsFile(contentsOf: dequantized.appendingPathComponent("model.safetensors"))
        #expect(float.entry(named: query + ".weight")?.dtype == .f32 && float.entry(named: query + ".bitmask") == nil)
        let config = try ModelConfig.read(export(folder).appendingPathComponent("config.json"))
        #expect(config.raw["quantization_config"]?.objectValue?["sparsity_config"] == nil)
        let quantized = try SafeTensorsFile(contentsOf: export(folder).appendingPathComponent("model.safetensors"))
        #expect(quantized.entry(named: query + ".weight")?.dtype == .i8 && quantized.entry(named: query + ".bitmask") == nil)
    }

    @Test("fp16 has no compressed-tensors layout: its folder gets no such export, and an earlier one there is removed")
    func fp16HasNone() throws {
        let (_, folder, _) = try quantizedFolder("int4")
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(FileManager.default.fileExists(atPath: export(folder).path))
        let (fp16, other, _) = try quantizedFolder("fp16")
        try? FileManager.default.removeItem(at: other)
        try fp16.save(to: folder, extra: [:])
        #expect(!FileManager.default.fileExists(atPath: export(folder).path))
        #expect(SankshepSettings.read(from: folder)?.extra["export_compressed_tensors"] == nil)
        // The dequantized export is still there.
        #expect(SankshepSettings.read(from: folder)?.extra["export"] == QuantizedClassifier.exportFolderName)
    }
}
