import Foundation
import Logging
import PluginAPI

/// A classifier whose weights a quantizer plugin holds (see QuantizedEncoder.swift for which ones).
///
/// On disk (a stage folder), where the method has a standard layout (QuantizedLayout: the built-in
/// Quant plugin's dynamic, static, int4 and fp16), a Hugging Face folder `transformers` loads:
///   model.safetensors   the quantized weights in compressed-tensors' layouts (fp16: F16), every other
///                       parameter F32 under its Hugging Face name; metadata `sankshep.layers` (JSON:
///                       each layer's method, plugin, versions, shape, options, inline blobs),
///                       `sankshep.head`, `sankshep.layout`. Loading rebuilds each layer's blobs from
///                       those tensors and hands them to its plugin's `load`.
///   config.json         with `quantization_config` (compressed-tensors), tokenizer files, sankshep.json
/// Otherwise (another plugin's method, the seed framework's head, removed attention heads), Sankshep's
/// own format:
///   model.quantized.safetensors  every quantized layer's blobs as tensors `<layer>:<blob>` (I8, U8, F16
///                                or F32 by the blob's content), every other parameter as F32; the same
///                                metadata with `blobs` naming each blob's tensor
///   config.json, tokenizer files, sankshep.json
/// `sankshep export` writes the other forms (the dequantized FP32 folder, Sankshep's own format).
/// Loading finds each layer's plugin by its method name.
final class QuantizedClassifier: DeployableModel {
    static let weightsFileName = "model.quantized.safetensors"
    static let formatTag = "sankshep-quantized/1"
    /// Sub-folders earlier versions wrote beside the weights (each a second copy of them).
    static let legacyExportFolders = ["transformers", "compressed-tensors"]

    /// The float network: dequantized weights in every quantized weight's place, and the hook that
    /// runs the encoder's linear layers through the plugin.
    let float: Classifier
    let weights: [QuantizedWeight]
    let hook: QuantizedLinearHook
    let method: String

    var tokenizer: BertTokenizer { float.tokenizer }
    var threshold: Double {
        get { float.threshold }
        set { float.threshold = newValue }
    }
    var maxLength: Int? {
        get { float.maxLength }
        set { float.maxLength = newValue }
    }
    var summary: String { "\(float.summary), \(method)" }
    var parameterCount: Int { float.parameterCount }
    var nonZeroParameterCount: Int { float.nonZeroParameterCount }

    init(float: Classifier, weights: [QuantizedWeight], method: String) {
        self.float = float
        self.weights = weights
        self.method = method
        hook = QuantizedLinearHook(weights)
        float.network.linearHook = hook
    }

    var maxPositions: Int { float.maxPositions }

    func probabilities(sequences: [[Int]], rows: [Int], batchSize: Int) throws -> [Float] {
        try float.probabilities(sequences: sequences, rows: rows, batchSize: batchSize)
    }

    /// Bytes the quantized layers' blobs take (what the plugin reports).
    var quantizedBytes: Int { weights.reduce(0) { $0 + $1.layer.savedBytes } }

    // ---------------------------------------------------------------- quantize

