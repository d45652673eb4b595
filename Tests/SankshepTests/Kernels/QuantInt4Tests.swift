import Testing
import Kernels

/// Group-wise INT4 weights (storage and packed layouts) and the activations quantized to match, as
/// the Quant plugin runs them.
private struct Int4Layer {
    let N: Int, K: Int, group: Int
    var codes: [UInt8]
    var groupScales: [Int8]
    var channelScales: [Float]

    init(W: [Float], N: Int, K: Int, group: Int) {
        self.N = N
        self.K = K
        self.group = group
        codes = [UInt8](repeating: 0, count: sk_int4_codes_bytes(Int32(N), Int32(K)))
        groupScales = [Int8](repeating: 0, count: N * K / group)
        channelScales = [Float](repeating: .nan, count: N)
        sk_quantize_weights_int4(W, Int32(N), Int32(K), Int32(group), &codes, &groupScales, &channelScales)
    }

    var packed: [UInt8] {
        var packed = [UInt8](repeating: 0xaa, count: sk_int4_packed_bytes(Int32(N), Int32(K), Int32(group)))
        sk_pack_weights_int4(codes, groupScales, Int32(N), Int32(K), Int32(group), &packed)
        return packed
    }

    func dequantized() -> [Float] {
        var W = [Float](repeating: .nan, count: N * K)
        sk_dequantize_weights_int4(codes, groupScales, channelScales, Int32(N), Int32(K), Int32(group), &W)
        return W
    }

    /// Per-row int8 activations (as dynamic INT8), their scales and group sums.
    func quantize(_ x: [Float], M: Int) -> (xq: [Int8], scales: [Float], sums: [Int16]) {
        var xq = [Int8](repeating: 0, count: M * K)
        var scales = [Float](repeating: .nan, count: M)
        sk_quantize_rows_int8(x, Int32(M), Int32(K), 0, &xq, &scales)
        return (xq, scales, sums(xq, M: M))
    }

    func sums(_ xq: [Int8], M: Int) -> [Int16] {
        var sums = [Int16](repeating: 99, count: M * Int(sk_int4_padded_groups(Int32(K), Int32(group))))
        sk_int4_activation_sums(xq, Int32(M), Int32(K), Int32(group), &sums)
        return sums
    }

    func fast(_ xq: [Int8], _ scales: [Float], _ sums: [Int16], M: Int, bias: [Float]?, packed: [UInt8]? = nil) -> [Float] {
        var y = [Float](repeating: .nan, count: M * N)
        sk_linear_int4(xq, scales, sums, Int32(M), Int32(K), Int32(group), packed ?? self.packed, channelScales, bias, Int32(N), &y)
        return y
    }

    func reference(_ xq: [Int8], _ scales: [Float], M: Int, bias: [Float]?) -> [Float] {
        var y = [Float](repeating: .nan, count: M * N)
        sk_linear_int4_reference(xq, scales, Int32(M), Int32(K), Int32(group), codes, groupScales, channelScales,
                                 bias, Int32(N), &y)
        return y
    }

    func code(_ n: Int, _ k: Int) -> Int {
        let byte = codes[n * K / 2 + k / 2]
        return Int(k % 2 == 0 ? byte & 0x0f : byte >> 4)
    }
}

