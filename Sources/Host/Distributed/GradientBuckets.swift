import Foundation

/// Data-parallel gradient summation in fused buckets (Horovod's tensor fusion, PyTorch DDP's buckets):
/// while the backward walks down the model, each block of parameters whose gradient is final (the head,
/// then each layer, then the embeddings: `SequenceClassifier.onGradientsFinal`) joins the current
/// bucket; once the bucket holds `bucketFloats` gradients it is summed across ranks on a background
/// thread, while the backward goes on computing the layers below. `finish` sends what is left and
/// waits, so after it every rank holds the same summed gradient.
///
/// Each rank's backward produced the gradient of ITS shard's mean loss; scaled by shard / global
/// batch before the sum, the sum is the gradient of the global batch's mean loss -- what one process
/// computes on the whole batch.
///
/// A bucket is a list of store ranges. Adjacent ranges are merged, so with the layout's contiguous
/// layers a bucket is usually one range, summed in place; otherwise it is copied into a fusion buffer,
/// summed, and copied back (one collective call per bucket either way: the point of fusion, as one
/// large message costs far less than many small ones).
final class GradientBuckets: @unchecked Sendable {
    let communicator: Communicator
    let store: ParameterStore
    /// Gradients per bucket (the fusion threshold).
    let bucketFloats: Int

    private let queue = DispatchQueue(label: "sankshep.gradient-allreduce")
    private let group = DispatchGroup()
    // Touched by the training thread only.
    private var pending: [Range<Int>] = []
    private var pendingCount = 0
    private var sent: [Range<Int>] = []
    private var scale: Float = 1
    // Touched by the allreduce thread only (until `finish` has waited for it).
    private var fusion: [Float] = []
    private var failure: Error?
    private var secondsInAllreduce = 0.0
    private var bucketsSent = 0

    init(communicator: Communicator, store: ParameterStore, bucketBytes: Int) {
        self.communicator = communicator
        self.store = store
        self.bucketFloats = max(bucketBytes / MemoryLayout<Float>.size, 1)
    }

    /// Starts a step: every gradient will be multiplied by `scale` (shard rows / global batch rows) before the sum.
    func begin(scale: Float) {
        self.scale = scale
        pending = []
        pendingCount = 0
        sent = []
    }

    /// The gradients in `range` are final for this step (called on the training thread, by the backward).
    func ready(_ range: Range<Int>) {
        guard !range.isEmpty else { return }
        pending.append(range)
        pendingCount += range.count
        if pendingCount >= bucketFloats { submitPending() }
    }

    /// Sends every gradient not sent yet (blocks the backward did not report, e.g. all of them after an
    /// empty shard), waits for every bucket and returns once this rank holds the summed gradient.
    /// Returns the seconds the allreduce thread spent in collective calls this step.
    @discardableResult
    func finish() throws -> Double {
        submitPending()
        var rest: [Range<Int>] = []
        let sentRanges = Self.merged(sent)
        for view in store.views where !store.frozen.contains(view.name) {
            if !sentRanges.contains(where: { $0.lowerBound <= view.offset && view.range.upperBound <= $0.upperBound }) {
                rest.append(view.range)
            }
        }
        submit(rest)
        group.wait()
        let seconds = secondsInAllreduce
        secondsInAllreduce = 0
        if let failure {
            self.failure = nil
            throw failure
        }
        return seconds
    }

    private func submitPending() {
        submit(pending)
        pending = []
        pendingCount = 0
    }

    private func submit(_ ranges: [Range<Int>]) {
        let ranges = Self.merged(ranges)
        guard !ranges.isEmpty else { return }
        sent += ranges
        let scale = self.scale
        queue.async(group: group) { [self] in
            guard failure == nil else { return }
            let started = DispatchTime.now().uptimeNanoseconds
            do {
                try reduce(ranges, scale: scale)
            } catch {
                failure = error
            }
            secondsInAllreduce += Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            bucketsSent += 1
        }
    }

    /// One bucket: scaled, summed across ranks, in place or through the fusion buffer.
    private func reduce(_ ranges: [Range<Int>], scale: Float) throws {
        let gradients = store.gradients
        if scale != 1 {
            for range in ranges { for i in range { gradients[i] *= scale } }
        }
        if ranges.count == 1, let range = ranges.first {
            try communicator.allreduceSum(gradients + range.lowerBound, count: range.count)
            return
        }
        let total = ranges.reduce(0) { $0 + $1.count }
        if fusion.count < total { fusion = [Float](repeating: 0, count: total) }
        try fusion.withUnsafeMutableBufferPointer { buffer in
            let base = buffer.baseAddress!
            var at = 0
            for range in ranges {
                (base + at).update(from: gradients + range.lowerBound, count: range.count)
                at += range.count
            }
            try communicator.allreduceSum(base, count: total)
            at = 0
            for range in ranges {
                (gradients + range.lowerBound).update(from: base + at, count: range.count)
                at += range.count
            }
        }
    }

    /// Sorted, with touching or overlapping ranges joined.
    static func merged(_ ranges: [Range<Int>]) -> [Range<Int>] {
        var result: [Range<Int>] = []
        for range in ranges.filter({ !$0.isEmpty }).sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = result.last, range.lowerBound <= last.upperBound {
                result[result.count - 1] = last.lowerBound..<max(last.upperBound, range.upperBound)
            } else {
                result.append(range)
            }
        }
        return result
    }
}