    /// A quantized copy of `classifier` (which is left as it was). Static methods get statistics from
    /// `calibrationRows` of `sequences` run through the float copy, `batchSize` at a time.
    static func quantize(_ classifier: Classifier, method: QuantizerMethod, options: [String: String], registry: PluginRegistry,
                         calibration: (sequences: [[Int]], rows: [Int], batchSize: Int)?, seed: UInt64,
                         logger: Logger?) throws -> QuantizedClassifier {
        let copy = classifier.copy()
        let (tableMethod, tableOptions) = tableQuantizer(for: method, options: options, registry: registry)
        if tableMethod == nil { logger?.notice("quantize: embeddings stay float32 (no method that needs no calibration can dequantize them)") }
        // Tables first, so calibration sees the embeddings the quantized model will look up.
        var weights = try EncoderQuantizer.quantize(network: copy.network, method: method, options: options,
                                                    tableMethod: tableMethod, tableOptions: tableOptions, calibration: nil,
                                                    linear: false, log: { logger?.notice("\($0)") })
        var hook: CalibrationHook?
        if method.neededStatistics != 0 {
            guard let calibration, !calibration.rows.isEmpty else {
                throw PluginError("quantizer '\(method.name)' needs calibration batches, and no training rows were given")
            }
            let maxRows = Int(method.method.extension(SK_EXT_CALIBRATION, as: sk_calibration_ext.self)?.pointee.max_sample_rows ?? 0)
            let observer = CalibrationHook(needs: method.neededStatistics, maxSampleRows: maxRows, seed: seed)
            copy.network.linearHook = observer
            _ = try Evaluator.probabilities(network: copy.network, sequences: calibration.sequences, rows: calibration.rows,
                                        padID: copy.tokenizer.padId, batchSize: calibration.batchSize)
            copy.network.linearHook = nil
            hook = observer
        }
        weights += try EncoderQuantizer.quantize(network: copy.network, method: method, options: options, tableMethod: nil,
                                                 tableOptions: [:], calibration: hook, linear: true, log: { logger?.notice("\($0)") })
        return QuantizedClassifier(float: copy, weights: weights, method: method.name)
    }

    /// The method for the tables: the stage's own when it needs no calibration, else `dynamic` (the
    /// same per-row INT8 weights static stores; an embedding has no activation to calibrate).
    static func tableQuantizer(for method: QuantizerMethod, options: [String: String],
                               registry: PluginRegistry) -> (QuantizerMethod?, [String: String]) {
        if method.neededStatistics == 0 { return (method, options) }
        if let dynamic = try? registry.quantizer(named: "dynamic"), dynamic.neededStatistics == 0 { return (dynamic, [:]) }
        return (nil, [:])
    }

    // ---------------------------------------------------------------- save

    /// Writes the stage folder: the Hugging Face layout where the method has one, else Sankshep's own.
    func save(to directory: URL, extra: [String: String]) throws {
        let blobs = try weights.map { try $0.layer.serialize() }
        if try !writeHuggingFaceLayout(to: directory, extra: extra, blobs: blobs) {
            try writeSankshepFormat(to: directory, extra: extra, blobs: blobs)
        }
    }

    /// The folder's `sankshep.json`.
    func settings(extra: [String: String]) -> SankshepSettings {
        float.settings(extra: extra.merging(["quantization": method], uniquingKeysWith: { $1 }))
    }

    /// The folder `transformers` loads as a quantized model (QuantizedLayout), one `model.safetensors`
    /// from which Sankshep rebuilds the plugin's layers; false (nothing written) when the model has
    /// no such layout.
    @discardableResult
    func writeHuggingFaceLayout(to directory: URL, extra: [String: String], blobs: [[String: [UInt8]]]? = nil) throws -> Bool {
        let blobs = try blobs ?? weights.map { try $0.layer.serialize() }
        guard let layout = try QuantizedLayout.contents(float: float, weights: weights, blobs: blobs) else { return false }
        var records: [QuantizedLayerRecord] = []
        for (weight, inline) in zip(weights, layout.inlineBlobs) {
            var record = weight.record
            record.blobs = [:]
            record.inlineBlobs = inline.isEmpty ? nil : inline.mapValues { Data($0).base64EncodedString() }
            records.append(record)
        }
        var config = float.config
        // Replaces a pruned model's sparse-bitmask entry: the quantized weights are stored dense.
        config.raw["quantization_config"] = layout.quantizationConfig
        // F16 weights are read into a float32 model, as the plugin computes with them.
        config.raw["dtype"] = .string("float32")
        try HuggingFaceDirectory.write(config: config, entries: layout.entries, tokenizerFiles: float.tokenizerFiles,
                                       metadata: try metadata(records: records, layout: QuantizedLayout.metadataTag), to: directory)
        try settings(extra: extra).write(to: directory)
        HuggingFaceDirectory.removeStale([Self.weightsFileName] + Self.legacyExportFolders, in: directory)
        return true
    }

