import Foundation
import Testing
@testable import Host

/// Analytic gradients against central finite differences on a tiny random model, for every head,
/// every pooling and with dropout both off and on (the same masks replayed for each evaluation).
@Suite("Gradients agree with finite differences")
struct GradientCheckTests {
    static let tinyBert = EncoderShape(modelType: .bert, vocabSize: 23, hiddenSize: 8, layers: 2, heads: 2,
                                       intermediateSize: 12, maxPositions: 9, typeVocabSize: 2, layerNormEps: 1e-12,
                                       hiddenDropout: 0.2, attentionDropout: 0.2, classifierDropout: 0.2)
    static var tinyDistil: EncoderShape {
        var shape = tinyBert
        shape.modelType = .distilbert
        shape.typeVocabSize = 0
        return shape
    }
    /// RoBERTa with pad id 0 (the batch's pad), so positions run 1, 2, … over the real tokens.
    static let tinyRoberta = EncoderShape(modelType: .roberta, vocabSize: 23, hiddenSize: 8, layers: 2, heads: 2,
                                          intermediateSize: 12, maxPositions: 9, typeVocabSize: 1, layerNormEps: 1e-5,
                                          hiddenDropout: 0.2, attentionDropout: 0.2, classifierDropout: 0.2, paddingIndex: 0)
    /// ALBERT: embeddings 6 wide, one layer run 3 times, gelu_new.
    static let tinyAlbert = EncoderShape(modelType: .albert, vocabSize: 23, hiddenSize: 8, layers: 3, heads: 2,
                                         intermediateSize: 12, maxPositions: 9, typeVocabSize: 2, layerNormEps: 1e-12,
                                         hiddenDropout: 0.2, attentionDropout: 0.2, classifierDropout: 0.2, embeddingSize: 6)

    // Two sequences of length 6, the second with two padding tokens.
    static let batch = 2, length = 6
    static let ids: [Int32] = [2, 5, 9, 17, 4, 3, 2, 11, 22, 3, 0, 0]
    static let mask: [Int32] = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0]
    static let types: [Int32] = [0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 0, 0]
    static let numLabels = 2
    /// The test loss is sum(logits * weights): its gradient w.r.t. the logits is `weights`.
    static let lossWeights: [Float] = [0.7, -1.3, 0.4, 1.1]

    static func loss(_ model: SequenceClassifier, training: Bool, step: UInt64) throws -> Double {
        model.dropoutStep = step
        let logits = try model.forward(inputIds: ids, attentionMask: mask,
                                       tokenTypeIds: [.bert, .albert].contains(model.shape.modelType) ? types : nil,
                                       batch: batch, length: length, training: training)
        return zip(logits, lossWeights).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
    }

    /// For each parameter tensor, the derivative along a random unit direction: (L(θ+εv) − L(θ−εv)) / 2ε
    /// against g·v. A direction spreads the check over the whole tensor and averages rounding noise; a
    /// small ε keeps the steps from crossing a ReLU or max-pooling kink.
    static func check(_ model: SequenceClassifier, training: Bool) throws {
        // Larger weights than HF's 0.02 so every path carries a gradient well above float rounding.
        initializeParameters(model.store, names: model.names, head: model.head, seed: 7, initializerRange: 0.4)
        let step: UInt64 = 3
        model.store.zeroGradients()
        _ = try loss(model, training: training, step: step)
        model.backward(dLogits: lossWeights)
        var generator = SeededGenerator(seed: 2024)
        let epsilon: Float = 1e-3
        for view in model.store.views {
            if let pooler = model.names.unusedPooler, view.name.hasPrefix(pooler) { continue }
            var direction = (0..<view.count).map { _ in Float.random(in: -1...1, using: &generator) }
            if view.name == model.names.wordEmbeddings || view.name == model.names.positionEmbeddings {
                // Only rows the batch reads have a gradient; keep the direction on them to test something.
                let used = Set(view.name == model.names.wordEmbeddings ? ids.map(Int.init) : usedPositions(model.shape))
                for row in 0..<view.shape[0] where !used.contains(row) {
                    for c in 0..<view.shape[1] { direction[row * view.shape[1] + c] = 0 }
                }
            }
            let norm = direction.reduce(0) { $0 + $1 * $1 }.squareRoot()
            direction = direction.map { $0 / norm }
            let values = model.store.values + view.offset, saved = Array(UnsafeBufferPointer(start: values, count: view.count))
            for i in 0..<view.count { values[i] = saved[i] + epsilon * direction[i] }
            let plus = try loss(model, training: training, step: step)
            for i in 0..<view.count { values[i] = saved[i] - epsilon * direction[i] }
            let minus = try loss(model, training: training, step: step)
            for i in 0..<view.count { values[i] = saved[i] }
            let numeric = (plus - minus) / Double(2 * epsilon)
            let analytic = (0..<view.count).reduce(0.0) { $0 + Double(model.store.gradients[view.offset + $1]) * Double(direction[$1]) }
            let tolerance = 2e-3 + 2e-2 * abs(numeric)
            #expect(abs(analytic - numeric) <= tolerance, "\(view.name): analytic \(analytic), numeric \(numeric)")
        }
    }

    /// The position rows the batch reads: 0..<T, or RoBERTa's ids counted from the pad + 1.
    static func usedPositions(_ shape: EncoderShape) -> [Int] {
        guard let pad = shape.paddingIndex else { return Array(0..<length) }
        var out = [Int32](repeating: 0, count: ids.count)
        ids.withUnsafeBufferPointer { i in
            out.withUnsafeMutableBufferPointer { Embeddings.robertaPositions(out: $0.baseAddress!, ids: i.baseAddress!, paddingIndex: Int32(pad), batch: batch, length: length) }
        }
        return out.map(Int.init)
    }

    static let heads: [(String, EncoderShape, ClassifierHead, Pooling)] = [
        ("bert pooler", tinyBert, .bertPooler, .cls),
        ("distilbert head", tinyDistil, .distilbert, .cls),
        ("seed head, cls", tinyBert, .seedMLP(hidden: 6), .cls),
        ("seed head, mean", tinyBert, .seedMLP(hidden: 6), .mean),
        ("seed head, max", tinyBert, .seedMLP(hidden: 6), .max),
        ("seed head on distilbert, mean", tinyDistil, .seedMLP(hidden: 6), .mean),
        // use_multi_layers: [CLS] of every hidden state of the 2-layer encoder, the embedding output included.
        ("seed head on the last 3 hidden states' [CLS]", tinyBert, .seedMLP(hidden: 6, layers: 3), .mean),
        ("roberta head", tinyRoberta, .roberta, .cls),
        ("albert: shared layer, factorized embeddings, pooler", tinyAlbert, .bertPooler, .cls),
        ("seed head on albert, mean", tinyAlbert, .seedMLP(hidden: 6), .mean),
    ]

    @Test("with dropout off, every parameter's gradient matches finite differences", arguments: heads.indices)
    func dropoutOff(index: Int) throws {
        let (_, shape, head, pooling) = Self.heads[index]
        try Self.check(SequenceClassifier(shape: shape, head: head, numLabels: Self.numLabels, pooling: pooling), training: false)
    }

    @Test("with dropout on and the masks replayed, every parameter's gradient matches finite differences",
          arguments: [0, 1, 3, 6, 7, 8])
    func dropoutOn(index: Int) throws {
        let (_, shape, head, pooling) = Self.heads[index]
        try Self.check(SequenceClassifier(shape: shape, head: head, numLabels: Self.numLabels, pooling: pooling), training: true)
    }
}
