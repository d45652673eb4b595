import Foundation

/// Collects what calibration-based pruners ask for (WANDA: ‖X_j‖₂ per input feature; also abs-max
/// and the range) on the inputs of the linear layers, over inference forwards of calibration comments.
///
/// Encoder layers are observed through the model's `linearHook`; the head's hidden layer reads the
/// pooled vector, which the caller hands over after each forward (`observeHead`).
final class ActivationCollector: LinearLayerHook {
    /// Per observed module: (features) Σ x², (features) max |x|, min, max, tokens.
    private struct Running {
        var sumOfSquares: [Double]
        var absMax: [Float]
        var minimum: Float = .infinity
        var maximum: Float = -.infinity
        var tokens = 0
    }

    private let wanted: Set<String>
    private var running: [String: Running] = [:]

    /// `modules`: the module names whose inputs are collected (others are ignored).
    init(modules: [String]) { wanted = Set(modules) }

    func observe(layers: [String], input: UnsafePointer<Float>, rows: Int, inFeatures: Int) {
        // Q, K and V share one input: it is accumulated once and shared below.
        guard let first = layers.first(where: { wanted.contains($0) }) else { return }
        accumulate(first, input: input, rows: rows, features: inFeatures)
        for other in layers where other != first && wanted.contains(other) { running[other] = running[first] }
    }

    func replace(layers: [String], input: UnsafePointer<Float>, rows: Int, inFeatures: Int,
                 output: UnsafeMutablePointer<Float>, outFeatures: Int, includeBias: Bool) -> Bool { false }

    /// The head's hidden layer reads `pooled` (B, H).
    func observeHead(_ module: String, pooled: Tensor) {
        guard wanted.contains(module) else { return }
        pooled.scalars.withUnsafeBufferPointer {
            accumulate(module, input: $0.baseAddress!, rows: pooled.shape[0], features: pooled.shape[1])
        }
    }

    private func accumulate(_ module: String, input: UnsafePointer<Float>, rows: Int, features: Int) {
        var stats = running[module] ?? Running(sumOfSquares: [Double](repeating: 0, count: features),
                                                absMax: [Float](repeating: 0, count: features))
        precondition(stats.absMax.count == features, "\(module): input width changed between batches")
        // input (rows, features)
        for r in 0..<rows {
            let x = input + r * features
            for j in 0..<features {
                let v = x[j]
                stats.sumOfSquares[j] += Double(v) * Double(v)
                stats.absMax[j] = max(stats.absMax[j], abs(v))
                stats.minimum = min(stats.minimum, v)
                stats.maximum = max(stats.maximum, v)
            }
        }
        stats.tokens += rows
        running[module] = stats
    }

    /// The statistics of `module`, or nil when no forward reached it.
    func statistics(_ module: String) -> ActivationStats? {
        guard let stats = running[module], stats.tokens > 0 else { return nil }
        return ActivationStats(features: stats.absMax.count, tokens: stats.tokens,
                               inputL2Norm: stats.sumOfSquares.map { Float($0.squareRoot()) },
                               inputAbsMax: stats.absMax, inputRange: stats.minimum...stats.maximum)
    }

    /// Runs `rows` of `sequences` through `network` in inference mode and collects the inputs of
    /// `layers`. Padding positions are rows of the products too and are counted; length-bucketed
    /// batches keep them few.
    static func collect(network: SequenceClassifier, layers: [PrunableLayer], sequences: [[Int]], rows: [Int],
                        padID: Int, batchSize: Int = 32) throws -> [String: ActivationStats] {
        let collector = ActivationCollector(modules: layers.map(\.name))
        let previous = network.linearHook
        network.linearHook = collector
        defer { network.linearHook = previous }
        let lengths = rows.map { sequences[$0].count }
        for batch in Batching.evaluationBatches(lengths: lengths, batchSize: batchSize) {
            let dataRows = batch.indices.map { rows[$0] }
            let padded = Batching.pad(sequences, batch: Batch(indices: dataRows, paddedLength: batch.paddedLength), padID: padID)
            _ = try network.forward(inputIds: padded.inputIDs.map(Int32.init), attentionMask: padded.attentionMask.map(Int32.init),
                                    batch: padded.batchSize, length: padded.sequenceLength, training: false)
            collector.observeHead(network.names.headHidden, pooled: network.pooledOutput())
        }
        var result: [String: ActivationStats] = [:]
        for layer in layers where layer.kind != .embedding { result[layer.name] = collector.statistics(layer.name) }
        for layer in layers where layer.kind == .embedding {
            result[layer.name] = tokenStatistics(sequences: rows.map { sequences[$0] }, vocabulary: layer.rows)
        }
        return result
    }

    /// The input statistics of the word-embedding table seen as the linear layer E^T on one-hot tokens
    /// (SK_LAYER_EMBEDDING): input feature j is token j, 1 where it occurs and 0 elsewhere, so
    /// ||X_j||_2 = sqrt(occurrences of j), the abs-max is 1 for a token that occurs and 0 otherwise, and
    /// the range is [0, 1]. Counted over the comments' real tokens: padding is not an input the model
    /// reads (the attention mask drops it). A token the comments never use gets norm 0, which is what
    /// WANDA's |W_ij| · ||X_j|| says about it; so the prune stage counts over every training comment
    /// (counting is cheap), not only the calibration sample.
    static func tokenStatistics(sequences: [[Int]], vocabulary: Int) -> ActivationStats {
        var counts = [Int](repeating: 0, count: vocabulary)
        var tokens = 0
        for sequence in sequences {
            for id in sequence where id >= 0 && id < vocabulary { counts[id] += 1 }
            tokens += sequence.count
        }
        return ActivationStats(features: vocabulary, tokens: tokens, inputL2Norm: counts.map { Float(Double($0).squareRoot()) },
                               inputAbsMax: counts.map { $0 > 0 ? 1 : 0 }, inputRange: 0...1)
    }
}
