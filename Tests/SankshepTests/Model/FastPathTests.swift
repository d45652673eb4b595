import Foundation
import Kernels
import Testing
@testable import Host

/// The speed paths of the model core give the answers of the plain ones: GEMMs cut across the thread
/// pool, and inference that runs the last layer for the [CLS] rows only.
@Suite("Model fast paths agree with the plain computation", .serialized)
struct FastPathTests {
    static let values = TransformerKernelTests.values

    /// (M, N, K): wide products split by columns, tall ones by rows, and sizes that do not fill the
    /// 16-wide slices; all are above the size at which the product is split.
    static let products = [(37, 301, 129), (301, 37, 129), (64, 768, 64), (1000, 17, 45), (19, 33, 1025)]

    @Test("a GEMM split across two threads equals the plain loop for every transpose, with beta and padded rows",
          arguments: products)
    func threadedGemm(m: Int, n: Int, k: Int) {
        let previous = sk_get_threads()
        defer { sk_set_threads(previous) }
        sk_set_threads(2)
        for (transposeA, transposeB) in [(false, false), (false, true), (true, false), (true, true)] {
            // Stored shapes with 3 columns of padding on every row, so the leading dimensions matter.
            let (aRows, aCols) = transposeA ? (k, m) : (m, k)
            let (bRows, bCols) = transposeB ? (n, k) : (k, n)
            let lda = aCols + 3, ldb = bCols + 3, ldc = n + 3
            let a = Self.values(aRows * lda, 1, 1), b = Self.values(bRows * ldb, 2, 1)
            var fast = Self.values(m * ldc, 3, 1), slow = fast
            sk_sgemm(transposeA, transposeB, Int32(m), Int32(n), Int32(k), 0.5, a, Int32(lda), b, Int32(ldb), 0.25, &fast, Int32(ldc))
            sk_sgemm_reference(transposeA, transposeB, Int32(m), Int32(n), Int32(k), 0.5, a, Int32(lda), b, Int32(ldb), 0.25, &slow, Int32(ldc))
            #expect(TransformerKernelTests.maxDifference(fast, slow) <= 1e-4, "transposes \(transposeA) \(transposeB)")
        }
    }

    typealias LinearForwardKernel = (Int32, Int32, Int32, Float, UnsafePointer<Float>, Int32, UnsafePointer<Float>, Int32,
                                     Float, UnsafeMutablePointer<Float>, Int32) -> Bool