    /// Sankshep's own format: the plugin's blobs as they are (`model.quantized.safetensors`).
    func writeSankshepFormat(to directory: URL, extra: [String: String], blobs: [[String: [UInt8]]]? = nil) throws {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw FileWriteError(file: directory.path, problem: "cannot create the folder (\(error.localizedDescription))")
        }
        let blobs = try blobs ?? weights.map { try $0.layer.serialize() }
        let store = float.network.store
        var entries: [SafeTensorsWriter.Entry] = []
        var records: [QuantizedLayerRecord] = []
        var covered = Set<String>()
        for (weight, layerBlobs) in zip(weights, blobs) {
            var record = weight.record
            record.blobs = [:]
            record.inlineBlobs = nil
            for (blob, bytes) in layerBlobs.sorted(by: { $0.key < $1.key }) {
                let tensorName = "\(record.name):\(blob)"
                record.blobs[blob] = tensorName
                entries.append(Self.blobEntry(name: tensorName, dtype: weight.layer.method.blobType(blob), bytes: bytes, rows: record.rows))
            }
            covered.formUnion(record.weights)
            records.append(record)
        }
        for view in store.views where !covered.contains(view.name) {
            entries.append(SafeTensorsWriter.Entry(name: view.name, tensor: store.tensor(view.name)))
        }
        try SafeTensorsWriter.write(entries: entries, metadata: try metadata(records: records, layout: nil).merging(["format": Self.formatTag], uniquingKeysWith: { $1 }),
                                    to: directory.appendingPathComponent(Self.weightsFileName))
        try HuggingFaceDirectory.copyTokenizer(float.tokenizerFiles, to: directory)
        try settings(extra: extra).write(to: directory)
        try float.config.write(to: directory.appendingPathComponent("config.json"))
        HuggingFaceDirectory.removeStale(["model.safetensors"] + Self.legacyExportFolders, in: directory)
    }

    private func metadata(records: [QuantizedLayerRecord], layout: String?) throws -> [String: String] {
        var metadata = [
            "sankshep.layers": String(decoding: try JSONEncoder.sorted.encode(records), as: UTF8.self),
            "sankshep.head": String(decoding: try JSONEncoder.sorted.encode(HeadRecord(float.network.head)), as: UTF8.self),
        ]
        if let layout { metadata["sankshep.layout"] = layout }
        return metadata
    }

    /// A blob as a tensor of the element type its method declares (`QuantizerMethod.blobType`);
    /// raw bytes when its size is not whole elements.
    static func blobEntry(name: String, dtype: SafeTensorsDType, bytes: [UInt8], rows: Int) -> SafeTensorsWriter.Entry {
        let elementSize = bytes.count % dtype.byteSize == 0 ? dtype.byteSize : 1
        let type = elementSize == dtype.byteSize ? dtype : .u8
        let count = bytes.count / elementSize
        let shape = rows > 0 && count > rows && count % rows == 0 ? [rows, count / rows] : [count]
        return SafeTensorsWriter.Entry(name: name, dtype: type, shape: shape, bytes: Data(bytes))
    }

    // ---------------------------------------------------------------- load

    /// The weights file of a quantized model folder and whether it is the Hugging Face layout, or nil
    /// when the folder holds a float model.
    static func quantizedWeightsFile(in directory: URL) -> (url: URL, huggingFace: Bool)? {
        let own = directory.appendingPathComponent(weightsFileName)
        if FileManager.default.fileExists(atPath: own.path) { return (own, false) }
        let standard = directory.appendingPathComponent("model.safetensors")
        guard FileManager.default.fileExists(atPath: standard.path),
              let file = try? SafeTensorsFile(contentsOf: standard), file.metadata["sankshep.layers"] != nil else { return nil }
        return (standard, true)
    }

    /// True when `directory` holds a quantized model.
    static func isQuantizedFolder(_ directory: URL) -> Bool { quantizedWeightsFile(in: directory) != nil }

    static func load(from directory: URL, registry: PluginRegistry) throws -> QuantizedClassifier {
        guard let (url, huggingFace) = quantizedWeightsFile(in: directory) else {
            throw CheckpointError(file: directory.path, problem: "no quantized model (\(weightsFileName), or model.safetensors with 'sankshep.layers')")
        }
        let path = url.path
        let file = try SafeTensorsFile(contentsOf: url)
        func fail(_ problem: String) -> CheckpointError { CheckpointError(file: path, problem: problem) }
        if huggingFace {
            guard file.metadata["sankshep.layout"] == QuantizedLayout.metadataTag else {
                throw fail("metadata 'sankshep.layout' is \(file.metadata["sankshep.layout"].map { "'\($0)'" } ?? "absent"), not '\(QuantizedLayout.metadataTag)'")
            }
        } else {
            guard file.metadata["format"] == formatTag else {
                throw fail("metadata 'format' is \(file.metadata["format"].map { "'\($0)'" } ?? "absent"), not '\(formatTag)'")
            }
        }
        guard let manifest = file.metadata["sankshep.layers"], let headText = file.metadata["sankshep.head"] else {
            throw fail("no 'sankshep.layers' or 'sankshep.head' in the metadata")
        }
        let records: [QuantizedLayerRecord]
        let head: HeadRecord
        do {
            records = try JSONDecoder().decode([QuantizedLayerRecord].self, from: Data(manifest.utf8))
            head = try JSONDecoder().decode(HeadRecord.self, from: Data(headText.utf8))
        } catch {
            throw fail("metadata 'sankshep.layers' or 'sankshep.head' is not the JSON this version writes (\(error))")
        }
        let config = try ModelConfig.read(directory.appendingPathComponent("config.json"))
        guard head.head.inputLayers >= 1, head.head.inputLayers <= config.numLayers + 1 else {
            throw fail("metadata 'sankshep.head' reads \(head.head.inputLayers) hidden states, the encoder has \(config.numLayers + 1)")
        }
        guard BinaryReadout.supportedLabels.contains(config.numLabels) else {
            throw fail("config.json names \(config.numLabels) labels: a hate-speech head has 1 logit (sigmoid) or 2 (softmax)")
        }
        let settings = SankshepSettings.read(from: directory)
        let tokenizer = try BertTokenizer(directory: directory)
        let network = SequenceClassifier(shape: EncoderShape(config), head: head.head, numLabels: config.numLabels,
                                         pooling: settings?.pooling ?? .cls)
        let store = network.store
        var covered = Set<String>()
        var weights: [QuantizedWeight] = []
        for record in records {
            let method: QuantizerMethod
            do {
                method = try registry.quantizer(named: record.method)
            } catch {
                throw fail("layer '\(record.name)' was quantized with method '\(record.method)' (plugin \(record.plugin), format \(record.formatVersion)), and no loaded plugin provides '\(record.method)'; add it with --plugin-path or SANKSHEP_PLUGIN_PATH")
            }
            for name in record.weights where store.view(named: name) == nil {
                throw fail("layer '\(record.name)' holds '\(name)', which this model (\(config.modelType.rawValue) \(config.numLayers)×\(config.hiddenSize)) has no parameter for")
            }
            let (_, rows, cols) = EncoderQuantizer.stacked(record.weights, store: store)
            guard rows == record.rows, cols == record.cols else {
                throw fail("layer '\(record.name)' is \(record.rows) x \(record.cols), the model's weights are \(rows) x \(cols)")
            }
            var blobs: [String: [UInt8]] = [:]
            if huggingFace {
                blobs = try QuantizedLayout.blobs(for: record, in: file)
            } else {
                for (blob, tensorName) in record.blobs {
                    guard let entry = file.entry(named: tensorName) else { throw fail("layer '\(record.name)': no tensor '\(tensorName)' for blob '\(blob)'") }
                    blobs[blob] = [UInt8](file.rawBytes(of: entry))
                }
            }
            let layer: QuantizedLayer
            do {
                layer = try method.load(blobs: blobs, formatVersion: record.formatVersion, rows: record.rows, cols: record.cols,
                                        options: record.options)
            } catch {
                throw fail("layer '\(record.name)': \(error)")
            }
            if record.role == .table || layer.canDequantize {
                EncoderQuantizer.unstack(try layer.dequantize(), into: record.weights, store: store)
            }
            covered.formUnion(record.weights)
            weights.append(QuantizedWeight(record: record, layer: layer, bias: []))
        }
        for view in store.views where !covered.contains(view.name) {
            guard let entry = file.entry(named: view.name) else { throw fail("no tensor '\(view.name)' and no quantized layer holds it") }
            guard entry.shape == view.shape || entry.count == view.count else {
                throw fail("tensor '\(view.name)' has shape \(entry.shape), the model expects \(view.shape)")
            }
            // Same count, other shape (a [1, n] bias, say): the values are read in the model's shape.
            store.setValues(view.name, from: Tensor(shape: view.shape, scalars: try file.tensor(named: view.name).scalars))
        }
        // Biases are float tensors now in the store; the hook adds them after the plugin's product.
        let withBiases = weights.map { weight in
            weight.record.role == .linear
                ? QuantizedWeight(record: weight.record, layer: weight.layer,
                                  bias: EncoderQuantizer.bias(of: weight.record.weights, names: network.names, store: store))
                : weight
        }
        var floatConfig = config
        // The float network's config describes float weights (the quantized file's is written anew).
        if CompressedTensorsQuantized.announcesQuantizedWeights(floatConfig) { floatConfig.raw["quantization_config"] = nil }
        let float = Classifier(network: network, config: floatConfig, tokenizer: tokenizer,
                               tokenizerFiles: HuggingFaceDirectory.tokenizerFiles(in: directory), threshold: settings?.threshold ?? 0.5)
        float.maxLength = settings?.maxLength
        return QuantizedClassifier(float: float, weights: withBiases, method: records.first(where: { $0.role == .linear })?.method ?? "none")
    }
}

