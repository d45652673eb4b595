// Exact ranking of importance scores, shared by the pruning plugins (each links its own copy) and the
// host's global ranking over several layers.

/// Writes 0 into `mask` for the `k` lowest of `scores` and 1 for the rest. Ties go to the lower
/// index (it is pruned first), so the result is deterministic. Scores must be finite and >= 0: the
/// IEEE-754 bit patterns of such floats order like the numbers, so one integer sort of
/// (bits << 32 | index) ranks by score, then by index.
public func keepAllButLowest(_ scores: UnsafeBufferPointer<Float>, count k: Int, mask: UnsafeMutableBufferPointer<UInt8>) {
    let n = scores.count
    precondition(mask.count == n && n <= Int(UInt32.max))
    if k <= 0 { mask.update(repeating: 1); return }
    if k >= n { mask.update(repeating: 0); return }
    var keys = [UInt64](unsafeUninitializedCapacity: n) { keys, initialized in
        for i in 0..<n { keys[i] = UInt64(scores[i].bitPattern) << 32 | UInt64(i) }
        initialized = n
    }
    keys.sort()
    mask.update(repeating: 1)
    for rank in 0..<k { mask[Int(keys[rank] & 0xFFFF_FFFF)] = 0 }
}

/// The number of items removed for a sparsity: round(sparsity * n), halves away from zero.
public func prunedCount(sparsity: Double, of n: Int) -> Int {
    min(n, max(0, Int((sparsity * Double(n)).rounded(.toNearestOrAwayFromZero))))
}

/// The first non-finite value of a weight, as (row, col), or nil.
public func firstNonFinite(_ data: UnsafeBufferPointer<Float>, cols: Int) -> (row: Int, col: Int)? {
    for i in 0..<data.count where !data[i].isFinite { return (i / cols, i % cols) }
    return nil
}