    /// One x · Wᵀ kernel against the plain loop for m rows on odd (n, k), with beta 0 and 0.25. The float
    /// sums' rounding grows with k: the bound is 1e-4 up to k = 128 and grows in proportion beyond.
    static func checkLinearForward(_ kernel: LinearForwardKernel, m: Int, shapes: [(Int, Int)]) {
        for (n, k) in shapes {
            let lda = k + 2, ldb = k + 1, ldc = n + 3
            let a = Self.values(m * lda, 5, 1), b = Self.values(n * ldb, 6, 1)
            for beta: Float in [0, 0.25] {
                // With beta 0, C starts as NaN: reading it would poison the result.
                var fast = beta == 0 ? [Float](repeating: .nan, count: m * ldc) : Self.values(m * ldc, 7, 1)
                var slow = beta == 0 ? [Float](repeating: 0, count: m * ldc) : fast
                #expect(kernel(Int32(m), Int32(n), Int32(k), 0.5, a, Int32(lda), b, Int32(ldb), beta, &fast, Int32(ldc)))
                sk_sgemm_reference(false, true, Int32(m), Int32(n), Int32(k), 0.5, a, Int32(lda), b, Int32(ldb), beta, &slow, Int32(ldc))
                // Only the (m, n) block is written; the padding columns of C keep what they held.
                for row in 0..<m {
                    for column in 0..<n {
                        let i = row * ldc + column
                        #expect(abs(fast[i] - slow[i]) <= 1e-4 * Float(max(k, 128)) / 128, "m \(m) n \(n) k \(k) beta \(beta) at \(row), \(column)")
                    }
                    for column in n..<ldc where beta == 0 { #expect(fast[row * ldc + column].isNaN) }
                }
            }
        }
    }

    @Test("the AVX-512 x · Wᵀ kernel equals the plain loop on odd shapes, in both its tile layouts, and beta 0 never reads C",
          arguments: [1, 5, 37, 128, 133])
    func avx512LinearForward(m: Int) throws {
        guard sk_sgemm_nt_avx512_available() else { return }   // this CPU has no AVX-512: nothing to compare
        Self.checkLinearForward(sk_sgemm_nt_avx512, m: m, shapes: [(1, 1), (7, 15), (17, 16), (49, 17), (100, 129)])
    }

    /// Row counts that leave 1 and 2 rows for the last tile of 3; K across the 512-input blocks, with tails.
    @Test("the AVX2 x · Wᵀ kernel equals the plain loop on odd shapes and across its K blocks, and beta 0 never reads C",
          arguments: [1, 2, 5, 33])
    func avx2LinearForward(m: Int) throws {
        guard sk_sgemm_nt_avx2_available() else { return }   // this CPU has no AVX2 + FMA: nothing to compare
        Self.checkLinearForward(sk_sgemm_nt_avx2, m: m, shapes: [(1, 1), (7, 15), (17, 16), (6, 512), (9, 1030)])
    }

    @Test("softmax of rows under one key mask: fast and reference agree; masked keys get 0", arguments: [1, 7, 8, 13, 33])
    func maskedSoftmaxRows(length: Int) {
        let rows = 5
        let scores = Self.values(rows * length, 4, 20)
        var mask = [Float](repeating: 1, count: length)
        for t in 0..<length where t % 3 == 2 { mask[t] = 0 }
        var fast = [Float](repeating: 0, count: scores.count), slow = fast
        sk_masked_softmax_rows(&fast, scores, mask, rows, Int32(length))
        sk_masked_softmax_rows_reference(&slow, scores, mask, rows, Int32(length))
        #expect(TransformerKernelTests.maxDifference(fast, slow) <= 1e-6)
        for row in 0..<rows {
            #expect(abs(fast[(row * length)..<((row + 1) * length)].reduce(0, +) - 1) <= 1e-5)
            for t in 0..<length where mask[t] == 0 { #expect(fast[row * length + t] == 0) }
        }
    }

    static func model(_ shape: EncoderShape, head: ClassifierHead) -> SequenceClassifier {
        let model = SequenceClassifier(shape: shape, head: head, numLabels: 2)
        model.initializeRandomly(seed: 3)
        return model
    }

    @Test("inference with the last layer on [CLS] rows only gives the full forward's logits, with padding",
          arguments: [("bert", GradientCheckTests.tinyBert, ClassifierHead.bertPooler),
                      ("distilbert", GradientCheckTests.tinyDistil, ClassifierHead.distilbert)])
    func headRowsOnly(name: String, shape: EncoderShape, head: ClassifierHead) throws {
        let model = Self.model(shape, head: head)
        let ids = GradientCheckTests.ids, mask = GradientCheckTests.mask
        let full = try model.forward(inputIds: ids, attentionMask: mask, batch: 2, length: 6, training: false)
        let fullPooled = model.pooledOutput().scalars
        model.headRowsOnlyInInference = true
        let fast = try model.forward(inputIds: ids, attentionMask: mask, batch: 2, length: 6, training: false)
        #expect(ModelFixture.maxAbsDifference(full, fast) <= 1e-5, "\(name): \(full) vs \(fast)")
        #expect(ModelFixture.maxAbsDifference(fullPooled, model.pooledOutput().scalars) <= 1e-5)
        // Earlier hidden states are still whole.
        #expect(model.hiddenState(shape.layers - 1).shape == [2, 6, shape.hiddenSize])
        // Training forwards stay whole (the backward needs every row), and give the same logits as before.
        let trainingFull = try Self.model(shape, head: head).forward(inputIds: ids, attentionMask: mask, batch: 2, length: 6, training: true)
        let trainingFlagged = try model.forward(inputIds: ids, attentionMask: mask, batch: 2, length: 6, training: true)
        #expect(trainingFull == trainingFlagged)
        model.backward(dLogits: [1, 0, 0, 1])
        #expect(model.hiddenState(shape.layers).shape == [2, 6, shape.hiddenSize])
    }

    /// Counts the rows each layer's input had.
    final class RowCounter: LinearLayerHook {
        var rows: [String: Int] = [:]
        func observe(layers: [String], input: UnsafePointer<Float>, rows: Int, inFeatures: Int) { self.rows[layers[0]] = rows }
        func replace(layers: [String], input: UnsafePointer<Float>, rows: Int, inFeatures: Int,
                     output: UnsafeMutablePointer<Float>, outFeatures: Int, includeBias: Bool) -> Bool { false }
    }

    @Test("a linear-layer hook still sees every token of every layer when [CLS]-only inference is on")
    func hookSeesEveryRow() throws {
        let model = Self.model(GradientCheckTests.tinyBert, head: .bertPooler)
        model.headRowsOnlyInInference = true
        let counter = RowCounter()
        model.linearHook = counter
        _ = try model.forward(inputIds: GradientCheckTests.ids, attentionMask: GradientCheckTests.mask, batch: 2, length: 6, training: false)
        #expect(counter.rows.count == 4 * GradientCheckTests.tinyBert.layers)
        #expect(counter.rows.values.allSatisfy { $0 == 12 }, "\(counter.rows)")
    }

    /// Counts rows like `RowCounter` but, like the quantized layers, works row by row.
    final class RowwiseCounter: LinearLayerHook {
        var rows: [String: Int] = [:]
        var needsEveryRow: Bool { false }
        func observe(layers: [String], input: UnsafePointer<Float>, rows: Int, inFeatures: Int) { self.rows[layers[0]] = rows }
        func replace(layers: [String], input: UnsafePointer<Float>, rows: Int, inFeatures: Int,
                     output: UnsafeMutablePointer<Float>, outFeatures: Int, includeBias: Bool) -> Bool { false }
    }

    @Test("a row-by-row hook keeps [CLS]-only inference: the last layer's later products see B rows, logits unchanged",
          arguments: [("bert", GradientCheckTests.tinyBert, ClassifierHead.bertPooler),
                      ("distilbert", GradientCheckTests.tinyDistil, ClassifierHead.distilbert)])
    func rowwiseHookKeepsHeadRowsOnly(name: String, shape: EncoderShape, head: ClassifierHead) throws {
        let model = Self.model(shape, head: head)
        let ids = GradientCheckTests.ids, mask = GradientCheckTests.mask
        let full = try model.forward(inputIds: ids, attentionMask: mask, batch: 2, length: 6, training: false)
        model.headRowsOnlyInInference = true
        let counter = RowwiseCounter()
        model.linearHook = counter
        let fast = try model.forward(inputIds: ids, attentionMask: mask, batch: 2, length: 6, training: false)
        #expect(ModelFixture.maxAbsDifference(full, fast) <= 1e-5, "\(name): \(full) vs \(fast)")
        let last = model.names.layers[shape.layers - 1], first = model.names.layers[0]
        #expect(counter.rows[last.query] == 12, "query/key/value run on every token (keys and values)")
        for layer in [last.attentionOutput, last.ffnIn, last.ffnOut] { #expect(counter.rows[layer] == 2, "\(layer)") }
        for layer in [first.query, first.attentionOutput, first.ffnIn, first.ffnOut] { #expect(counter.rows[layer] == 12, "\(layer)") }
    }

    @Test("mean and max pooling ignore the [CLS]-only setting: the seed head reads every token")
    func poolingReadsEveryToken() throws {
        let model = Self.model(GradientCheckTests.tinyBert, head: .seedMLP(hidden: 5))
        for pooling in [Pooling.mean, .max] {
            model.pooling = pooling
            model.headRowsOnlyInInference = false
            let full = try model.forward(inputIds: GradientCheckTests.ids, attentionMask: GradientCheckTests.mask, batch: 2, length: 6, training: false)
            model.headRowsOnlyInInference = true
            let flagged = try model.forward(inputIds: GradientCheckTests.ids, attentionMask: GradientCheckTests.mask, batch: 2, length: 6, training: false)
            #expect(full == flagged, "\(pooling)")
            #expect(model.hiddenState(GradientCheckTests.tinyBert.layers).shape == [2, 6, GradientCheckTests.tinyBert.hiddenSize])
        }
    }

    @Test("attention shared over two threads gives the single thread's outputs and gradients, with and without dropout",
          arguments: [false, true])
    func threadedAttention(dropout: Bool) {
        // 4 x 4 x 33 x 33 scores of 64-wide heads: enough work to be split.
        let shape = AttentionCore.Shape(batch: 4, length: 33, heads: 4, headSize: 64)
        #expect(shape.splitsAcrossThreads)
        let n = shape.batch * shape.length, h = shape.hidden
        let qkv = Self.values(n * 3 * h, 5, 1), dcontext = Self.values(n * h, 6, 1)
        var keyMask = [Float](repeating: 1, count: n)
        for t in 20..<33 { keyMask[shape.length + t] = 0 }    // sequence 1 is padded
        func run(threads: Int32) -> [[Float]] {
            let previous = sk_get_threads()
            defer { sk_set_threads(previous) }
            sk_set_threads(threads)
            var context = [Float](repeating: 0, count: n * h), probs = [Float](repeating: 0, count: shape.scoreCount)
            var mask = probs, dropped = probs, dprobs = probs, dqkv = [Float](repeating: 0, count: n * 3 * h)
            mask.withUnsafeMutableBufferPointer { mask in
                dropped.withUnsafeMutableBufferPointer { dropped in
                    AttentionCore.forward(context: &context, probs: &probs, dropoutMask: dropout ? mask.baseAddress! : nil,
                                          dropped: dropout ? dropped.baseAddress! : nil, dropoutP: 0.1, seed: 9, stream: 1,
                                          qkv: qkv, keyMask: keyMask, shape: shape)
                    AttentionCore.backward(dqkv: &dqkv, dprobs: &dprobs, dcontext: dcontext, qkv: qkv, probs: probs,
                                           dropped: dropout ? UnsafePointer(dropped.baseAddress!) : nil,
                                           dropoutMask: dropout ? UnsafePointer(mask.baseAddress!) : nil, shape: shape)
                }
            }
            return [context, probs, dqkv]
        }
        let one = run(threads: 1), two = run(threads: 2)
        #expect(one[0] == two[0])
        #expect(one[1] == two[1])
        #expect(one[2] == two[2])
        #expect(one[2].contains { $0 != 0 })
    }
}
