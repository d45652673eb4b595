import Kernels
import Testing
@testable import Host

@Suite("Optimizer kernels")
struct OptimizerKernelTests {
    static func randomBuffer(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var random = SeededRandom(seed: seed)
        return (0..<count).map { _ in random.normal(std: scale) }
    }

    @Test("the AVX2 AdamW update gives exactly the reference loop's bits, tails included",
          arguments: [0, 1, 7, 8, 9, 63, 1000, 4099])
    func adamwFastMatchesReference(count: Int) {
        var scalars = sk_adamw_scalars(decay_factor: 1 - 1e-3 * 0.01, one_minus_beta1: 0.1, beta2: 0.999, one_minus_beta2: 0.001,
                                       bias_correction2_sqrt: Float((1 - 0.999 * 0.999).squareRoot()), epsilon: 1e-8,
                                       negative_step_size: Float(-1e-3 / (1 - 0.9 * 0.9)))
        let gradients = Self.randomBuffer(count, seed: 1, scale: 0.01)
        var fast = (Self.randomBuffer(count, seed: 2), Self.randomBuffer(count, seed: 3, scale: 0.001), Self.randomBuffer(count, seed: 4, scale: 1e-5).map(abs))
        var reference = fast
        for _ in 0..<3 {
            sk_adamw_update(count, &fast.0, gradients, &fast.1, &fast.2, &scalars)
            sk_adamw_update_reference(count, &reference.0, gradients, &reference.1, &reference.2, &scalars)
        }
        #expect(fast.0 == reference.0)
        #expect(fast.1 == reference.1)
        #expect(fast.2 == reference.2)
    }

    @Test("the AVX2 sum of squares agrees with the double-precision reference", arguments: [0, 5, 31, 32, 33, 1024, 1055, 100_003])
    func sumOfSquaresFastMatchesReference(count: Int) {
        let values = Self.randomBuffer(count, seed: UInt64(count) + 11, scale: 3)
        let fast = sk_sum_of_squares(values, count)
        let reference = sk_sum_of_squares_reference(values, count)
        #expect(abs(fast - reference) <= 1e-6 * max(reference, 1e-30), "\(fast) vs \(reference)")
        #expect(count == 0 ? reference == 0 : reference > 0)
    }
}