@Suite("INT4 kernels", .serialized)
struct QuantInt4Tests {
    // K must be a multiple of the group size; the shapes have odd numbers of groups and odd M, N.
    @Test("the fast INT4 product equals the reference bit for bit on odd shapes (K a multiple of the group)",
          arguments: [32, 64, 128], [1, 3, 33])
    func fastMatchesReference(group: Int, M: Int) {
        var generator = SeededGenerator(seed: UInt64(group * 100 + M))
        for K in [group, 3 * group, group == 32 ? 800 : 17 * group] {
            for N in [1, 7, 65] {
                let layer = Int4Layer(W: randomFloats(N * K, in: -0.3...0.3, &generator), N: N, K: K, group: group)
                let x = randomFloats(M * K, in: -4...4, &generator)
                let bias = randomFloats(N, in: -1...1, &generator)
                forEachKernelPath { path in
                    let (xq, scales, sums) = layer.quantize(x, M: M)
                    for b in [bias, nil] {
                        #expect(layer.fast(xq, scales, sums, M: M, bias: b) == layer.reference(xq, scales, M: M, bias: b),
                                "\(path) G=\(group) M=\(M) K=\(K) N=\(N) bias=\(b != nil)")
                    }
                }
            }
        }
    }

    @Test("codes pack two per byte in input order, and pack then unpack gives the storage layout back",
          arguments: [32, 64, 128])
    func layouts(group: Int) {
        // Weights -8·0.25 ... 7·0.25 repeating: every group's extreme is -2, so s = 127, D = 0.25/127.
        let K = 2 * group, N = 3
        let W: [Float] = (0..<(N * K)).map { Float($0 % 16 - 8) * 0.25 }
        let layer = Int4Layer(W: W, N: N, K: K, group: group)
        for k in 0..<K { #expect(layer.code(1, k) == (k + K) % 16, "code of input \(k)") }
        #expect(layer.groupScales.allSatisfy { $0 == 127 })
        #expect(layer.channelScales.allSatisfy { $0 == 0.25 / 127 })
        let restored = layer.dequantized()
        for i in W.indices { #expect(abs(restored[i] - W[i]) <= 1e-6, "W[\(i)]") }
        var codes = [UInt8](repeating: 0, count: layer.codes.count)
        var scales = [Int8](repeating: 0, count: layer.groupScales.count)
        sk_unpack_weights_int4(layer.packed, Int32(N), Int32(K), Int32(group), &codes, &scales)
        #expect(codes == layer.codes && scales == layer.groupScales)
        #expect(sk_int4_codes_bytes(3072, 768) == 3072 * 384)
        // One panel of 16 channels: 64 inputs of codes in 8 steps of 64 bytes, then 2 groups × 16 scales.
        #expect(sk_int4_packed_bytes(7, 64, 32) == 8 * 64 + 2 * 16)
        #expect(sk_int4_packed_bytes(17, 64, 64) == 2 * (8 * 64 + 16))
    }

    @Test("INT4 quantization keeps every weight within one step of its group and zero groups at zero",
          arguments: [32, 64, 128])
    func roundTrip(group: Int) {
        var generator = SeededGenerator(seed: UInt64(group))
        let N = 5, K = 4 * group
        var W = randomFloats(N * K, in: -1...1, &generator)
        for k in 0..<group { W[2 * K + k] = 0 }            // an all-zero group
        for k in 0..<group { W[4 * K + group + k] *= 0.01 } // a group far smaller than its row's largest
        W[3 * K + 5] = 3.5                                  // a positive outlier
        let restored = Int4Layer(W: W, N: N, K: K, group: group).dequantized()
        let rowLargest = (0..<N).map { n in (0..<K).map { abs(W[n * K + $0]) }.max()! }
        for n in 0..<N {
            for g in 0..<(K / group) {
                let range = (n * K + g * group)..<(n * K + (g + 1) * group)
                let extreme = range.map { abs(W[$0]) }.max()!
                // One step of the group's ideal scale (a weight opposite in sign to the extreme may
                // clip from +8 to +7), plus the rounding of that scale to a multiple of
                // D = (row's largest / 8) / 127, times at most 8 codes.
                let bound = extreme / 8 + 8 * rowLargest[n] / 8 / 127
                for i in range { #expect(abs(restored[i] - W[i]) <= bound * 1.001, "W[\(i)]") }
            }
        }
        #expect((0..<group).allSatisfy { restored[2 * K + $0] == 0 })
        #expect(abs(restored[3 * K + 5] - 3.5) <= 3.5 / 16)
    }

    @Test("extreme codes, group scales ±127 and activations ±127/-128 are exact (no int16 or int32 overflow)")
    func extremeCodes() {
        let M = 3, K = 8192, N = 4, group = 32
        // Codes all 0 (weight -8), all 15 (+7), alternating 0/15, and a ramp; group scales ±127.
        let codeRows: [(Int) -> UInt8] = [{ _ in 0 }, { _ in 15 }, { $0 % 2 == 0 ? 0 : 15 }, { UInt8($0 % 16) }]
        var codes = [UInt8](repeating: 0, count: N * K / 2)
        for n in 0..<N {
            for k in stride(from: 0, to: K, by: 2) { codes[n * K / 2 + k / 2] = codeRows[n](k) | (codeRows[n](k + 1) << 4) }
        }
        let groupScales: [Int8] = (0..<(N * K / group)).map { $0 % 3 == 0 ? -127 : 127 }
        let custom = Int4Layer(codes: codes, groupScales: groupScales, channelScales: [1, 1, 1, 1], N: N, K: K, group: group)
        let patterns: [(Int) -> Int8] = [{ _ in -128 }, { _ in 127 }, { $0 % 2 == 0 ? -128 : 127 }]
        let xq: [Int8] = (0..<(M * K)).map { patterns[$0 / K]($0 % K) }
        let scales = [Float](repeating: 1, count: M)
        forEachKernelPath { path in
            let fast = custom.fast(xq, scales, custom.sums(xq, M: M), M: M, bias: nil)
            for m in 0..<M {
                for n in 0..<N {
                    var exact = 0
                    for k in 0..<K { exact += Int(xq[m * K + k]) * (custom.code(n, k) - 8) * Int(groupScales[n * K / group + k / group]) }
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
        let (xq, scales, sums) = layer.quantize(x, M: M)
        let y = layer.fast(xq, scales, sums, M: M, bias: nil)
        let expected = floatLinear(x, W, nil, M: M, K: K, N: N)
        let errorNorm = zip(y, expected).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
        let norm = expected.map { $0 * $0 }.reduce(0, +).squareRoot()
        #expect(errorNorm / norm < 0.10)
    }

    @Test("group sizes other than 32, 64 and 128, K not a multiple of the group, or K above 8192 are refused")
    func shapeCheck() {
        #expect(sk_int4_shape_ok(768, 32) && sk_int4_shape_ok(768, 128) && sk_int4_shape_ok(64, 64) && sk_int4_shape_ok(8192, 32))
        #expect(!sk_int4_shape_ok(800, 64) && !sk_int4_shape_ok(768, 16) && !sk_int4_shape_ok(0, 32) && !sk_int4_shape_ok(8224, 32))
        #expect(sk_int4_padded_groups(768, 32) == 32 && sk_int4_padded_groups(768, 128) == 16)
    }

    @Test("activation group sums add each group's int8 values and pad with zeros")
    func activationSums() {
        let K = 96, group = 32
        let xq: [Int8] = (0..<(2 * K)).map { Int8(($0 * 37) % 255 - 127) }
        let sums = Int4Layer(codes: [], groupScales: [], channelScales: [], N: 0, K: K, group: group).sums(xq, M: 2)
        #expect(sums.count == 2 * 16)
        for m in 0..<2 {
            for g in 0..<16 {
                let expected = g < 3 ? (0..<group).reduce(0) { $0 + Int(xq[m * K + g * group + $1]) } : 0
                #expect(Int(sums[m * 16 + g]) == expected)
            }
        }
    }

    @Test("two threads give the same INT4 output as one")
    func threadsAgree() {
        var generator = SeededGenerator(seed: 22)
        let M = 33, K = 800, N = 65
        let layer = Int4Layer(W: randomFloats(N * K, in: -1...1, &generator), N: N, K: K, group: 32)
        let (xq, scales, sums) = layer.quantize(randomFloats(M * K, in: -1...1, &generator), M: M)
        let packed = layer.packed
        let one = withKernelThreads(1) { layer.fast(xq, scales, sums, M: M, bias: nil, packed: packed) }
        let two = withKernelThreads(2) { layer.fast(xq, scales, sums, M: M, bias: nil, packed: packed) }
        #expect(one == two)
    }
}

private extension Int4Layer {
    init(codes: [UInt8], groupScales: [Int8], channelScales: [Float], N: Int, K: Int, group: Int) {
        self.N = N
        self.K = K
        self.group = group
        self.codes = codes
        self.groupScales = groupScales
        self.channelScales = channelScales
    }
}
