import Foundation

/// The random source for data order (subsampling, fold assignment, batch order, calibration rows),
/// for a fresh model's parameters, and for the training generator's seed.
///
/// SplitMix64 (Steele, Lea & Flood 2014) is tiny and has a fixed, documented output for every seed,
/// and the shuffle below is written out (Fisher–Yates) rather than taken from the standard library,
/// whose algorithm may change between Swift versions: the same `--seed` must give the same folds and
/// batches on every machine and every toolchain. Data order draws from its own stream, separate from
/// the training generator, so changing the model or dropout does not change the folds.
struct SplitMix64: RandomNumberGenerator, Sendable {
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
        precondition(bound > 0, "SplitMix64.below: bound must be positive")
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

    /// Uniform in [0, 1) with 24 random bits.
    mutating func nextUnit() -> Float { Float(next() >> 40) * (1.0 / 16_777_216.0) }

    /// Two independent standard normal samples (Box-Muller).
    mutating func nextNormalPair() -> (Float, Float) {
        let u1 = (Double(next() >> 11) + 1) * (1.0 / 9_007_199_254_740_993.0)   // (0, 1]
        let u2 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        let radius = (-2 * log(u1)).squareRoot()
        return (Float(radius * cos(2 * Double.pi * u2)), Float(radius * sin(2 * Double.pi * u2)))
    }

    mutating func shuffled<T>(_ items: [T]) -> [T] {
        var copy = items
        shuffle(&copy)
        return copy
    }

    /// Named streams, so that two uses of one seed never share random numbers.
    enum Stream: UInt64 {
        case subsample = 1, folds = 2, heldOut = 3, batches = 4, calibration = 5
    }

    init(seed: UInt64, stream: Stream) { self.init(seed: seed, stream: stream.rawValue) }
}
