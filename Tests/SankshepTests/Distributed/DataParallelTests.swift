import Foundation
import Testing
@testable import Host

@Suite("Data-parallel shards and seeds")
struct DataParallelTests {
    @Test("the shards of a batch cover it exactly once, in order, nearly equal, empty only when ranks outnumber rows")
    func shardsPartitionTheBatch() {
        for size in 1...5 {
            for count in 0...12 {
                let shards = (0..<size).map { DataParallel.shard(of: count, rank: $0, size: size) }
                #expect(shards.flatMap { Array($0) } == Array(0..<count), "\(count) rows over \(size) ranks")
                let lengths = shards.map(\.count)
                #expect(lengths.max()! - lengths.min()! <= 1)
            }
        }
    }

    @Test("rank 0 keeps the run's dropout seed, other ranks get their own, and undoing it gives the seed back")
    func dropoutSeedsPerRank() {
        let seed: UInt64 = 42
        #expect(DataParallel.rankDropoutSeed(seed, rank: 0) == seed)
        let seeds = (0..<8).map { DataParallel.rankDropoutSeed(seed, rank: $0) }
        #expect(Set(seeds).count == 8)
        #expect(seeds.enumerated().allSatisfy { DataParallel.rankDropoutSeed($1, rank: $0) == seed })
    }

    @Test("one rank trains exactly as no communicator does: the same loss history and weights, bit for bit")
    func oneRankIsOneProcess() throws {
        let communicator = try SingleRankCommunicator.communicator()
        let preset = ModelPreset(name: "test-tiny", summary: "", hiddenSize: 16, layers: 2, heads: 2,
                                 intermediateSize: 32, maxPositions: 64, learningRate: 3e-3, epochs: 2, batchSize: 8)
        let texts = (0..<40).map { "মন্তব্য নম্বর \($0) " + String(repeating: "খারাপ ", count: $0 % 5) }
        let labels = (0..<40).map { $0 % 5 >= 3 ? 1 : 0 }
        func train(_ dataParallel: DataParallel?) throws -> (TrainingResult, [Float]) {
            let classifier = try Classifier.fromPreset(preset, tokenizerDirectory: Fixtures.bundledTokenizer, dropout: 0.1, pooling: .cls, seed: 7)
            let sequences = texts.map { classifier.tokenizer.encode($0, maxLength: 32) }
            var trainer = Trainer(settings: TrainingSettings(batchSize: 8, learningRate: 3e-3, epochs: 2, warmupRatio: 0.1, weightDecay: 0.01,
                                                             gradientClipNorm: 1, earlyStoppingPatience: 5, scheduler: .linear, loss: .bce,
                                                             focalAlpha: 0.25, focalGamma: 2, useClassWeights: false, freezeBase: false, seed: 7))
            trainer.dataParallel = dataParallel
            let result = try trainer.train(classifier, sequences: sequences, labels: labels, train: Array(0..<30), validation: Array(30..<40),
                                           label: "tiny", checkpoint: nil, resume: false)
            let store = classifier.network.store
            return (result, Array(UnsafeBufferPointer(start: store.values, count: store.count)))
        }
        let (alone, aloneWeights) = try train(nil)
        let (ranked, rankedWeights) = try train(DataParallel(communicator: communicator, bucketBytes: 4096))
        #expect(ranked.history.map(\.trainLoss) == alone.history.map(\.trainLoss))
        #expect(rankedWeights == aloneWeights)
    }
}
