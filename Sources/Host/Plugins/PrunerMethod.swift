import Foundation
import PluginAPI
import PluginSupport

/// Which block of the encoder a linear layer belongs to (pruners may treat them differently).
/// `embedding` is the word-embedding table, which pruners see transposed (SK_LAYER_EMBEDDING).
enum LayerKind: Sendable {
    case attention, ffn, embedding, other

    var code: UInt32 {
        switch self {
        case .attention: UInt32(SK_LAYER_ATTENTION)
        case .ffn: UInt32(SK_LAYER_FFN)
        case .embedding: UInt32(SK_LAYER_EMBEDDING)
        case .other: UInt32(SK_LAYER_OTHER)
        }
    }
}

/// Statistics of a linear layer's input activations X (tokens, features) on calibration batches,
/// as the host collects them for methods that ask (see "sankshep.calibration/1").
struct ActivationStats: Sendable {
    var features: Int
    var tokens: Int
    /// (features) ||X_j||_2 over all calibration tokens.
    var inputL2Norm: [Float]?
    /// (features) max |X_ij|.
    var inputAbsMax: [Float]?
    var inputRange: ClosedRange<Float>?
    /// (sampleRows, features) kept input rows.
    var samples: [Float]?

    init(features: Int, tokens: Int, inputL2Norm: [Float]? = nil, inputAbsMax: [Float]? = nil,
         inputRange: ClosedRange<Float>? = nil, samples: [Float]? = nil) {
        self.features = features
        self.tokens = tokens
        self.inputL2Norm = inputL2Norm
        self.inputAbsMax = inputAbsMax
        self.inputRange = inputRange
        self.samples = samples
    }

    /// The statistics `needs` (SK_STAT_* bits) that these lack, by name.
    func missing(_ needs: UInt32) -> [String] {
        var missing: [String] = []
        if needs & UInt32(SK_STAT_INPUT_L2_NORM) != 0, inputL2Norm == nil { missing.append("input L2 norms") }
        if needs & UInt32(SK_STAT_INPUT_ABS_MAX) != 0, inputAbsMax == nil { missing.append("input abs-max") }
        if needs & UInt32(SK_STAT_INPUT_RANGE) != 0, inputRange == nil { missing.append("input range") }
        if needs & UInt32(SK_STAT_INPUT_SAMPLES) != 0, samples == nil { missing.append("input samples") }
        return missing
    }

    /// Runs `body` with the statistics laid out as `sk_activation_stats` (valid during `body`).
    func withCStats<R>(layer: String, _ body: (UnsafePointer<sk_activation_stats>) throws -> R) throws -> R {
        for (label, count) in [("input L2 norms", inputL2Norm?.count), ("input abs-max", inputAbsMax?.count)] {
            if let count, count != features {
                throw PluginError("\(layer): \(count) \(label) for \(features) input features")
            }
        }
        if let samples, features == 0 || samples.count % features != 0 {
            throw PluginError("\(layer): \(samples.count) sample values are not whole rows of \(features) features")
        }
        var present: UInt32 = 0
        if inputL2Norm != nil { present |= UInt32(SK_STAT_INPUT_L2_NORM) }
        if inputAbsMax != nil { present |= UInt32(SK_STAT_INPUT_ABS_MAX) }
        if inputRange != nil { present |= UInt32(SK_STAT_INPUT_RANGE) }
        if samples != nil { present |= UInt32(SK_STAT_INPUT_SAMPLES) }
        return try withOptionalBuffer(inputL2Norm) { norms in
            try withOptionalBuffer(inputAbsMax) { absMax in
                try withOptionalBuffer(samples) { samplePointer in
                    var stats = sk_activation_stats(
                        struct_size: UInt32(MemoryLayout<sk_activation_stats>.size), present: present,
                        features: Int64(features), tokens: Int64(tokens),
                        input_l2_norm: norms, input_abs_max: absMax,
                        input_min: inputRange?.lowerBound ?? 0, input_max: inputRange?.upperBound ?? 0,
                        samples: samplePointer, sample_rows: Int64(features > 0 ? (samples?.count ?? 0) / features : 0))
                    return try body(&stats)
                }
            }
        }
    }
}

private func withOptionalBuffer<R>(_ array: [Float]?, _ body: (UnsafePointer<Float>?) throws -> R) rethrows -> R {
    guard let array else { return try body(nil) }
    return try array.withUnsafeBufferPointer { try body($0.baseAddress) }
}

