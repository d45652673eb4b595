import Foundation
import PluginAPI

// A network whose weights are held by a quantizer plugin.
//
// Two kinds of quantized weights:
//   linear  the encoder's linear layers. The plugin's layer runs them in inference forwards, through
//           the network's `linearHook`. Query, key and value are ONE fused layer (3H, H) = [Wq; Wk; Wv]:
//           they share their input, and every method here scales per output row (or per group within
//           a row), so fusing changes no value and runs one product instead of three. Layers are
//           quantized WITHOUT bias: the biases stay float tensors (the FFN-in bias is added by the GELU
//           kernel anyway, the others by the hook after the plugin's product), so a saved file keeps
//           every bias under its Hugging Face name and the export needs nothing from the plugin's blobs.
//   table   the word and position embeddings and the head's hidden weight: looked up, or a tiny
//           product, so they are stored by the plugin but dequantized into the float parameters at
//           quantize and load time (the model then runs exactly what the file holds). They dominate
//           the size of small models (the bundled 2×128 BERT: 68% word embeddings), so the size
//           targets are met only with them quantized.
// Everything else (LayerNorms, biases, token types, the final classifier) stays float32.
//
// The float network keeps, in every quantized weight's place, the weight as the plugin reconstructs
// it (`dequantize`), so the export for `transformers` is the float network saved as it is.

/// One quantized weight as the saved file describes it (the `sankshep.layers` metadata entry).
struct QuantizedLayerRecord: Codable, Equatable, Sendable {
    enum Role: String, Codable, Sendable {
        /// Run by the plugin in place of an encoder linear layer.
        case linear
        /// Dequantized into the float parameters (embeddings, the head's hidden weight).
        case table
    }
    /// e.g. `bert.encoder.layer.0.attention.self.query+key+value`, `bert.embeddings.word_embeddings`.
    var name: String
    var role: Role
    /// The float weights whose rows this layer holds, in order (three for the fused Q/K/V).
    var weights: [String]
    var method: String
    var plugin: String
    var methodVersion: String
    var formatVersion: String
    var rows: Int
    var cols: Int
    var options: [String: String]
    /// Blob name → tensor name in the file (Sankshep's own format; empty in the Hugging Face layout,
    /// where QuantizedLayout derives the blobs from the standard tensors).
    var blobs: [String: String]
    /// Blobs no standard tensor carries (INT4's channel scales), base64, in the Hugging Face layout.
    var inlineBlobs: [String: String]? = nil

    /// The hook's key: the names of the linear layers it is called with.
    var hookKey: String { weights.map { $0.hasSuffix(".weight") ? String($0.dropLast(7)) : $0 }.joined(separator: "|") }
}

/// A quantized layer with its record and the bias the hook adds after it.
final class QuantizedWeight {
    var record: QuantizedLayerRecord
    let layer: QuantizedLayer
    /// (rows) float bias added after the plugin's product, or empty.
    let bias: [Float]

    init(record: QuantizedLayerRecord, layer: QuantizedLayer, bias: [Float]) {
        self.record = record
        self.layer = layer
        self.bias = bias
    }
}

/// Runs the encoder's linear layers through their plugin layers.
final class QuantizedLinearHook: LinearLayerHook {
    private let byKey: [String: QuantizedWeight]
    /// The first plugin failure in a forward; that product then ran in float. Checked by the stage.
    private(set) var failure: Error?

