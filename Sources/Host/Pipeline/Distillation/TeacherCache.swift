import Foundation

/// Which of the teacher's outputs distillation reads, beyond the logit.
struct TeacherOutputs: Sendable, Equatable {
    /// Teacher hidden-state indices to keep (0 = embedding output, i = output of layer i).
    var hiddenStates: [Int] = []
    /// Keep the hidden states as one pooled vector per sequence (mean over real tokens) rather than
    /// per token: what is comparable when teacher and student tokenize differently.
    var pooledHiddenStates = false
    /// Teacher layers (from 0) whose attention probabilities to keep, averaged over heads.
    var attentionLayers: [Int] = []
}

/// The teacher's outputs on the training rows, computed once per row before the student trains and
/// read at every step of every epoch: the teacher never runs inside the training loop.
///
/// Per row: the logit; for each kept hidden state either (T, H) for the row's real tokens or (H)
/// pooled; for each kept layer the head-averaged attention probabilities (T, T) over real tokens.
/// Memory is Σ rows of T·H per hidden state and T² per attention layer, in Float.
final class TeacherCache {
    struct Entry: Sendable {
        /// The binary logit (`BinaryReadout`): l₁ − l₀ for a two-label teacher.
        let logit: Float
        /// Real tokens of the row under the teacher's tokenizer.
        let length: Int
        /// One per `TeacherOutputs.hiddenStates`: (length, H) row-major, or (H) when pooled.
        let hidden: [[Float]]
        /// One per `TeacherOutputs.attentionLayers`: (length, length), averaged over heads.
        let attention: [[Float]]
    }

    let outputs: TeacherOutputs
    let hiddenSize: Int
    private var entries: [Int: Entry] = [:]
    /// How many times the teacher's forward ran on each row: the proof that it runs once per row.
    private(set) var forwardsPerRow: [Int: Int] = [:]

    /// Runs the teacher (inference, no dropout) once on every row of `rows`.
    /// - Parameter sequences: every row's token ids under the teacher's tokenizer.
    init(teacher: Classifier, sequences: [[Int]], rows: [Int], outputs: TeacherOutputs, batchSize: Int = 64) throws {
        self.outputs = outputs
        let network = teacher.network
        let H = network.shape.hiddenSize
        self.hiddenSize = H
        let unique = Array(Set(rows)).sorted()
        let batches = Batching.evaluationBatches(lengths: unique.map { sequences[$0].count }, batchSize: batchSize)
        for batch in batches {
            let dataRows = batch.indices.map { unique[$0] }
            let padded = Batching.pad(sequences, batch: Batch(indices: dataRows, paddedLength: batch.paddedLength), padID: teacher.tokenizer.padId)
            let logits = try network.forward(inputIds: padded.inputIDs.map(Int32.init), attentionMask: padded.attentionMask.map(Int32.init),
                                             batch: padded.batchSize, length: padded.sequenceLength, training: false)
            // The teacher's binary logit: what a one-logit student's logit is compared with.
            let binaryLogits = BinaryReadout.binaryLogits(logits, labels: network.numLabels)
            let T = padded.sequenceLength
            let hidden = outputs.hiddenStates.map { network.hiddenState($0).scalars }          // each (B, T, H)
            let attention = outputs.attentionLayers.map { network.attentionProbabilities(layer: $0) }   // each (B, nh, T, T)
            for (b, row) in dataRows.enumerated() {
                let length = padded.lengths[b]
                let rowHidden = hidden.map { states -> [Float] in
                    let tokens = states[(b * T * H)..<((b * T + length) * H)]
                    return outputs.pooledHiddenStates ? Self.meanOverTokens(Array(tokens), length: length, width: H) : Array(tokens)
                }
                let rowAttention = attention.map { Self.headMean($0.scalars, batchIndex: b, heads: $0.shape[1], paddedLength: T, length: length) }
                entries[row] = Entry(logit: binaryLogits[b], length: length, hidden: rowHidden, attention: rowAttention)
                forwardsPerRow[row, default: 0] += 1
            }
        }
    }

    subscript(row: Int) -> Entry {
        guard let entry = entries[row] else { preconditionFailure("TeacherCache: row \(row) was not cached") }
        return entry
    }

    var count: Int { entries.count }

    /// (W) mean of the `length` rows of tokens (length, W).
    static func meanOverTokens(_ tokens: [Float], length: Int, width: Int) -> [Float] {
        var mean = [Float](repeating: 0, count: width)
        guard length > 0 else { return mean }
        for t in 0..<length { for c in 0..<width { mean[c] += tokens[t * width + c] } }
        let scale = 1 / Float(length)
        return mean.map { $0 * scale }
    }

    /// (length, length): the head average of sequence b's attention probabilities over its real tokens,
    /// from probs (B, heads, T, T).
    static func headMean(_ probs: [Float], batchIndex b: Int, heads: Int, paddedLength T: Int, length: Int) -> [Float] {
        var mean = [Float](repeating: 0, count: length * length)
        for h in 0..<heads {
            let base = (b * heads + h) * T * T
            for q in 0..<length { for k in 0..<length { mean[q * length + k] += probs[base + q * T + k] } }
        }
        let scale = 1 / Float(heads)
        return mean.map { $0 * scale }
    }
}
