/// A padded batch of encoded texts, laid out as the model reads it: every array is (B, T) row-major.
struct BatchEncoding: Sendable, Equatable {
    let batchSize: Int        // B
    let sequenceLength: Int   // T
    let inputIds: [Int32]      // (B, T), [PAD] after each text's [SEP]
    let attentionMask: [Int32] // (B, T), 1 on real tokens, 0 on padding
    let tokenTypeIds: [Int32]  // (B, T), all 0: one segment per text
}

extension Tokenizer {
    /// Pads `ids` (each already `encode`d) on the right to the longest of them, or to `length` when
    /// that is longer. Padding never cuts a sequence: truncate with `encode(_:maxLength:)`.
    func encodeBatch(_ ids: [[Int]], padTo length: Int? = nil) -> BatchEncoding {
        let longest = ids.map(\.count).max() ?? 0
        let T = max(longest, length ?? 0)
        let B = ids.count
        var inputIds = [Int32](repeating: Int32(padId), count: B * T)
        var attentionMask = [Int32](repeating: 0, count: B * T)
        for (b, row) in ids.enumerated() {
            for (t, id) in row.enumerated() {
                inputIds[b * T + t] = Int32(id)
                attentionMask[b * T + t] = 1
            }
        }
        return BatchEncoding(batchSize: B, sequenceLength: T, inputIds: inputIds, attentionMask: attentionMask,
                             tokenTypeIds: [Int32](repeating: 0, count: B * T))
    }
}