/// A weight matrix handed to a method: row-major (rows = output features, cols = input features),
/// as PyTorch's `nn.Linear.weight`.
struct WeightView {
    var data: UnsafeBufferPointer<Float>
    var rows: Int
    var cols: Int
    var layerName: String = ""
    var layerKind: LayerKind = .other
    var bias: UnsafeBufferPointer<Float>? = nil

    /// Runs `body` with the view as `sk_weight_view` (valid during `body`), after checking the shape.
    func withCView<R>(_ body: (UnsafePointer<sk_weight_view>) throws -> R) throws -> R {
        guard rows > 0, cols > 0, data.count == rows * cols else {
            throw PluginError("\(layerName.isEmpty ? "weight" : layerName): \(data.count) values for a \(rows) x \(cols) matrix")
        }
        if let bias, bias.count != rows {
            throw PluginError("\(layerName.isEmpty ? "weight" : layerName): bias of \(bias.count) values for \(rows) rows")
        }
        return try layerName.withCString { name in
            var view = sk_weight_view(struct_size: UInt32(MemoryLayout<sk_weight_view>.size),
                                      layer_kind: layerKind.code, layer_name: name, data: data.baseAddress,
                                      rows: Int64(rows), cols: Int64(cols), bias: bias?.baseAddress)
            return try body(&view)
        }
    }
}

/// A pruner method from a plugin, called with Swift values.
struct PrunerMethod: Sendable {
    let method: PluginMethod
    init(_ method: PluginMethod) { self.method = method }

    var name: String { method.name }

    /// The SK_STAT_* statistics the method needs (0 when it needs none).
    var neededStatistics: UInt32 {
        method.extension(SK_EXT_CALIBRATION, as: sk_calibration_ext.self)?.pointee.needs ?? 0
    }
    var supportsStructured: Bool { method.pruner.prune_structured != nil }
    /// Whether the method exposes its scores, which global pruning needs.
    var supportsGlobal: Bool { method.extension(SK_EXT_SCORES, as: sk_scores_ext.self) != nil }

    /// The keep-mask (rows * cols, 1 = keep) that removes a fraction `sparsity` of this layer's weights.
    func prune(weight: WeightView, sparsity: Double, options: [String: String] = [:],
               stats: ActivationStats? = nil) throws -> [UInt8] {
        try checkSparsity(sparsity)
        var mask = [UInt8](repeating: 1, count: weight.data.count)
        let prune = method.pruner.prune!
        try withArguments(weight, options, stats) { view, options, stats in
            try mask.withUnsafeMutableBufferPointer { mask in
                try method.call { prune(method.descriptor, view, stats, sparsity, options, mask.baseAddress, $0) }
            }
        }
        try checkMask(mask, layer: weight.layerName)
        return mask
    }

    func prune(weight: [Float], rows: Int, cols: Int, sparsity: Double, options: [String: String] = [:],
               stats: ActivationStats? = nil, layerName: String = "", layerKind: LayerKind = .other) throws -> [UInt8] {
        try weight.withUnsafeBufferPointer { data in
            try prune(weight: WeightView(data: data, rows: rows, cols: cols, layerName: layerName, layerKind: layerKind),
                      sparsity: sparsity, options: options, stats: stats)
        }
    }

    /// Whole groups of rows or columns (FFN neurons, attention heads): a keep-mask with one entry
    /// per row (`axis == .rows`) or column, equal within each group of `groupSize`.
    enum Axis: Sendable { case rows, cols }

    func pruneStructured(weight: WeightView, axis: Axis, groupSize: Int, sparsity: Double,
                         options: [String: String] = [:], stats: ActivationStats? = nil) throws -> [UInt8] {
        try checkSparsity(sparsity)
        guard let pruneStructured = method.pruner.prune_structured else {
            throw PluginError("pruner '\(name)' (\(method.file)) has no structured mode")
        }
        let length = axis == .rows ? weight.rows : weight.cols
        guard groupSize >= 1, length % groupSize == 0 else {
            throw PluginError("\(weight.layerName): group size \(groupSize) does not divide \(length)")
        }
        var keep = [UInt8](repeating: 1, count: length)
        var structure = sk_structure(struct_size: UInt32(MemoryLayout<sk_structure>.size),
                                     axis: UInt32(axis == .rows ? SK_AXIS_ROWS : SK_AXIS_COLS),
                                     group_size: Int64(groupSize))
        try withArguments(weight, options, stats) { view, options, stats in
            try keep.withUnsafeMutableBufferPointer { keep in
                try method.call {
                    pruneStructured(method.descriptor, view, stats, &structure, sparsity, options, keep.baseAddress, $0)
                }
            }
        }
        try checkMask(keep, layer: weight.layerName)
        for group in stride(from: 0, to: length, by: groupSize) where Set(keep[group ..< group + groupSize]).count != 1 {
            throw PluginError("pruner '\(name)' (\(method.file)) split group at \(group) of \(weight.layerName)")
        }
        return keep
    }

