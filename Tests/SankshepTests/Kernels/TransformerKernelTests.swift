import Foundation
import Kernels
import Testing

/// The SIMD kernels against their plain reference loops, on sizes that are not multiples of 8.
@Suite("Transformer kernels agree with their reference loops")
struct TransformerKernelTests {
    /// Deterministic pseudo-random floats in [-scale, scale].
    static func values(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var state = seed &+ 0x9E37_79B9_7F4A_7C15
        return (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return (Float(state >> 40) / 16_777_216 * 2 - 1) * scale
        }
    }

    static func maxDifference(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) } }

    static let shapes = [(1, 1), (3, 7), (2, 8), (5, 17), (4, 32), (2, 769)]

    @Test("one attention head, fused: probabilities and context agree with the reference, masked keys get 0",
          arguments: [(1, 16), (5, 32), (16, 64), (33, 24), (70, 64), (129, 80)])
    func attentionHead(length: Int, headSize: Int) throws {
        let T = length, dh = headSize, ld = 3 * dh + 5, ldc = dh + 3
        let qkv = Self.values(T * ld, seed: 11, scale: 2)
        var mask = [Float](repeating: 1, count: T)
        for t in 0..<T where t % 4 == 3 { mask[t] = 0 }
        var probs = [Float](repeating: .nan, count: T * T), slowProbs = probs
        let untouched = Self.values(T * ldc, seed: 12)
        var context = untouched, slowContext = untouched
        let scale = 1 / Float(dh).squareRoot()
        let ran = qkv.withUnsafeBufferPointer { qkv in
            sk_attention_head_forward(&probs, &context, Int32(ldc), qkv.baseAddress!, qkv.baseAddress! + dh,
                                      qkv.baseAddress! + 2 * dh, Int32(ld), mask, Int32(T), Int32(dh), scale)
        }
        guard ran else { return }   // no AVX2 here: the GEMM path runs, which the model tests cover
        qkv.withUnsafeBufferPointer { qkv in
            sk_attention_head_forward_reference(&slowProbs, &slowContext, Int32(ldc), qkv.baseAddress!, qkv.baseAddress! + dh,
                                                qkv.baseAddress! + 2 * dh, Int32(ld), mask, Int32(T), Int32(dh), scale)
        }
        #expect(Self.maxDifference(probs, slowProbs) <= 1e-6)
        #expect(Self.maxDifference(context, slowContext) <= 1e-5)
        for i in 0..<T { for j in 0..<T where mask[j] == 0 { #expect(probs[i * T + j] == 0) } }
        // Only the (T, dh) block of context is written: the padding columns keep what they held.
        for i in 0..<T { for d in dh..<ldc { #expect(context[i * ldc + d] == untouched[i * ldc + d]) } }
    }

    @Test("LayerNorm forward: fast and reference agree", arguments: shapes)
    func layerNormForward(rows: Int, cols: Int) {
        let x = Self.values(rows * cols, seed: 1, scale: 3), w = Self.values(cols, seed: 2), b = Self.values(cols, seed: 3)
        var fast = [Float](repeating: 0, count: rows * cols), slow = fast
        var meanFast = [Float](repeating: 0, count: rows), rstdFast = meanFast, meanSlow = meanFast, rstdSlow = meanFast
        sk_layernorm_forward(&fast, &meanFast, &rstdFast, x, w, b, Int32(rows), Int32(cols), 1e-12)
        sk_layernorm_forward_reference(&slow, &meanSlow, &rstdSlow, x, w, b, Int32(rows), Int32(cols), 1e-12)
        #expect(Self.maxDifference(fast, slow) <= 1e-5)
        #expect(Self.maxDifference(meanFast, meanSlow) <= 1e-6)
        #expect(Self.maxDifference(rstdFast, rstdSlow) <= 1e-4 * (rstdSlow.map(abs).max() ?? 1))
    }

    @Test("LayerNorm backward: fast and reference accumulate the same gradients", arguments: shapes)
    func layerNormBackward(rows: Int, cols: Int) {
        let x = Self.values(rows * cols, seed: 4, scale: 2), w = Self.values(cols, seed: 5), dy = Self.values(rows * cols, seed: 6)
        var y = [Float](repeating: 0, count: rows * cols), mean = [Float](repeating: 0, count: rows), rstd = mean
        sk_layernorm_forward_reference(&y, &mean, &rstd, x, w, w, Int32(rows), Int32(cols), 1e-5)
        // Start from non-zero gradients: the kernels must add, not overwrite.
        var dxFast = Self.values(rows * cols, seed: 7), dwFast = Self.values(cols, seed: 8), dbFast = Self.values(cols, seed: 9)
        var dxSlow = dxFast, dwSlow = dwFast, dbSlow = dbFast
        sk_layernorm_backward(&dxFast, &dwFast, &dbFast, dy, x, w, mean, rstd, Int32(rows), Int32(cols))
        sk_layernorm_backward_reference(&dxSlow, &dwSlow, &dbSlow, dy, x, w, mean, rstd, Int32(rows), Int32(cols))
        #expect(Self.maxDifference(dxFast, dxSlow) <= 1e-4)
        #expect(Self.maxDifference(dwFast, dwSlow) <= 1e-5)
        #expect(Self.maxDifference(dbFast, dbSlow) <= 1e-5)
    }

    @Test("GELU with bias: fast and reference agree, including large negative and positive inputs", arguments: shapes)
    func geluForward(rows: Int, cols: Int) {
        let x = Self.values(rows * cols, seed: 10, scale: 9), bias = Self.values(cols, seed: 11)
        var preFast = x, preSlow = x
        var fast = [Float](repeating: 0, count: rows * cols), slow = fast
        sk_bias_gelu_forward(&fast, &preFast, bias, Int32(rows), Int32(cols))
        sk_bias_gelu_forward_reference(&slow, &preSlow, bias, Int32(rows), Int32(cols))
        #expect(preFast == preSlow)
        #expect(Self.maxDifference(fast, slow) <= 2e-6)
    }

    @Test("GELU derivative: fast and reference agree", arguments: [1, 7, 8, 9, 1001])
    func geluBackward(count: Int) {
        let x = Self.values(count, seed: 12, scale: 9), dy = Self.values(count, seed: 13)
        var fast = [Float](repeating: 0, count: count), slow = fast
        sk_gelu_backward(&fast, x, dy, count)
        sk_gelu_backward_reference(&slow, x, dy, count)
        #expect(Self.maxDifference(fast, slow) <= 2e-6)
    }

    @Test("GELU is exact: matches x * Phi(x) computed in Double")
    func geluExact() {
        let x = (0..<2001).map { Float($0 - 1000) / 100 }
        var pre = x, out = [Float](repeating: 0, count: x.count)
        sk_bias_gelu_forward(&out, &pre, nil, 1, Int32(x.count))
        let exact = x.map { Float(0.5 * Double($0) * (1 + erf(Double($0) / 2.0.squareRoot()))) }
        #expect(Self.maxDifference(out, exact) <= 2e-6)
    }

    @Test("masked attention softmax: fast and reference agree; padding keys get 0; all-padding rows are uniform",
          arguments: [1, 7, 8, 13, 33])
    func attentionSoftmax(length: Int) {
        let batch = 3, heads = 2
        let scores = Self.values(batch * heads * length * length, seed: 14, scale: 20)
        // Batch 0: no padding; batch 1: the last third is padding; batch 2: everything is padding.
        var mask = [Float](repeating: 1, count: batch * length)
        for t in 0..<length where t >= length - length / 3 { mask[length + t] = 0 }
        for t in 0..<length { mask[2 * length + t] = 0 }
        var fast = [Float](repeating: 0, count: scores.count), slow = fast
        sk_attention_softmax_forward(&fast, scores, mask, Int32(batch), Int32(heads), Int32(length))
        sk_attention_softmax_forward_reference(&slow, scores, mask, Int32(batch), Int32(heads), Int32(length))
        #expect(Self.maxDifference(fast, slow) <= 1e-6)
        for row in 0..<(batch * heads * length) {
            let b = row / (heads * length)
            let p = fast[(row * length)..<((row + 1) * length)]
            #expect(abs(p.reduce(0, +) - 1) <= 1e-5)
            for t in 0..<length where mask[b * length + t] == 0 && b != 2 { #expect(p[row * length + t] == 0) }
            if b == 2 { #expect(p.allSatisfy { abs($0 - 1 / Float(length)) <= 1e-7 }) }
        }
    }

    @Test("softmax backward: fast and reference agree", arguments: [1, 7, 8, 13, 33])
    func softmaxBackward(length: Int) {
        // Probabilities of 3 heads of one sequence: 3 * length rows of length keys.
        let heads = 3, rows = heads * length
        var probs = [Float](repeating: 0, count: rows * length)
        let mask = [Float](repeating: 1, count: length)
        sk_attention_softmax_forward_reference(&probs, Self.values(rows * length, seed: 15, scale: 4), mask, 1, Int32(heads), Int32(length))
        let dprobs = Self.values(rows * length, seed: 16)
        var fast = [Float](repeating: 0, count: rows * length), slow = fast
        sk_softmax_backward(&fast, probs, dprobs, Int32(rows), Int32(length))
        sk_softmax_backward_reference(&slow, probs, dprobs, Int32(rows), Int32(length))
        #expect(Self.maxDifference(fast, slow) <= 1e-6)
    }

    @Test("dropout masks are deterministic, keep about 1 - p, and scale kept entries by 1 / (1 - p)")
    func dropoutMask() {
        let n = 100_000
        var a = [Float](repeating: 0, count: n), b = a, c = a
        sk_dropout_mask(&a, n, 0.1, 42, 7)
        sk_dropout_mask(&b, n, 0.1, 42, 7)
        sk_dropout_mask(&c, n, 0.1, 42, 8)
        #expect(a == b)
        #expect(a != c)
        let kept = a.filter { $0 != 0 }
        #expect(abs(Double(kept.count) / Double(n) - 0.9) < 0.01)
        #expect(kept.allSatisfy { abs($0 - 1 / 0.9) < 1e-6 })
    }
}
