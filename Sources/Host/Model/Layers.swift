import Foundation
import Kernels

// The layers of the encoder, each as a forward and a backward side by side (llm.c's habit).
// Everything works on raw pointers into the parameter store and the activation arena; shapes are
// in comments, N = B * T tokens, H hidden, I the feed-forward width, nh heads of size dh.
// Backward functions accumulate parameter gradients with +=.

typealias FloatPointer = UnsafeMutablePointer<Float>

/// Row-major GEMM with Int arguments: C = alpha * op(A) @ op(B) + beta * C.
@inline(__always)
func gemm(_ transposeA: Bool, _ transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
          _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int,
          beta: Float, _ c: FloatPointer, ldc: Int) {
    sk_sgemm(transposeA, transposeB, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb),
             beta, c, Int32(ldc))
}

// ---------------------------------------------------------------- linear

enum LinearLayer {
    /// out (rows, outFeatures) = inp (rows, inFeatures) @ weight^T + bias; weight (outFeatures, inFeatures).
    static func forward(out: FloatPointer, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                        rows: Int, inFeatures: Int, outFeatures: Int) {
        if let bias { sk_broadcast_rows(out, bias, Int32(rows), Int32(outFeatures)) }
        gemm(false, true, m: rows, n: outFeatures, k: inFeatures, inp, lda: inFeatures, weight, ldb: inFeatures,
             beta: bias == nil ? 0 : 1, out, ldc: outFeatures)
    }

    /// dweight (outFeatures, inFeatures) += dout^T @ inp; dbias (outFeatures) += column sums of dout;
    /// dinp (rows, inFeatures) = dout @ weight, or += when `accumulateInput`. A nil pointer skips that part.
    static func backward(dinp: FloatPointer?, dweight: FloatPointer?, dbias: FloatPointer?, dout: UnsafePointer<Float>,
                         inp: UnsafePointer<Float>, weight: UnsafePointer<Float>, rows: Int, inFeatures: Int,
                         outFeatures: Int, accumulateInput: Bool = false) {
        if let dweight {
            gemm(true, false, m: outFeatures, n: inFeatures, k: rows, dout, lda: outFeatures, inp, ldb: inFeatures,
                 beta: 1, dweight, ldc: inFeatures)
        }
        if let dbias { sk_add_column_sums(dbias, dout, Int32(rows), Int32(outFeatures)) }
        if let dinp {
            gemm(false, false, m: rows, n: inFeatures, k: outFeatures, dout, lda: outFeatures, weight, ldb: inFeatures,
                 beta: accumulateInput ? 1 : 0, dinp, ldc: inFeatures)
        }
    }
}

// ---------------------------------------------------------------- dropout

enum Dropout {
    /// mask (n) = a fresh inverted-dropout mask for (seed, stream); out (n) = inp * mask. out may be inp.
    static func forward(out: FloatPointer, inp: UnsafePointer<Float>, mask: FloatPointer, count: Int, p: Float,
                        seed: UInt64, stream: UInt64) {
        sk_dropout_mask(mask, count, p, seed, stream)
        sk_mul(out, inp, mask, count)
    }

    /// dinp (n) = dout * mask; dinp may be dout.
    static func backward(dinp: FloatPointer, dout: UnsafePointer<Float>, mask: UnsafePointer<Float>, count: Int) {
        sk_mul(dinp, dout, mask, count)
    }
}

// ---------------------------------------------------------------- embeddings

enum Embeddings {
    /// out (N, H) = word[ids] + position[p] (+ tokenType[types]) for token n = b * T + t, p = positions[n]
    /// when given (RoBERTa), else t.
    static func forward(out: FloatPointer, ids: UnsafePointer<Int32>, positions: UnsafePointer<Int32>? = nil, types: UnsafePointer<Int32>?,
                        word: UnsafePointer<Float>, position: UnsafePointer<Float>, tokenType: UnsafePointer<Float>?,
                        batch: Int, length: Int, hidden: Int) {
        for b in 0..<batch {
            for t in 0..<length {
                let n = b * length + t
                let row = out + n * hidden
                let p = positions.map { Int($0[n]) } ?? t
                sk_add(row, word + Int(ids[n]) * hidden, position + p * hidden, hidden)
                if let types, let tokenType { sk_accumulate(row, tokenType + Int(types[n]) * hidden, hidden) }
            }
        }
    }

    /// Scatter-adds dout (N, H) into the rows of the three tables that the forward read.
    static func backward(dword: FloatPointer, dposition: FloatPointer, dtokenType: FloatPointer?,
                         dout: UnsafePointer<Float>, ids: UnsafePointer<Int32>, positions: UnsafePointer<Int32>? = nil,
                         types: UnsafePointer<Int32>?, batch: Int, length: Int, hidden: Int) {
        for b in 0..<batch {
            for t in 0..<length {
                let n = b * length + t
                let row = dout + n * hidden
                sk_accumulate(dword + Int(ids[n]) * hidden, row, hidden)
                sk_accumulate(dposition + (positions.map { Int($0[n]) } ?? t) * hidden, row, hidden)
                if let types, let dtokenType { sk_accumulate(dtokenType + Int(types[n]) * hidden, row, hidden) }
            }
        }
    }
}

