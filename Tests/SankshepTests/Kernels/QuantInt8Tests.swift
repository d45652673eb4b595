import Testing
import Kernels

/// An INT8 layer built from float weights the way the Quant plugin builds one.
private struct Int8Layer {
    let N: Int, K: Int
    var Wq: [Int8]
    var scales: [Float]
    var packed: [Int8]

    init(W: [Float], N: Int, K: Int) {
        self.N = N
        self.K = K
        Wq = [Int8](repeating: 0, count: N * K)
        scales = [Float](repeating: 0, count: N)
        sk_quantize_weights_int8_per_channel(W, Int32(N), Int32(K), &Wq, &scales)
        packed = []
        pack()
    }

    /// A layer from integer weights directly, to reach corner values the quantizer never produces.
    init(Wq: [Int8], scales: [Float], N: Int, K: Int) {
        self.N = N
        self.K = K
        self.Wq = Wq
        self.scales = scales
        packed = []
        pack()
    }

    private mutating func pack() {
        packed = [Int8](repeating: 99, count: sk_int8_packed_bytes(Int32(N), Int32(K)))
        sk_pack_weights_int8(Wq, Int32(N), Int32(K), &packed)
    }

    func fast(_ xq: [Int8], _ rowScales: [Float], M: Int, bias: [Float]?) -> [Float] {
        var y = [Float](repeating: .nan, count: M * N)
        sk_linear_int8(xq, rowScales, Int32(M), Int32(K), packed, scales, bias, Int32(N), &y)
        return y
    }

    func reference(_ xq: [Int8], _ rowScales: [Float], M: Int, bias: [Float]?) -> [Float] {
        var y = [Float](repeating: .nan, count: M * N)
        let ldx = sk_int8_padded_k(Int32(K))
        sk_linear_int8_reference(xq, ldx, rowScales, Int32(M), Int32(K), Wq, scales, bias, Int32(N), &y)
        return y
    }
}

private func quantizeRows(_ x: [Float], M: Int, K: Int, staticScale: Float = 0) -> (xq: [Int8], scales: [Float]) {
    let ldx = Int(sk_int8_padded_k(Int32(K)))
    var xq = [Int8](repeating: 99, count: M * ldx)
    var scales = [Float](repeating: .nan, count: M)
    sk_quantize_rows_int8(x, Int32(M), Int32(K), staticScale, &xq, &scales)
    return (xq, scales)
}

@Suite("INT8 kernels", .serialized)
struct QuantInt8Tests {
    @Test("the fast INT8 product equals the reference bit for bit on odd shapes, with and without bias",
          arguments: [1, 3, 33], [5, 32, 96, 800])
    func fastMatchesReference(M: Int, K: Int) {
        var generator = SeededGenerator(seed: UInt64(M * 1000 + K))
        for N in [1, 7, 65] {
            let W = randomFloats(N * K, in: -0.2...0.2, &generator)
            let x = randomFloats(M * K, in: -3...3, &generator)
            let bias = randomFloats(N, in: -1...1, &generator)
            let layer = Int8Layer(W: W, N: N, K: K)
            forEachKernelPath { path in
                let (xq, rowScales) = quantizeRows(x, M: M, K: K)
                for b in [bias, nil] {
                    let fast = layer.fast(xq, rowScales, M: M, bias: b)
                    let reference = layer.reference(xq, rowScales, M: M, bias: b)
                    #expect(fast == reference, "\(path) M=\(M) K=\(K) N=\(N) bias=\(b != nil)")
                }
            }
        }
    }