    /// The method's importance of every weight (rows * cols, higher = more important).
    func scores(weight: WeightView, options: [String: String] = [:], stats: ActivationStats? = nil) throws -> [Float] {
        guard let scoresExtension = method.extension(SK_EXT_SCORES, as: sk_scores_ext.self),
              let score = scoresExtension.pointee.score else {
            throw PluginError("pruner '\(name)' (\(method.file)) cannot prune globally: it lacks the \(SK_EXT_SCORES) extension")
        }
        var scores = [Float](repeating: 0, count: weight.data.count)
        try withArguments(weight, options, stats) { view, options, stats in
            try scores.withUnsafeMutableBufferPointer { scores in
                try method.call { score(method.descriptor, view, stats, options, scores.baseAddress, $0) }
            }
        }
        if let bad = scores.firstIndex(where: { !($0.isFinite && $0 >= 0) }) {
            throw PluginError("pruner '\(name)' (\(method.file)) scored weight \(bad) of \(weight.layerName) as \(scores[bad])")
        }
        return scores
    }

    /// Global pruning: one ranking over the weights of ALL layers, removing exactly
    /// round(sparsity * total) of them (ties go to the earlier layer, then the lower index).
    /// `stats[i]` belongs to `weights[i]`. Returns one keep-mask per layer.
    func pruneGlobally(weights: [WeightView], sparsity: Double, options: [String: String] = [:],
                       stats: [ActivationStats?]? = nil) throws -> [[UInt8]] {
        try checkSparsity(sparsity)
        var scores: [Float] = []
        var offsets: [Int] = []
        for (i, weight) in weights.enumerated() {
            offsets.append(scores.count)
            scores += try self.scores(weight: weight, options: options, stats: stats?[i])
            guard scores.count <= Int(UInt32.max) else {
                throw PluginError("global pruning ranks at most 2^32 - 1 weights; these layers hold more")
            }
        }
        // The plugins' own exact ranking (PluginSupport), over every layer's scores at once.
        var flat = [UInt8](repeating: 1, count: scores.count)
        scores.withUnsafeBufferPointer { scores in
            flat.withUnsafeMutableBufferPointer { mask in
                keepAllButLowest(scores, count: prunedCount(sparsity: sparsity, of: scores.count), mask: mask)
            }
        }
        return weights.indices.map { i in Array(flat[offsets[i] ..< offsets[i] + weights[i].data.count]) }
    }

    private func checkSparsity(_ sparsity: Double) throws {
        guard sparsity.isFinite, (0...1).contains(sparsity) else {
            throw PluginError("pruner '\(name)': sparsity \(sparsity) is outside 0...1")
        }
    }

    private func checkMask(_ mask: [UInt8], layer: String) throws {
        if let bad = mask.firstIndex(where: { $0 > 1 }) {
            throw PluginError("pruner '\(name)' (\(method.file)) wrote \(mask[bad]) at \(bad) of the mask of \(layer); masks hold 0 or 1")
        }
    }

    /// Lays out the weight, the resolved options and (when given) the statistics for a C call,
    /// after checking that the statistics the method needs are there.
    private func withArguments(_ weight: WeightView, _ options: [String: String], _ stats: ActivationStats?,
                               _ body: (UnsafePointer<sk_weight_view>, UnsafePointer<sk_options>, UnsafePointer<sk_activation_stats>?) throws -> Void) throws {
        let needs = neededStatistics
        if needs != 0 {
            let missing = stats?.missing(needs) ?? ActivationStats(features: weight.cols, tokens: 0).missing(needs)
            if !missing.isEmpty {
                throw PluginError("pruner '\(name)' needs calibration statistics (\(missing.joined(separator: ", "))) for \(weight.layerName.isEmpty ? "this layer" : weight.layerName), and none were collected")
            }
        }
        if let stats, stats.features != weight.cols {
            throw PluginError("\(weight.layerName): statistics of \(stats.features) input features for a weight with \(weight.cols) columns")
        }
        try weight.withCView { view in
            try method.withCOptions(options) { options in
                if let stats {
                    try stats.withCStats(layer: weight.layerName) { try body(view, options, $0) }
                } else {
                    try body(view, options, nil)
                }
            }
        }
    }
}