extension Embeddings {
    /// RoBERTa's position ids (transformers' create_position_ids_from_input_ids): out (N) =
    /// paddingIndex + (the count of non-pad ids up to and including t) for a non-pad id, paddingIndex
    /// for a pad. Pads are found by id, as transformers does, whatever the attention mask says.
    static func robertaPositions(out: UnsafeMutablePointer<Int32>, ids: UnsafePointer<Int32>, paddingIndex: Int32,
                                 batch: Int, length: Int) {
        for b in 0..<batch {
            var count: Int32 = 0
            for t in 0..<length {
                let n = b * length + t
                if ids[n] != paddingIndex { count += 1; out[n] = paddingIndex + count } else { out[n] = paddingIndex }
            }
        }
    }
}

// ---------------------------------------------------------------- GELU, tanh form

/// transformers' `gelu_new` (ALBERT's activation): 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³))).
/// Computed in Double per element, then rounded: the Float result is as close to PyTorch's as rounding allows.
enum TanhGELU {
    static let c = (2 / Double.pi).squareRoot(), k = 0.044715

    /// pre (rows, columns) += bias (columns) per row; out = gelu_new(pre). out may be pre.
    static func forward(out: FloatPointer, pre: FloatPointer, bias: UnsafePointer<Float>, rows: Int, columns: Int) {
        for r in 0..<rows {
            for j in 0..<columns {
                let i = r * columns + j
                pre[i] += bias[j]
                let x = Double(pre[i])
                out[i] = Float(0.5 * x * (1 + Foundation.tanh(c * (x + k * x * x * x))))
            }
        }
    }

    /// dpre (n) = dout * gelu_new'(pre): 0.5 (1 + t) + 0.5 x (1 − t²) √(2/π) (1 + 3·0.044715 x²),
    /// t = tanh(√(2/π) (x + 0.044715 x³)). dpre may be dout.
    static func backward(dpre: FloatPointer, pre: UnsafePointer<Float>, dout: UnsafePointer<Float>, count: Int) {
        for i in 0..<count {
            let x = Double(pre[i])
            let t = Foundation.tanh(c * (x + k * x * x * x))
            let derivative = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * k * x * x)
            dpre[i] = Float(Double(dout[i]) * derivative)
        }
    }
}

// ---------------------------------------------------------------- self-attention core

/// Scaled dot-product attention per (batch, head) on a fused projection buffer: qkv (N, 3H) holds
/// [Q | K | V] in each row, head h of Q in columns h*dh..<(h+1)*dh. Q @ K^T and P @ V run as small
/// GEMMs with leading dimension 3H, so no head is ever copied or transposed.
enum AttentionCore {
    struct Shape {
        let batch, length, heads, headSize: Int
        var hidden: Int { heads * headSize }
        var scale: Float { 1 / Float(headSize).squareRoot() }
        /// Elements of one (T, T) score matrix, and of all of them.
        var scoresPerHead: Int { length * length }
        var scoreCount: Int { batch * heads * length * length }
        /// Worth waking a second thread for: about 25 µs of products or more (the 12 heads of one
        /// 32-token comment are).
        var splitsAcrossThreads: Bool { scoreCount * headSize >= 1 << 18 }
    }