    init(_ weights: [QuantizedWeight]) {
        byKey = Dictionary(weights.filter { $0.record.role == .linear }.map { ($0.record.hookKey, $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// Each output row depends only on its input row (activation scales are per row or static), so the
    /// model's [CLS]-only last layer gives the same logits through this hook.
    var needsEveryRow: Bool { false }

    func observe(layers: [String], input: UnsafePointer<Float>, rows: Int, inFeatures: Int) {}

    func replace(layers: [String], input: UnsafePointer<Float>, rows: Int, inFeatures: Int,
                 output: UnsafeMutablePointer<Float>, outFeatures: Int, includeBias: Bool) -> Bool {
        guard let weight = byKey[layers.joined(separator: "|")], weight.layer.cols == inFeatures, weight.layer.rows == outFeatures else {
            return false
        }
        do {
            // (rows, outFeatures) = input (rows, inFeatures) · Wᵀ, in the plugin's kernel.
            try weight.layer.forward(UnsafeBufferPointer(start: input, count: rows * inFeatures), tokens: rows,
                                     into: UnsafeMutableBufferPointer(start: output, count: rows * outFeatures))
        } catch {
            if failure == nil { failure = error }
            return false
        }
        if includeBias, !weight.bias.isEmpty {
            weight.bias.withUnsafeBufferPointer { bias in
                // Rows split over the kernel threads when there are enough of them to pay for it.
                parallelFor(rows, splitting: rows * outFeatures >= 1 << 16) { first, last in
                    for row in first..<last {
                        let y = output + row * outFeatures
                        for j in 0..<outFeatures { y[j] += bias[j] }
                    }
                }
            }
        }
        return true
    }
}

/// Gathers the statistics a quantizer asks for on the inputs of each encoder linear layer.
final class CalibrationHook: LinearLayerHook {
    private struct Accumulator {
        var tokens = 0
        var sumSquares: [Double]
        var absMax: [Float]
        var low = Float.infinity, high = -Float.infinity
        var samples: [Float] = []
        var sampleRows = 0
    }
    let needs: UInt32
    let maxSampleRows: Int
    private var accumulators: [String: Accumulator] = [:]
    private var random: SeededRandom

    init(needs: UInt32, maxSampleRows: Int, seed: UInt64) {
        self.needs = needs
        self.maxSampleRows = maxSampleRows
        random = SeededRandom(seed: seed)
    }

    func observe(layers: [String], input: UnsafePointer<Float>, rows: Int, inFeatures: Int) {
        let key = layers.joined(separator: "|")
        var a = accumulators[key] ?? Accumulator(sumSquares: [Double](repeating: 0, count: inFeatures),
                                                 absMax: [Float](repeating: 0, count: inFeatures))
        for row in 0..<rows {
            let x = input + row * inFeatures
            for j in 0..<inFeatures {
                let v = x[j]
                a.sumSquares[j] += Double(v) * Double(v)
                a.absMax[j] = max(a.absMax[j], abs(v))
                a.low = min(a.low, v)
                a.high = max(a.high, v)
            }
            // Reservoir sampling: every calibration row has the same chance to be kept.
            if needs & UInt32(SK_STAT_INPUT_SAMPLES) != 0, maxSampleRows > 0 {
                let seen = a.tokens + row
                if a.sampleRows < maxSampleRows {
                    a.samples.append(contentsOf: UnsafeBufferPointer(start: x, count: inFeatures))
                    a.sampleRows += 1
                } else {
                    let slot = Int(random.next() % UInt64(seen + 1))
                    if slot < maxSampleRows {
                        for j in 0..<inFeatures { a.samples[slot * inFeatures + j] = x[j] }
                    }
                }
            }
        }
        a.tokens += rows
        accumulators[key] = a
    }

    func replace(layers: [String], input: UnsafePointer<Float>, rows: Int, inFeatures: Int,
                 output: UnsafeMutablePointer<Float>, outFeatures: Int, includeBias: Bool) -> Bool { false }

    /// The statistics of the layer group `key` (`QuantizedLayerRecord.hookKey`), nil if never seen.
    func statistics(_ key: String) -> ActivationStats? {
        guard let a = accumulators[key], a.tokens > 0 else { return nil }
        var stats = ActivationStats(features: a.absMax.count, tokens: a.tokens)
        if needs & UInt32(SK_STAT_INPUT_L2_NORM) != 0 { stats.inputL2Norm = a.sumSquares.map { Float($0.squareRoot()) } }
        if needs & UInt32(SK_STAT_INPUT_ABS_MAX) != 0 { stats.inputAbsMax = a.absMax }
        if needs & UInt32(SK_STAT_INPUT_RANGE) != 0 { stats.inputRange = a.low...a.high }
        if needs & UInt32(SK_STAT_INPUT_SAMPLES) != 0 { stats.samples = a.samples }
        return stats
    }
}

/// How a network's weights are quantized: which ones, by which method.
enum EncoderQuantizer {
    /// The linear layers of the encoder, as the hook groups them (fused Q/K/V first in each layer).
    static func linearGroups(_ names: ModelParameterNames) -> [(name: String, weights: [String])] {
        names.layers.flatMap { ln -> [(name: String, weights: [String])] in
            let lastPart = { (name: String) in String(name.split(separator: ".").last!) }
            return [("\(ln.query)+\(lastPart(ln.key))+\(lastPart(ln.value))", [ln.query + ".weight", ln.key + ".weight", ln.value + ".weight"]),
                    (ln.attentionOutput, [ln.attentionOutput + ".weight"]),
                    (ln.ffnIn, [ln.ffnIn + ".weight"]),
                    (ln.ffnOut, [ln.ffnOut + ".weight"])]
        }
    }

    /// The weights stored quantized but run in float: embeddings and the head's hidden weight.
    static func tables(_ names: ModelParameterNames) -> [String] {
        [names.wordEmbeddings, names.positionEmbeddings, names.headHidden + ".weight"]
    }

    /// The bias added after the layer holding `weights` (the FFN-in bias is the GELU kernel's).
    static func bias(of weights: [String], names: ModelParameterNames, store: ParameterStore) -> [Float] {
        let ffnIn = Set(names.layers.map { $0.ffnIn + ".weight" })
        if weights.count == 1, ffnIn.contains(weights[0]) { return [] }
        return weights.flatMap { name -> [Float] in
            let biasName = String(name.dropLast(7)) + ".bias"
            guard let view = store.view(named: biasName) else { return [] }
            return Array(UnsafeBufferPointer(start: store.values + view.offset, count: view.count))
        }
    }

    /// Rows (out features) × cols of the weights stacked.
    static func stacked(_ weights: [String], store: ParameterStore) -> (values: [Float], rows: Int, cols: Int) {
        var values: [Float] = []
        var rows = 0, cols = 0
        for name in weights {
            let view = store.view(named: name)!
            cols = view.shape.count == 2 ? view.shape[1] : view.count
            rows += view.count / max(cols, 1)
            values.append(contentsOf: UnsafeBufferPointer(start: store.values + view.offset, count: view.count))
        }
        return (values, rows, cols)
    }

    /// Writes `values` (the stacked weights) back into the store.
    static func unstack(_ values: [Float], into weights: [String], store: ParameterStore) {
        var start = 0
        for name in weights {
            let view = store.view(named: name)!
            values.withUnsafeBufferPointer { (store.values + view.offset).update(from: $0.baseAddress! + start, count: view.count) }
            start += view.count
        }
    }

    /// Quantizes the network's weights in place (the tables when `tableMethod` is given, the linear
    /// layers when `linear`): linear layers become plugin layers (returned, for a
    /// `QuantizedLinearHook`), tables and — where the method can dequantize — linear weights are
    /// replaced in the store by their dequantized values. Tables use `tableMethod` (a method needing no
    /// calibration) and stay float when there is none or it refuses the shape.
    static func quantize(network: SequenceClassifier, method: QuantizerMethod, options: [String: String],
                         tableMethod: QuantizerMethod?, tableOptions: [String: String],
                         calibration: CalibrationHook?, linear: Bool, log: (String) -> Void) throws -> [QuantizedWeight] {
        let store = network.store, names = network.names
        var result: [QuantizedWeight] = []
        if let tableMethod, tableMethod.method.descriptor.pointee.quantizer != nil {
            for name in tables(names) where store.view(named: name)?.shape.count == 2 {
                do {
                    let weight = try quantizeOne(name: String(name.hasSuffix(".weight") ? name.dropLast(7) : Substring(name)),
                                                 role: .table, weights: [name], store: store, method: tableMethod,
                                                 options: tableOptions, stats: nil, bias: [])
                    unstack(try weight.layer.dequantize(), into: [name], store: store)
                    result.append(weight)
                } catch {
                    log("\(name) stays float32: \(error)")
                }
            }
        }
        for group in linear ? linearGroups(names) : [] {
            var stats: ActivationStats?
            if method.neededStatistics != 0 {
                stats = calibration?.statistics(group.weights.map { String($0.dropLast(7)) }.joined(separator: "|"))
            }
            let weight = try quantizeOne(name: group.name, role: .linear, weights: group.weights, store: store, method: method,
                                         options: options, stats: stats, bias: bias(of: group.weights, names: names, store: store))
            if weight.layer.canDequantize { unstack(try weight.layer.dequantize(), into: group.weights, store: store) }
            result.append(weight)
        }
        return result
    }

    private static func quantizeOne(name: String, role: QuantizedLayerRecord.Role, weights: [String], store: ParameterStore,
                                    method: QuantizerMethod, options: [String: String], stats: ActivationStats?,
                                    bias: [Float]) throws -> QuantizedWeight {
        let (values, rows, cols) = stacked(weights, store: store)
        let layer = try values.withUnsafeBufferPointer { data in
            try method.quantize(weight: WeightView(data: data, rows: rows, cols: cols, layerName: name, layerKind: layerKind(name, role: role)),
                                options: options, stats: stats)
        }
        let record = Self.record(name: name, role: role, weights: weights, method: method, options: options, rows: rows, cols: cols)
        return QuantizedWeight(record: record, layer: layer, bias: bias)
    }

    /// What the plugin is told a layer is: attention or FFN for the encoder's linear layers.
    static func layerKind(_ name: String, role: QuantizedLayerRecord.Role) -> LayerKind {
        role == .table ? .other : (name.contains("attention") || name.contains("_lin") ? .attention : .ffn)
    }

    /// The saved description of a layer `method` made from `weights` (stacked: rows × cols).
    static func record(name: String, role: QuantizedLayerRecord.Role, weights: [String], method: QuantizerMethod,
                       options: [String: String], rows: Int, cols: Int) -> QuantizedLayerRecord {
        QuantizedLayerRecord(name: name, role: role, weights: weights, method: method.name, plugin: method.method.pluginName,
                             methodVersion: method.method.version, formatVersion: method.formatVersion,
                             rows: rows, cols: cols, options: options, blobs: [:])
    }
}
