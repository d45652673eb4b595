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
    /// out (N, H) = word[ids] + position[t] (+ tokenType[types]) for token n = b * T + t.
    static func forward(out: FloatPointer, ids: UnsafePointer<Int32>, types: UnsafePointer<Int32>?,
                        word: UnsafePointer<Float>, position: UnsafePointer<Float>, tokenType: UnsafePointer<Float>?,
                        batch: Int, length: Int, hidden: Int) {
        for b in 0..<batch {
            for t in 0..<length {
                let n = b * length + t
                let row = out + n * hidden
                sk_add(row, word + Int(ids[n]) * hidden, position + t * hidden, hidden)
                if let types, let tokenType { sk_accumulate(row, tokenType + Int(types[n]) * hidden, hidden) }
            }
        }
    }

    /// Scatter-adds dout (N, H) into the rows of the three tables that the forward read.
    static func backward(dword: FloatPointer, dposition: FloatPointer, dtokenType: FloatPointer?,
                         dout: UnsafePointer<Float>, ids: UnsafePointer<Int32>, types: UnsafePointer<Int32>?,
                         batch: Int, length: Int, hidden: Int) {
        for b in 0..<batch {
            for t in 0..<length {
                let n = b * length + t
                let row = dout + n * hidden
                sk_accumulate(dword + Int(ids[n]) * hidden, row, hidden)
                sk_accumulate(dposition + t * hidden, row, hidden)
                if let types, let dtokenType { sk_accumulate(dtokenType + Int(types[n]) * hidden, row, hidden) }
            }
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
    }

    /// probs (B, nh, T, T) = masked softmax(scale * Q K^T); context (N, H) = dropped(probs) @ V.
    /// keyMask (B, T): 1 for real tokens. dropped: probs * dropoutMask when dropout is on, else probs.
    /// With dropout (dropoutMask and dropped both given), dropped (B, nh, T, T) = probs * a fresh mask.
    static func forward(context: FloatPointer, probs: FloatPointer, dropoutMask: FloatPointer?, dropped: FloatPointer?,
                        dropoutP: Float, seed: UInt64, stream: UInt64,
                        qkv: UnsafePointer<Float>, keyMask: UnsafePointer<Float>, shape s: Shape) {
        let ld = 3 * s.hidden
        for b in 0..<s.batch {
            for h in 0..<s.heads {
                let q = qkv + b * s.length * ld + h * s.headSize
                let scores = probs + (b * s.heads + h) * s.scoresPerHead
                gemm(false, true, m: s.length, n: s.length, k: s.headSize, alpha: s.scale, q, lda: ld, q + s.hidden, ldb: ld,
                     beta: 0, scores, ldc: s.length)
            }
        }
        sk_attention_softmax_forward(probs, probs, keyMask, Int32(s.batch), Int32(s.heads), Int32(s.length))
        var mixing = UnsafePointer(probs)
        if let dropoutMask, let dropped {
            Dropout.forward(out: dropped, inp: probs, mask: dropoutMask, count: s.scoreCount, p: dropoutP, seed: seed, stream: stream)
            mixing = UnsafePointer(dropped)
        }
        for b in 0..<s.batch {
            for h in 0..<s.heads {
                let v = qkv + b * s.length * ld + 2 * s.hidden + h * s.headSize
                gemm(false, false, m: s.length, n: s.headSize, k: s.length, mixing + (b * s.heads + h) * s.scoresPerHead,
                     lda: s.length, v, ldb: ld, beta: 0, context + b * s.length * s.hidden + h * s.headSize, ldc: s.hidden)
            }
        }
    }

    /// dqkv (N, 3H) = gradient of the loss w.r.t. [Q | K | V] from dcontext (N, H).
    /// dprobs (B, nh, T, T) is scratch. dropped: the dropped-out probabilities the forward used (or nil).
    static func backward(dqkv: FloatPointer, dprobs: FloatPointer, dcontext: UnsafePointer<Float>,
                         qkv: UnsafePointer<Float>, probs: UnsafePointer<Float>, dropped: UnsafePointer<Float>?,
                         dropoutMask: UnsafePointer<Float>?, shape s: Shape,
                         extraProbabilityGradient: UnsafePointer<Float>? = nil) {
        let ld = 3 * s.hidden
        let mixing = dropped ?? probs
        for b in 0..<s.batch {
            for h in 0..<s.heads {
                let offset = b * s.length * ld + h * s.headSize
                let dctx = dcontext + b * s.length * s.hidden + h * s.headSize
                let dp = dprobs + (b * s.heads + h) * s.scoresPerHead
                // dP (T, T) = dctx @ V^T ; dV (T, dh) = P^T @ dctx
                gemm(false, true, m: s.length, n: s.length, k: s.headSize, dctx, lda: s.hidden, qkv + offset + 2 * s.hidden,
                     ldb: ld, beta: 0, dp, ldc: s.length)
                gemm(true, false, m: s.length, n: s.headSize, k: s.length, mixing + (b * s.heads + h) * s.scoresPerHead,
                     lda: s.length, dctx, ldb: s.hidden, beta: 0, dqkv + offset + 2 * s.hidden, ldc: ld)
            }
        }
        if let dropoutMask { Dropout.backward(dinp: dprobs, dout: dprobs, mask: dropoutMask, count: s.scoreCount) }
        // An outside loss on the probabilities themselves (attention distillation), before the softmax.
        if let extraProbabilityGradient { sk_accumulate(dprobs, extraProbabilityGradient, s.scoreCount) }
        sk_softmax_backward(dprobs, probs, dprobs, Int32(s.batch * s.heads * s.length), Int32(s.length))
        for b in 0..<s.batch {
            for h in 0..<s.heads {
                let offset = b * s.length * ld + h * s.headSize
                let ds = dprobs + (b * s.heads + h) * s.scoresPerHead
                // dQ (T, dh) = scale * dS @ K ; dK (T, dh) = scale * dS^T @ Q
                gemm(false, false, m: s.length, n: s.headSize, k: s.length, alpha: s.scale, ds, lda: s.length,
                     qkv + offset + s.hidden, ldb: ld, beta: 0, dqkv + offset, ldc: ld)
                gemm(true, false, m: s.length, n: s.headSize, k: s.length, alpha: s.scale, ds, lda: s.length,
                     qkv + offset, ldb: ld, beta: 0, dqkv + offset + s.hidden, ldc: ld)
            }
        }
    }
}
