import Foundation

/// A small deterministic random number generator: xoshiro256** (Blackman & Vigna), its 256-bit state
/// filled from the seed by SplitMix64 as the authors recommend.
///
/// Everything random in training (shuffling, dropout masks, initialisation) draws from one of these, so
/// a run with the same seed repeats exactly, and `state` can be saved in a training checkpoint so a
/// resumed run continues the same sequence. The sequence depends only on the seed — not on the
/// platform, the run or the thread count.
struct SeededRandom: RandomNumberGenerator, Sendable, Equatable {
    /// The four state words; never all zero.
    private(set) var state: (UInt64, UInt64, UInt64, UInt64)

    init(seed: UInt64) {
        var splitMix = SplitMix64(seed: seed)
        // SplitMix64 never yields four zeros in a row, so the state is valid for every seed.
        state = (splitMix.next(), splitMix.next(), splitMix.next(), splitMix.next())
    }

    /// Continues from a state saved with `state` (a resumed training run).
    init(state: (UInt64, UInt64, UInt64, UInt64)) {
        precondition(state != (0, 0, 0, 0), "SeededRandom: the all-zero state is not valid for xoshiro256**")
        self.state = state
    }

    /// The state as an array, for a checkpoint file.
    var stateWords: [UInt64] { [state.0, state.1, state.2, state.3] }

    init?(stateWords words: [UInt64]) {
        guard words.count == 4, words.contains(where: { $0 != 0 }) else { return nil }
        self.init(state: (words[0], words[1], words[2], words[3]))
    }

    mutating func next() -> UInt64 {
        let result = rotateLeft(state.1 &* 5, by: 7) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = rotateLeft(state.3, by: 45)
        return result
    }

    /// Uniform in [0, 1), with the 24 random bits a Float can hold (every value equally likely).
    mutating func nextFloat() -> Float {
        Float(next() >> 40) * 0x1p-24
    }

    /// Uniform in [0, 1) with 53 random bits.
    mutating func nextDouble() -> Double {
        Double(next() >> 11) * 0x1p-53
    }

    /// A normal sample by Box–Muller. One uniform pair gives one sample (the second is dropped), so
    /// the state advances by exactly two words per call, which keeps saved states simple.
    mutating func normal(mean: Float = 0, std: Float = 1) -> Float {
        // 1 - u lies in (0, 1], so the logarithm is finite.
        let u1 = 1 - nextDouble()
        let u2 = nextDouble()
        let z = (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2)
        return mean + std * Float(z)
    }

    /// Fills `count` floats with normal samples (weight initialisation).
    mutating func fillNormal(_ buffer: UnsafeMutablePointer<Float>, count: Int, mean: Float = 0, std: Float = 1) {
        for i in 0..<count { buffer[i] = normal(mean: mean, std: std) }
    }

    static func == (lhs: SeededRandom, rhs: SeededRandom) -> Bool { lhs.state == rhs.state }

    private func rotateLeft(_ x: UInt64, by k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
}
