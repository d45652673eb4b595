import Testing
import Kernels

/// Group-wise INT4 weights and the activations quantized to match, as the Quant plugin runs them.
private struct Int4Layer {
    let N: Int, K: Int, group: Int
    var blocks: [UInt8]

    init(W: [Float], N: Int, K: Int, group: Int) {
        self.N = N
        self.K = K
        self.group = group
        blocks = [UInt8](repeating: 0, count: sk_int4_weights_bytes(Int32(N), Int32(K), Int32(group)))
        sk_quantize_weights_int4(W, Int32(N), Int32(K), Int32(group), &blocks)
    }

    func dequantized() -> [Float] {
        var W = [Float](repeating: .nan, count: N * K)
        sk_dequantize_weights_int4(blocks, Int32(N), Int32(K), Int32(group), &W)
        return W
    }

    func quantize(_ x: [Float], M: Int) -> (xq: [Int8], scales: [Float]) {
        var xq = [Int8](repeating: 0, count: M * K)
        var scales = [Float](repeating: .nan, count: M * K / group)
        sk_quantize_rows_int8_grouped(x, Int32(M), Int32(K), Int32(group), &xq, &scales)
        return (xq, scales)
    }

    func fast(_ xq: [Int8], _ scales: [Float], M: Int, bias: [Float]?) -> [Float] {
        var y = [Float](repeating: .nan, count: M * N)
        sk_linear_int4(xq, scales, Int32(M), Int32(K), Int32(group), blocks, bias, Int32(N), &y)
        return y
    }

    func reference(_ xq: [Int8], _ scales: [Float], M: Int, bias: [Float]?) -> [Float] {
        var y = [Float](repeating: .nan, count: M * N)
        sk_linear_int4_reference(xq, scales, Int32(M), Int32(K), Int32(group), blocks, bias, Int32(N), &y)
        return y
    }

    /// The activations the integer codes stand for: xq · scale of its group.
    func dequantizedActivations(_ xq: [Int8], _ scales: [Float], M: Int) -> [Float] {
        (0..<(M * K)).map { i in Float(xq[i]) * scales[(i / K) * (K / group) + (i % K) / group] }
    }
}

@Suite("INT4 kernels", .serialized)
struct QuantInt4Tests {
    // K must be a multiple of the group size; the shapes have odd numbers of groups and odd M, N.
    @Test("the fast INT4 product matches the reference on odd shapes (K a multiple of the group)",
          arguments: [32, 64, 128], [1, 3, 33])
    func fastMatchesReference(group: Int, M: Int) {
        var generator = SeededGenerator(seed: UInt64(group * 100 + M))
        for K in [group, 3 * group, group == 32 ? 800 : 7 * group] {
            for N in [1, 7, 65] {
                let layer = Int4Layer(W: randomFloats(N * K, in: -0.3...0.3, &generator), N: N, K: K, group: group)
                let x = randomFloats(M * K, in: -4...4, &generator)
                let bias = randomFloats(N, in: -1...1, &generator)
                forEachKernelPath { path in
                    let (xq, scales) = layer.quantize(x, M: M)
                    // Only the float summation order differs between the kernels.
                    let tolerance = magnitudeSums(layer.dequantizedActivations(xq, scales, M: M), layer.dequantized(),
                                                  M: M, K: K, N: N).map { $0 * 1e-5 + 1e-6 }
                    for b in [bias, nil] {
                        let fast = layer.fast(xq, scales, M: M, bias: b)
                        let reference = layer.reference(xq, scales, M: M, bias: b)
                        let worst = (0..<(M * N)).map { abs(fast[$0] - reference[$0]) / tolerance[$0] }.max()!
                        #expect(worst <= 1, "\(path) G=\(group) M=\(M) K=\(K) N=\(N) bias=\(b != nil)")
                    }
                }
            }
        }
    }