    @Test("products at the int16 limit of vpmaddubsw (activations -128 and ±127, weights ±127) stay exact")
    func saturationCorners() {
        let M = 5, K = 800, N = 7
        // Rows of x: all -128, all +127, all -127, alternating -128/+127, alternating +127/-128.
        var xq = [Int8](repeating: 0, count: M * Int(sk_int8_padded_k(Int32(K))))
        let ldx = Int(sk_int8_padded_k(Int32(K)))
        let patterns: [(Int) -> Int8] = [{ _ in -128 }, { _ in 127 }, { _ in -127 },
                                         { $0 % 2 == 0 ? -128 : 127 }, { $0 % 2 == 0 ? 127 : -128 }]
        for m in 0..<M { for k in 0..<K { xq[m * ldx + k] = patterns[m](k) } }
        // Channels: all +127, all -127, alternating, blocks of 32 flipping sign, and random ±127.
        var generator = SeededGenerator(seed: 7)
        var Wq = [Int8](repeating: 0, count: N * K)
        for k in 0..<K {
            Wq[0 * K + k] = 127
            Wq[1 * K + k] = -127
            Wq[2 * K + k] = k % 2 == 0 ? 127 : -127
            Wq[3 * K + k] = (k / 32) % 2 == 0 ? -127 : 127
            Wq[4 * K + k] = Bool.random(using: &generator) ? 127 : -127
            Wq[5 * K + k] = k % 2 == 0 ? -127 : 127
            Wq[6 * K + k] = Int8(Int(k % 255) - 127)
        }
        let layer = Int8Layer(Wq: Wq, scales: [Float](repeating: 1, count: N), N: N, K: K)
        let rowScales = [Float](repeating: 1, count: M)
        forEachKernelPath { path in
            let fast = layer.fast(xq, rowScales, M: M, bias: nil)
            for m in 0..<M {
                for n in 0..<N {
                    var exact = 0
                    for k in 0..<K { exact += Int(xq[m * ldx + k]) * Int(Wq[n * K + k]) }
                    #expect(fast[m * N + n] == Float(exact), "\(path) row \(m) channel \(n)")
                }
            }
            #expect(fast == layer.reference(xq, rowScales, M: M, bias: nil), "\(path)")
        }
    }

    @Test("weight quantization keeps every weight within half a step and never produces -128")
    func weightRoundTrip() {
        var generator = SeededGenerator(seed: 11)
        let N = 9, K = 100
        var W = randomFloats(N * K, in: -1...1, &generator)
        for k in 0..<K { W[3 * K + k] = 0 }                // a dead channel
        W[5 * K + 17] = -4                                  // an outlier sets its channel's scale
        let layer = Int8Layer(W: W, N: N, K: K)
        var restored = [Float](repeating: .nan, count: N * K)
        sk_dequantize_weights_int8(layer.Wq, layer.scales, Int32(N), Int32(K), &restored)
        #expect(layer.scales[3] == 0)
        #expect(layer.scales[5] == Float(4) / 127)
        #expect(layer.Wq[5 * K + 17] == -127)
        #expect(!layer.Wq.contains(-128))
        for n in 0..<N {
            let maxMagnitude = (0..<K).map { abs(W[n * K + $0]) }.max()!
            #expect(layer.scales[n] == maxMagnitude / 127)
            for k in 0..<K {
                #expect(abs(restored[n * K + k] - W[n * K + k]) <= layer.scales[n] * 0.5001, "W[\(n), \(k)]")
            }
        }
    }