/// The classification head, as the quantized file's metadata records it.
struct HeadRecord: Codable {
    var kind: String
    var hidden: Int?
    /// The seed head's `use_multi_layers` (4); absent for 1.
    var layers: Int?

    init(_ head: ClassifierHead) {
        switch head {
        case .bertPooler: kind = "bert_pooler"
        case .distilbert: kind = "distilbert"
        case .seedMLP(let hidden, let layers): kind = "seed_mlp"; self.hidden = hidden; self.layers = layers == 1 ? nil : layers
        }
    }

    var head: ClassifierHead {
        switch kind {
        case "distilbert": .distilbert
        case "seed_mlp": .seedMLP(hidden: hidden ?? 256, layers: layers ?? 1)
        default: .bertPooler
        }
    }
}

extension JSONEncoder {
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}

/// Loads a model folder for eval, predict and bench: a quantized folder through its plugins, anything
/// else as a float `Classifier`, which must have a trained head (a random one would answer garbage).
func loadDeployableModel(from directory: URL, registry: PluginRegistry, logger: Logger? = nil) throws -> DeployableModel {
    if QuantizedClassifier.isQuantizedFolder(directory) {
        return try QuantizedClassifier.load(from: directory, registry: registry)
    }
    return try Classifier.load(from: directory, requireTrainedHead: true, logger: logger)
}

extension DeployableModel {
    /// Probabilities for raw texts, tokenized with the model's own tokenizer, each cut to
    /// `maxLength` tokens or the model's positions, whichever is fewer.
    func probabilities(of texts: [String], maxLength: Int, batchSize: Int) throws -> [Float] {
        let sequences = TokenizedCorpus.encode(texts, for: self, maxLength: maxLength)
        return try probabilities(sequences: sequences, rows: Array(sequences.indices), batchSize: batchSize)
    }
}
