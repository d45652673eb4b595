import Foundation

/// Data-parallel training of one model over the ranks of a job: every rank holds the whole model and
/// takes its shard of every batch (the batch positions split into contiguous, nearly equal parts);
/// the gradients are summed across ranks in fused buckets while the backward still runs
/// (`GradientBuckets`), so every rank applies the same update to the same weights and the ranks stay
/// identical, step after step. The global batch is `--batch`, as in one process: the same batches,
/// the same loss and metrics within float rounding (the sums run in another order).
///
/// Dropout masks are drawn per rank (seed mixed with the rank), so shards do not share masks; one
/// process draws one mask for the whole batch, so with dropout the runs agree in distribution, not in
/// bits. Every rank evaluates the whole validation split (the same weights give the same
/// probabilities), so early stopping decides alike everywhere.
struct DataParallel: Sendable {
    let communicator: Communicator
    /// The fusion threshold: gradients summed in one call (PyTorch DDP's default bucket is 25 MB).
    var bucketBytes: Int = 25 << 20

    /// This rank's positions of a batch of `count` rows (may be empty when the batch is smaller than the job).
    func shard(of count: Int) -> Range<Int> {
        Self.shard(of: count, rank: communicator.rank, size: communicator.size)
    }

    static func shard(of count: Int, rank: Int, size: Int) -> Range<Int> {
        (rank * count / size)..<((rank + 1) * count / size)
    }

    /// The bucketed allreduce for `network`, hooked into its backward; `release` unhooks it.
    func buckets(for network: SequenceClassifier) -> GradientBuckets {
        let buckets = GradientBuckets(communicator: communicator, store: network.store, bucketBytes: bucketBytes)
        network.onGradientsFinal = { buckets.ready($0) }
        network.dropoutSeed = Self.rankDropoutSeed(network.dropoutSeed, rank: communicator.rank)
        return buckets
    }

    func release(_ network: SequenceClassifier) {
        network.onGradientsFinal = nil
        network.dropoutSeed = Self.rankDropoutSeed(network.dropoutSeed, rank: communicator.rank)   // an involution: back to the seed
    }

    /// Rank 0's seed is the seed; the others' differ (xor with a multiple of the golden-ratio constant).
    static func rankDropoutSeed(_ seed: UInt64, rank: Int) -> UInt64 {
        seed ^ (UInt64(rank) &* 0x9E37_79B9_7F4A_7C15)
    }

    /// The whole batch's mean loss and token count from each rank's shard mean and tokens.
    func batchTotals(shardLoss: Float, shardRows: Int, batchRows: Int, tokens: Int) throws -> (loss: Float, tokens: Int) {
        var totals = [shardLoss * Float(shardRows) / Float(max(batchRows, 1)), Float(tokens)]
        try communicator.allreduceSum(&totals)
        return (totals[0], Int(totals[1].rounded()))
    }

    /// Rank 0's copy of `file` on every rank: nil when rank 0 has none.
    func sharedFile(_ file: URL) throws -> Data? {
        try communicator.sharedFile(file)
    }
}

extension Communicator {
    /// Rank 0 reads `file` and every rank gets its bytes (nil when rank 0 has no such file), so state
    /// that rank 0 alone writes -- checkpoints, completed folds -- needs no shared file system.
    func sharedFile(_ file: URL) throws -> Data? {
        // The first byte says whether the file exists (an existing file may be empty).
        var payload = Data()
        if isRoot, FileManager.default.fileExists(atPath: file.path) {
            do { payload = Data([1]) + (try Data(contentsOf: file)) } catch {
                throw DistributedError("\(file.path): cannot read it to share it with the other ranks (\(error.localizedDescription))")
            }
        }
        let shared = try broadcast(payload, root: 0)
        return shared.first == 1 ? shared.dropFirst() : nil
    }
}
