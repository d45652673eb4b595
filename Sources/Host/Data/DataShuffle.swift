/// The random source for data order: subsampling, fold assignment and batch order.
///
/// SplitMix64 (Steele, Lea & Flood 2014) is tiny and has a fixed, documented output for every seed,
/// and the shuffle below is written out (Fisher–Yates) rather than taken from the standard library,
/// whose algorithm may change between Swift versions: the same `--seed` must give the same folds and
/// batches on every machine and every toolchain. Data order draws from its own stream, separate from
/// the training generator, so changing the model or dropout does not change the folds.
struct DataShuffle: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// `stream` separates independent uses of one seed (folds vs. batches vs. subsampling).
    init(seed: UInt64, stream: UInt64 = 0) {
        state = seed ^ (stream &* 0xD1B5_4A32_D192_ED03)
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform integer in 0..<bound by Lemire's multiply-shift with rejection (no modulo bias).
    mutating func below(_ bound: Int) -> Int {
        precondition(bound > 0, "DataShuffle.below: bound must be positive")
        let range = UInt64(bound)
        let threshold = (0 &- range) % range
        while true {
            let product = next().multipliedFullWidth(by: range)
            if product.low >= threshold { return Int(product.high) }
        }
    }

    /// Fisher–Yates, from the back: every permutation equally likely.
    mutating func shuffle<T>(_ items: inout [T]) {
        guard items.count > 1 else { return }
        for i in stride(from: items.count - 1, to: 0, by: -1) {
            let j = below(i + 1)
            if i != j { items.swapAt(i, j) }
        }
    }

    mutating func shuffled<T>(_ items: [T]) -> [T] {
        var copy = items
        shuffle(&copy)
        return copy
    }

    /// Named streams, so that two uses of one seed never share random numbers.
    enum Stream: UInt64 {
        case subsample = 1, folds = 2, heldOut = 3, batches = 4
    }

    init(seed: UInt64, stream: Stream) { self.init(seed: seed, stream: stream.rawValue) }
}
