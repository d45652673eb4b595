import Testing
@testable import Host

@Suite("Length-bucketed batches")
struct BatchingTests {
    /// 1,000 lengths between 3 and 128, skewed short like real comments.
    private let lengths: [Int] = (0..<1000).map { 3 + ($0 * 7919 % 1000) * ($0 * 104_729 % 1000) / 8000 }

    @Test("training batches hold every sequence exactly once, each batch at most batch-size long")
    func coverage() {
        let batches = Batching.trainingBatches(lengths: lengths, batchSize: 32, seed: 42)
        #expect(batches.flatMap(\.indices).sorted() == Array(lengths.indices))
        #expect(batches.allSatisfy { $0.indices.count <= 32 && !$0.indices.isEmpty })
        #expect(batches.count == 32)
    }

    @Test("each batch is padded only to its own longest sequence")
    func paddedToLongest() {
        for batch in Batching.trainingBatches(lengths: lengths, batchSize: 32, seed: 42) {
            #expect(batch.paddedLength == batch.indices.map { lengths[$0] }.max())
        }
    }

    @Test("bucketing leaves far less padding than random batches or padding to 128")
    func lessPadding() {
        let bucketed = Batching.paddingFraction(Batching.trainingBatches(lengths: lengths, batchSize: 32, seed: 42), lengths: lengths)
        let random = Batching.paddingFraction(Batching.trainingBatches(lengths: lengths, batchSize: 32, seed: 42, chunkBatches: 1), lengths: lengths)
        let fixed = 1 - Double(lengths.reduce(0, +)) / Double(lengths.count * 128)
        #expect(bucketed < 0.1)
        #expect(bucketed < random / 2)
        #expect(random < fixed)
    }

    @Test("the same seed and epoch give the same batches; another epoch or seed a different order")
    func determinism() {
        let a = Batching.trainingBatches(lengths: lengths, batchSize: 16, seed: 7, epoch: 3)
        let b = Batching.trainingBatches(lengths: lengths, batchSize: 16, seed: 7, epoch: 3)
        #expect(a == b)
        #expect(a != Batching.trainingBatches(lengths: lengths, batchSize: 16, seed: 7, epoch: 4))
        #expect(a != Batching.trainingBatches(lengths: lengths, batchSize: 16, seed: 8, epoch: 3))
    }

    @Test("evaluation batches are sorted by length and results come back in dataset order")
    func evaluationOrder() {
        let short = [5, 2, 9, 2, 7]
        let batches = Batching.evaluationBatches(lengths: short, batchSize: 2)
        #expect(batches == [Batch(indices: [1, 3], paddedLength: 2), Batch(indices: [0, 4], paddedLength: 7),
                            Batch(indices: [2], paddedLength: 9)])
        // A "model" that returns each sequence's length times ten, batch by batch.
        let results = batches.map { $0.indices.map { short[$0] * 10 } }
        #expect(Batching.restoreOrder(results, batches: batches, count: short.count) == [50, 20, 90, 20, 70])
    }

    @Test("padding fills ids with the pad id and the mask with zeros after each sequence")
    func padding() {
        let sequences = [[2, 11, 3], [2, 12, 13, 14, 3]]
        let batch = Batching.evaluationBatches(sequences: sequences, batchSize: 4)[0]
        let padded = Batching.pad(sequences, batch: batch, padID: 0)
        #expect(padded.batchSize == 2 && padded.sequenceLength == 5)
        #expect(padded.inputIDs == [2, 11, 3, 0, 0, 2, 12, 13, 14, 3])
        #expect(padded.attentionMask == [1, 1, 1, 0, 0, 1, 1, 1, 1, 1])
        #expect(padded.lengths == [3, 5])
        #expect(padded.indices == [0, 1])
    }

    @Test("without shuffling, training batches are the length-sorted order")
    func noShuffle() {
        let batches = Batching.trainingBatches(lengths: [4, 1, 3], batchSize: 2, seed: 1, shuffle: false)
        #expect(batches == [Batch(indices: [1, 2], paddedLength: 3), Batch(indices: [0], paddedLength: 4)])
    }
}