    @Test("a 32-input block is an IEEE half scale and 16 bytes, inputs j and j+16 sharing byte j")
    func blockLayout() {
        #expect(MemoryLayout<sk_block_q4_32>.size == 18)
        #expect(MemoryLayout<sk_block_q4_64>.size == 34)
        #expect(MemoryLayout<sk_block_q4_128>.size == 66)
        #expect(sk_int4_weights_bytes(3072, 768, 32) == 3072 * 24 * 18)
        // Weights -8·0.25 ... 7·0.25, then the same again: the largest magnitude, -2, sets d = 0.25.
        let W: [Float] = (0..<32).map { Float($0 % 16 - 8) * 0.25 }
        let layer = Int4Layer(W: W, N: 1, K: 32, group: 32)
        #expect(layer.blocks[0] == 0x00 && layer.blocks[1] == 0x34)       // 0.25 as a little-endian half
        for j in 0..<16 { #expect(layer.blocks[2 + j] == UInt8(j | (j << 4)), "byte \(j)") }
        #expect(layer.dequantized() == W)
    }

    @Test("INT4 quantization keeps the largest weight of each group and every other within one step",
          arguments: [32, 64, 128])
    func roundTrip(group: Int) {
        var generator = SeededGenerator(seed: UInt64(group))
        let N = 5, K = 4 * group
        var W = randomFloats(N * K, in: -1...1, &generator)
        for k in 0..<group { W[2 * K + k] = 0 }           // an all-zero group
        W[3 * K + 5] = 3.5                                 // a positive outlier: maps to code 0 (-8 · d, d < 0)
        let restored = Int4Layer(W: W, N: N, K: K, group: group).dequantized()
        for n in 0..<N {
            for g in 0..<(K / group) {
                let range = (n * K + g * group)..<(n * K + (g + 1) * group)
                let extreme = range.map { abs(W[$0]) }.max()!
                let step = extreme / 8
                let largest = range.first { abs(W[$0]) == extreme }!
                // The extreme weight survives up to the half-precision rounding of the scale.
                #expect(abs(restored[largest] - W[largest]) <= extreme / 1024, "extreme of group \(g), row \(n)")
                for i in range { #expect(abs(restored[i] - W[i]) <= step * 1.001, "W[\(i)]") }
            }
        }
        #expect((0..<group).allSatisfy { restored[2 * K + $0] == 0 })
        #expect(abs(restored[3 * K + 5] - 3.5) <= 3.5 / 1024)
    }

    @Test("extreme codes times ±127/-128 activations are exact (no int16 overflow in the kernel)")
    func extremeCodes() {
        let M = 3, K = 128, N = 4, group = 32
        // Codes all 0 (weight -8), all 15 (+7), alternating 0/15, and a ramp; scale 1.0 (half 0x3c00).
        var blocks = [UInt8]()
        let codeRows: [(Int) -> UInt8] = [{ _ in 0 }, { _ in 15 }, { $0 % 2 == 0 ? 0 : 15 }, { UInt8($0 % 16) }]
        for n in 0..<N {
            for g in 0..<(K / group) {
                blocks += [0x00, 0x3c]
                for j in 0..<16 { blocks.append(codeRows[n](g * 32 + j) | (codeRows[n](g * 32 + j + 16) << 4)) }
            }
        }
        let patterns: [(Int) -> Int8] = [{ _ in -128 }, { _ in 127 }, { $0 % 2 == 0 ? -128 : 127 }]
        let xq: [Int8] = (0..<(M * K)).map { patterns[$0 / K]($0 % K) }
        let scales = [Float](repeating: 1, count: M * K / group)
        let layer = Int4Layer(W: [Float](repeating: 0, count: N * K), N: N, K: K, group: group)
        var custom = layer
        custom.blocks = blocks
        let weights = custom.dequantized()
        forEachKernelPath { path in
            let fast = custom.fast(xq, scales, M: M, bias: nil)
            for m in 0..<M {
                for n in 0..<N {
                    var exact = 0
                    for k in 0..<K { exact += Int(xq[m * K + k]) * Int(weights[n * K + k]) }
                    #expect(fast[m * N + n] == Float(exact), "\(path) row \(m) channel \(n)")
                }
            }
        }
    }

    @Test("an INT4 layer stays within 10% of the float layer on random data")
    func approximatesFloat() {
        var generator = SeededGenerator(seed: 21)
        let M = 8, K = 256, N = 48
        let W = randomFloats(N * K, in: -0.1...0.1, &generator)
        let x = randomFloats(M * K, in: -2...2, &generator)
        let layer = Int4Layer(W: W, N: N, K: K, group: 32)
        let (xq, scales) = layer.quantize(x, M: M)
        let y = layer.fast(xq, scales, M: M, bias: nil)
        let expected = floatLinear(x, W, nil, M: M, K: K, N: N)
        let errorNorm = zip(y, expected).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
        let norm = expected.map { $0 * $0 }.reduce(0, +).squareRoot()
        #expect(errorNorm / norm < 0.10)
    }

    @Test("group sizes other than 32, 64 and 128, or K not a multiple of the group, are refused")
    func shapeCheck() {
        #expect(sk_int4_shape_ok(768, 32) && sk_int4_shape_ok(768, 128) && sk_int4_shape_ok(64, 64))
        #expect(!sk_int4_shape_ok(800, 64) && !sk_int4_shape_ok(768, 16) && !sk_int4_shape_ok(0, 32))
    }

    @Test("two threads give the same INT4 output as one")
    func threadsAgree() {
        var generator = SeededGenerator(seed: 22)
        let M = 33, K = 800, N = 65
        let layer = Int4Layer(W: randomFloats(N * K, in: -1...1, &generator), N: N, K: K, group: 32)
        let (xq, scales) = layer.quantize(randomFloats(M * K, in: -1...1, &generator), M: M)
        let one = withKernelThreads(1) { layer.fast(xq, scales, M: M, bias: nil) }
        let two = withKernelThreads(2) { layer.fast(xq, scales, M: M, bias: nil) }
        #expect(one == two)
    }
}
