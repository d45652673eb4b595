import Testing
import Kernels

private func halves(_ values: [Float]) -> [UInt16] {
    var h = [UInt16](repeating: 0, count: values.count)
    sk_float_to_half(values, &h, values.count)
    return h
}

private func floats(_ h: [UInt16]) -> [Float] {
    var f = [Float](repeating: .nan, count: h.count)
    sk_half_to_float(h, &f, h.count)
    return f
}

@Suite("FP16 kernels", .serialized)
struct QuantFP16Tests {
    @Test("every half converts to the float Swift's Float16 gives, on every kernel path")
    func halfToFloatExhaustive() {
        let all = (0...UInt16.max).map { $0 }
        forEachKernelPath { path in
            let converted = floats(all)
            for (h, f) in zip(all, converted) {
                let expected = Float(Float16(bitPattern: h))
                if expected.isNaN { #expect(f.isNaN, "\(path) 0x\(String(h, radix: 16))") }
                else { #expect(f.bitPattern == expected.bitPattern, "\(path) 0x\(String(h, radix: 16))") }
            }
        }
    }

    @Test("float to half rounds to nearest even like Swift's Float16, including ties, subnormals and overflow")
    func floatToHalfRounding() {
        var generator = SeededGenerator(seed: 31)
        var values: [Float] = [0, -0, 1, -1, 65504, 65519.99, 65520, -65520, 1e9, .infinity, -.infinity,
                               6.1035156e-05, 5.9604645e-08, 2.9802322e-08, 2.9802326e-08, 1e-10, -3e-6,
                               1.00048828125, 1.00146484375, 2049, 2051, 4097]   // exact ties both ways
        values += (0..<5000).map { _ in Float(bitPattern: UInt32.random(in: 0x3000_0000...0x4800_0000, using: &generator)) }
        values += (0..<5000).map { _ in -Float(bitPattern: UInt32.random(in: 0x2000_0000...0x4800_0000, using: &generator)) }
        forEachKernelPath { path in
            let converted = halves(values)
            for (value, h) in zip(values, converted) {
                #expect(h == Float16(value).bitPattern, "\(path) \(value)")
            }
            #expect(Float(Float16(bitPattern: halves([.nan])[0])).isNaN, "\(path) NaN")
        }
    }

    @Test("the fast FP16 product matches the reference on odd shapes, with and without bias",
          arguments: [1, 3, 7, 33], [1, 5, 96, 800])
    func fastMatchesReference(M: Int, K: Int) {
        var generator = SeededGenerator(seed: UInt64(M * 1000 + K))
        for N in [1, 7, 65] {
            let Wh = halves(randomFloats(N * K, in: -0.5...0.5, &generator))
            let x = randomFloats(M * K, in: -3...3, &generator)
            let bias = randomFloats(N, in: -1...1, &generator)
            var packed = [UInt16](repeating: 0xffff, count: sk_fp16_packed_bytes(Int32(N), Int32(K)) / 2)
            sk_pack_weights_fp16(Wh, Int32(N), Int32(K), &packed)
            let tolerance = magnitudeSums(x, floats(Wh), M: M, K: K, N: N).map { $0 * 1e-5 + 1e-6 }
            forEachKernelPath { path in
                for b in [bias, nil] {
                    var fast = [Float](repeating: .nan, count: M * N)
                    var reference = [Float](repeating: .nan, count: M * N)
                    sk_linear_fp16(x, Int32(M), Int32(K), packed, b, Int32(N), &fast)
                    sk_linear_fp16_reference(x, Int32(M), Int32(K), Wh, b, Int32(N), &reference)
                    let worst = (0..<(M * N)).map { abs(fast[$0] - reference[$0]) / tolerance[$0] }.max()!
                    #expect(worst <= 1, "\(path) M=\(M) K=\(K) N=\(N) bias=\(b != nil)")
                }
            }
        }
    }

    @Test("FP16 weights round-trip within half precision and the packed copy pads channels to 16")
    func roundTripAndSize() {
        var generator = SeededGenerator(seed: 32)
        let W = randomFloats(1000, in: -2...2, &generator)
        for (w, back) in zip(W, floats(halves(W))) { #expect(abs(back - w) <= abs(w) / 2048) }
        #expect(sk_fp16_packed_bytes(3072, 768) == 3072 * 768 * 2)
        #expect(sk_fp16_packed_bytes(17, 10) == 32 * 10 * 2)
    }

    @Test("two threads give the same FP16 output as one")
    func threadsAgree() {
        var generator = SeededGenerator(seed: 33)
        let M = 33, K = 800, N = 65
        let Wh = halves(randomFloats(N * K, in: -1...1, &generator))
        let x = randomFloats(M * K, in: -1...1, &generator)
        var packed = [UInt16](repeating: 0, count: sk_fp16_packed_bytes(Int32(N), Int32(K)) / 2)
        sk_pack_weights_fp16(Wh, Int32(N), Int32(K), &packed)
        func run() -> [Float] {
            var y = [Float](repeating: .nan, count: M * N)
            sk_linear_fp16(x, Int32(M), Int32(K), packed, nil, Int32(N), &y)
            return y
        }
        #expect(withKernelThreads(1, run) == withKernelThreads(2, run))
    }
}