    @Test("dynamic activation quantization gives each row max|x|/127, rounds within half a step and zero-pads")
    func dynamicRows() {
        var generator = SeededGenerator(seed: 12)
        let M = 4, K = 77, ldx = Int(sk_int8_padded_k(77))
        var x = randomFloats(M * K, in: -5...5, &generator)
        for k in 0..<K { x[2 * K + k] = 0 }                 // a row of zeros (padding token)
        var results: [[Int8]] = []
        forEachKernelPath { path in
            let (xq, scales) = quantizeRows(x, M: M, K: K)
            results.append(xq)
            for m in 0..<M {
                let maxMagnitude = (0..<K).map { abs(x[m * K + $0]) }.max()!
                #expect(scales[m] == maxMagnitude / 127, "\(path) row \(m)")
                for k in 0..<K {
                    #expect(abs(Float(xq[m * ldx + k]) * scales[m] - x[m * K + k]) <= scales[m] * 0.5001)
                }
                for k in K..<ldx { #expect(xq[m * ldx + k] == 0, "\(path) padding of row \(m)") }
            }
            #expect(scales[2] == 0 && (0..<K).allSatisfy { xq[2 * ldx + $0] == 0 })
        }
        #expect(results.allSatisfy { $0 == results[0] }, "the kernel levels quantize differently")
    }

    @Test("static activation quantization uses the given scale and clamps to ±127")
    func staticRows() {
        let K = 40
        let x: [Float] = (0..<K).map { Float($0 - 20) * 0.5 }    // -10 ... 9.5
        forEachKernelPath { path in
            let (xq, scales) = quantizeRows(x, M: 1, K: K, staticScale: 0.05)
            #expect(scales == [0.05], "\(path)")
            for k in 0..<K {
                let expected = max(-127, min(127, (x[k] / 0.05).rounded(.toNearestOrEven)))
                #expect(Float(xq[k]) == expected, "\(path) x[\(k)] = \(x[k])")
            }
        }
    }

    @Test("an INT8 layer stays within 2% of the float layer on random data")
    func approximatesFloat() {
        var generator = SeededGenerator(seed: 13)
        let M = 8, K = 256, N = 48
        let W = randomFloats(N * K, in: -0.1...0.1, &generator)
        let x = randomFloats(M * K, in: -2...2, &generator)
        let bias = randomFloats(N, in: -0.5...0.5, &generator)
        let layer = Int8Layer(W: W, N: N, K: K)
        let (xq, rowScales) = quantizeRows(x, M: M, K: K)
        let y = layer.fast(xq, rowScales, M: M, bias: bias)
        let expected = floatLinear(x, W, bias, M: M, K: K, N: N)
        let errorNorm = zip(y, expected).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
        let norm = expected.map { $0 * $0 }.reduce(0, +).squareRoot()
        #expect(errorNorm / norm < 0.02)
    }

    @Test("two threads give the same INT8 output as one")
    func threadsAgree() {
        var generator = SeededGenerator(seed: 14)
        let M = 33, K = 800, N = 65
        let layer = Int8Layer(W: randomFloats(N * K, in: -1...1, &generator), N: N, K: K)
        let (xq, rowScales) = quantizeRows(randomFloats(M * K, in: -1...1, &generator), M: M, K: K)
        let one = withKernelThreads(1) { layer.fast(xq, rowScales, M: M, bias: nil) }
        let two = withKernelThreads(2) { layer.fast(xq, rowScales, M: M, bias: nil) }
        #expect(one == two)
        #expect(one == layer.reference(xq, rowScales, M: M, bias: nil))
    }

    @Test("the bytes reported cover packed weights padded to the tile plus one scale per channel")
    func bytesUsed() {
        #expect(sk_int8_padded_k(1) == 32 && sk_int8_padded_k(32) == 32 && sk_int8_padded_k(800) == 800)
        #expect(sk_int8_weights_bytes(3072, 768) == 3072 * 768 + 3072 * 4)
        #expect(sk_int8_packed_bytes(7, 33) >= 7 * 64)
    }

    @Test("unpacking the packed INT8 weights gives back the storage layout on odd shapes")
    func unpackInvertsPack() {
        var generator = SeededGenerator(seed: 17)
        for (N, K) in [(1, 1), (3, 31), (7, 33), (16, 64), (5, 100)] {
            let Wq = (0..<(N * K)).map { _ in Int8.random(in: -127...127, using: &generator) }
            var packed = [Int8](repeating: 99, count: sk_int8_packed_bytes(Int32(N), Int32(K)))
            sk_pack_weights_int8(Wq, Int32(N), Int32(K), &packed)
            var back = [Int8](repeating: 0, count: N * K)
            sk_unpack_weights_int8(packed, Int32(N), Int32(K), &back)
            #expect(back == Wq, "N \(N), K \(K)")
        }
    }
}