    /// probs (B, nh, T, T) = masked softmax(scale * Q K^T); context (N, H) = dropped(probs) @ V.
    /// keyMask (B, T): 1 for real tokens. dropped: probs * dropoutMask when dropout is on, else probs.
    /// With dropout (dropoutMask and dropped both given), dropped (B, nh, T, T) = probs * a fresh mask.
    /// The (batch, head) pairs are independent and shared out over the kernel threads.
    static func forward(context: FloatPointer, probs: FloatPointer, dropoutMask: FloatPointer?, dropped: FloatPointer?,
                        dropoutP: Float, seed: UInt64, stream: UInt64,
                        qkv: UnsafePointer<Float>, keyMask: UnsafePointer<Float>, shape s: Shape) {
        let ld = 3 * s.hidden, T = s.length
        func scores(_ item: Int) {
            let b = item / s.heads, h = item % s.heads
            let q = qkv + b * T * ld + h * s.headSize
            let p = probs + item * s.scoresPerHead
            gemm(false, true, m: T, n: T, k: s.headSize, alpha: s.scale, q, lda: ld, q + s.hidden, ldb: ld, beta: 0, p, ldc: T)
            sk_masked_softmax_rows(p, p, keyMask + b * T, T, Int32(T))
        }
        func mix(_ item: Int, _ mixing: UnsafePointer<Float>) {
            let b = item / s.heads, h = item % s.heads
            let v = qkv + b * T * ld + 2 * s.hidden + h * s.headSize
            gemm(false, false, m: T, n: s.headSize, k: T, mixing + item * s.scoresPerHead, lda: T, v, ldb: ld,
                 beta: 0, context + b * T * s.hidden + h * s.headSize, ldc: s.hidden)
        }
        let items = s.batch * s.heads
        if let dropoutMask, let dropped {
            // The dropout mask is drawn for the whole (B, nh, T, T) block at once (its stream is indexed by element).
            parallelFor(items, splitting: s.splitsAcrossThreads) { begin, end in for item in begin..<end { scores(item) } }
            Dropout.forward(out: dropped, inp: probs, mask: dropoutMask, count: s.scoreCount, p: dropoutP, seed: seed, stream: stream)
            parallelFor(items, splitting: s.splitsAcrossThreads) { begin, end in for item in begin..<end { mix(item, dropped) } }
        } else {
            parallelFor(items, splitting: s.splitsAcrossThreads) { begin, end in
                for item in begin..<end {
                    let b = item / s.heads, h = item % s.heads
                    let q = qkv + b * T * ld + h * s.headSize
                    // One fused kernel per head where the CPU has it (attention.c), else two GEMMs.
                    if !sk_attention_head_forward(probs + item * s.scoresPerHead, context + b * T * s.hidden + h * s.headSize,
                                                  Int32(s.hidden), q, q + s.hidden, q + 2 * s.hidden, Int32(ld),
                                                  keyMask + b * T, Int32(T), Int32(s.headSize), s.scale) {
                        scores(item)
                        mix(item, probs)
                    }
                }
            }
        }
    }

    /// dqkv (N, 3H) = gradient of the loss w.r.t. [Q | K | V] from dcontext (N, H).
    /// dprobs (B, nh, T, T) is scratch. dropped: the dropped-out probabilities the forward used (or nil).
    static func backward(dqkv: FloatPointer, dprobs: FloatPointer, dcontext: UnsafePointer<Float>,
                         qkv: UnsafePointer<Float>, probs: UnsafePointer<Float>, dropped: UnsafePointer<Float>?,
                         dropoutMask: UnsafePointer<Float>?, shape s: Shape,
                         extraProbabilityGradient: UnsafePointer<Float>? = nil) {
        let ld = 3 * s.hidden, T = s.length, count = s.scoresPerHead
        let mixing = dropped ?? probs
        parallelFor(s.batch * s.heads, splitting: s.splitsAcrossThreads) { begin, end in
            for item in begin..<end {
                let b = item / s.heads, h = item % s.heads
                let offset = b * T * ld + h * s.headSize
                let dctx = dcontext + b * T * s.hidden + h * s.headSize
                let dp = dprobs + item * count
                // dP (T, T) = dctx @ V^T ; dV (T, dh) = P^T @ dctx
                gemm(false, true, m: T, n: T, k: s.headSize, dctx, lda: s.hidden, qkv + offset + 2 * s.hidden,
                     ldb: ld, beta: 0, dp, ldc: T)
                gemm(true, false, m: T, n: s.headSize, k: T, mixing + item * count, lda: T, dctx, ldb: s.hidden,
                     beta: 0, dqkv + offset + 2 * s.hidden, ldc: ld)
                if let dropoutMask { Dropout.backward(dinp: dp, dout: dp, mask: dropoutMask + item * count, count: count) }
                // An outside loss on the probabilities themselves (attention distillation), before the softmax.
                if let extraProbabilityGradient { sk_accumulate(dp, extraProbabilityGradient + item * count, count) }
                sk_softmax_backward(dp, probs + item * count, dp, Int32(T), Int32(T))
                // dQ (T, dh) = scale * dS @ K ; dK (T, dh) = scale * dS^T @ Q
                gemm(false, false, m: T, n: s.headSize, k: T, alpha: s.scale, dp, lda: T,
                     qkv + offset + s.hidden, ldb: ld, beta: 0, dqkv + offset, ldc: ld)
                gemm(true, false, m: T, n: s.headSize, k: T, alpha: s.scale, dp, lda: T,
                     qkv + offset, ldb: ld, beta: 0, dqkv + offset + s.hidden, ldc: ld)
            }
        }
    }
}

/// Calls body(begin, end) on contiguous shares of 0..<count, one per kernel thread (parallel.h), the
/// calling thread taking one; returns when every share is done. With `splitting` false, or inside another
/// parallel loop, body(0, count) runs on the calling thread.
func parallelFor(_ count: Int, splitting: Bool = true, _ body: (Int, Int) -> Void) {
    guard splitting, count > 1 else { if count > 0 { body(0, count) }; return }
    withoutActuallyEscaping(body) { body in
        var closure = body
        withUnsafeMutablePointer(to: &closure) { pointer in
            sk_parallel_for(Int32(count), { context, begin, end in
                context!.assumingMemoryBound(to: ((Int, Int) -> Void).self).pointee(Int(begin), Int(end))
            }, pointer)
        }
    }
}
