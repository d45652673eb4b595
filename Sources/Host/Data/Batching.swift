/// A batch: which sequences, and the length they are padded to (the longest among them).
struct Batch: Sendable, Equatable {
    /// Indices into the tokenized sequences.
    var indices: [Int]
    var paddedLength: Int
}

/// A batch laid out for the model, row-major.
struct PaddedBatch: Sendable, Equatable {
    /// B
    let batchSize: Int
    /// T: the longest sequence in this batch, not `--max_length`.
    let sequenceLength: Int
    /// (B, T) token ids; padding positions hold `padID`.
    let inputIDs: [Int]
    /// (B, T) 1 for a real token, 0 for padding.
    let attentionMask: [Int]
    /// (B) real length of each row.
    let lengths: [Int]
    /// (B) which sequence each row is.
    let indices: [Int]
}

/// Length-bucketed batches with dynamic padding.
///
/// The median comment is about 12 tokens and the seed framework pads every one to 128, so most of its
/// compute multiplies padding. Here each batch is padded only to its own longest sequence, and batches
/// are formed from sequences of similar length, so there is little padding left. For training the
/// order must still be random: the indices are shuffled, cut into chunks of `chunkBatches` batches, each
/// chunk sorted by length and cut into batches, and then the order of all batches is shuffled.
/// Everything random comes from the seed, so the same seed and epoch give the same batches.
enum Batching {
    /// Training batches for one epoch. Pass a different `epoch` for a new order each epoch.
    /// With `shuffle` false the batches are simply the sequences sorted by length (ties in index order).
    static func trainingBatches(lengths: [Int], batchSize: Int, seed: UInt64, epoch: Int = 0,
                                shuffle: Bool = true, chunkBatches: Int = 50) -> [Batch] {
        precondition(batchSize > 0, "Batching: batch size must be positive")
        precondition(chunkBatches > 0, "Batching: chunkBatches must be positive")
        guard shuffle else { return evaluationBatches(lengths: lengths, batchSize: batchSize) }
        var random = SplitMix64(seed: seed, stream: SplitMix64.Stream.batches.rawValue &+ UInt64(epoch) &* 0x1_0000)
        let order = random.shuffled(Array(lengths.indices))
        let chunkSize = batchSize * chunkBatches
        var batches: [Batch] = []
        for chunkStart in stride(from: 0, to: order.count, by: chunkSize) {
            // Stable sort by length: equal lengths keep their shuffled order.
            let chunk = order[chunkStart..<min(chunkStart + chunkSize, order.count)]
                .enumerated()
                .sorted { lengths[$0.element] != lengths[$1.element] ? lengths[$0.element] < lengths[$1.element] : $0.offset < $1.offset }
                .map(\.element)
            batches += cut(chunk, batchSize: batchSize, lengths: lengths)
        }
        random.shuffle(&batches)
        return batches
    }

    /// The same, from the tokenized sequences themselves.
    static func trainingBatches(sequences: [[Int]], batchSize: Int, seed: UInt64, epoch: Int = 0,
                                shuffle: Bool = true, chunkBatches: Int = 50) -> [Batch] {
        trainingBatches(lengths: sequences.map(\.count), batchSize: batchSize, seed: seed, epoch: epoch,
                        shuffle: shuffle, chunkBatches: chunkBatches)
    }

    static func evaluationBatches(sequences: [[Int]], batchSize: Int) -> [Batch] {
        evaluationBatches(lengths: sequences.map(\.count), batchSize: batchSize)
    }

    /// Evaluation batches: all sequences sorted by length (ties in index order), cut in batch-size
    /// pieces. Put results back in dataset order with `restoreOrder`.
    static func evaluationBatches(lengths: [Int], batchSize: Int) -> [Batch] {
        precondition(batchSize > 0, "Batching: batch size must be positive")
        let sorted = lengths.indices.sorted { lengths[$0] != lengths[$1] ? lengths[$0] < lengths[$1] : $0 < $1 }
        return cut(sorted, batchSize: batchSize, lengths: lengths)
    }

    /// Per-sequence results given batch by batch (in the order of each batch's `indices`) put back in
    /// the order of the sequences.
    static func restoreOrder<T>(_ batchResults: [[T]], batches: [Batch], count: Int) -> [T] {
        precondition(batchResults.count == batches.count, "Batching: \(batchResults.count) results for \(batches.count) batches")
        var slots = [T?](repeating: nil, count: count)
        for (results, batch) in zip(batchResults, batches) {
            precondition(results.count == batch.indices.count, "Batching: a batch of \(batch.indices.count) gave \(results.count) results")
            for (index, value) in zip(batch.indices, results) { slots[index] = value }
        }
        return slots.enumerated().map { index, value in
            guard let value else { preconditionFailure("Batching: no result for sequence \(index)") }
            return value
        }
    }

    /// Pads one batch of token-id sequences to its longest member.
    static func pad(_ sequences: [[Int]], batch: Batch, padID: Int) -> PaddedBatch {
        let rows = batch.indices.count
        let length = batch.paddedLength
        var ids = [Int](repeating: padID, count: rows * length)
        var mask = [Int](repeating: 0, count: rows * length)
        var lengths = [Int](repeating: 0, count: rows)
        for (row, index) in batch.indices.enumerated() {
            let sequence = sequences[index]
            precondition(sequence.count <= length, "Batching: sequence \(index) is longer than its batch's padded length")
            lengths[row] = sequence.count
            for (t, id) in sequence.enumerated() {
                ids[row * length + t] = id
                mask[row * length + t] = 1
            }
        }
        return PaddedBatch(batchSize: rows, sequenceLength: length, inputIDs: ids, attentionMask: mask,
                           lengths: lengths, indices: batch.indices)
    }

    /// Padding share of a set of batches: padded positions / all positions (0 = no padding).
    static func paddingFraction(_ batches: [Batch], lengths: [Int]) -> Double {
        let total = batches.reduce(0) { $0 + $1.indices.count * $1.paddedLength }
        let real = batches.reduce(0) { sum, batch in sum + batch.indices.reduce(0) { $0 + lengths[$1] } }
        return total == 0 ? 0 : Double(total - real) / Double(total)
    }

    private static func cut(_ indices: [Int], batchSize: Int, lengths: [Int]) -> [Batch] {
        stride(from: 0, to: indices.count, by: batchSize).map { start in
            let members = Array(indices[start..<min(start + batchSize, indices.count)])
            return Batch(indices: members, paddedLength: members.map { lengths[$0] }.max() ?? 0)
        }
    }
}
