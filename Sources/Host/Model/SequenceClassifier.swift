import Foundation
import Kernels

/// An input the model cannot run on: wrong sizes, a token id outside the vocabulary, too long.
struct ModelInputError: Error, CustomStringConvertible {
    let problem: String
    var description: String { "model input: \(problem)" }
}

/// A BERT, DistilBERT, RoBERTa or ALBERT encoder with a classification head, trained and run in Swift.
///
/// All parameters live in one `ParameterStore` with Hugging Face names. `forward` keeps every
/// activation the backward needs in reusable buffers; `backward` adds parameter gradients into
/// `store.gradients` (+=, so gradients of several batches accumulate until `zeroGradients()`).
/// The encoder is post-LayerNorm as both Hugging Face models are:
///
///     x -> [QKV] -> softmax(QK^T/sqrt(dh), mask) V -> out proj -> dropout(BERT) -> +x -> LN1
///       -> FFN in -> GELU -> FFN out -> dropout -> +LN1 -> LN2
///
/// RoBERTa is BERT with positions counted from the pad id + 1 over the non-pad tokens and its own head.
/// ALBERT's embeddings are E wide (LN over E, dropout) and `embedding_hidden_mapping_in` widens them to H;
/// its one stored layer runs at every repeat (each repeat adds its share to the same gradients, so the
/// shared layer's gradient is the sum over repeats), with no dropout after its FFN and BERT's head.
///
/// A layer whose heads were removed (`shape.prunedHeads`) runs the same code with fewer heads: its
/// attention width A = kept heads × dh is below H, Q/K/V are (A, H) and the output projection (H, A).
final class SequenceClassifier {
    let shape: EncoderShape
    let head: ClassifierHead
    let numLabels: Int
    let names: ModelParameterNames
    let store: ParameterStore
    /// Pooling of the last hidden states for the seed head; the Hugging Face heads always use [CLS].
    var pooling: Pooling
    /// Seed of the dropout masks. Step k of training uses masks derived from (seed, k).
    var dropoutSeed: UInt64
    /// `--freeze_base`: the backward stops at the head, the encoder gets no gradient and the optimizer
    /// skips it (its names are in `store.frozen`).
    var frozenEncoder: Bool {
        didSet {
            let encoder = Set(names.encoderParameterNames())
            if frozenEncoder { store.frozen.formUnion(encoder) } else { store.frozen.subtract(encoder) }
        }
    }

    /// Counts training forwards; with `dropoutSeed` it fixes the dropout masks. Setting it back replays
    /// the same masks (a resumed run, or a gradient check).
    var dropoutStep: UInt64 = 0
    /// Observes or replaces the encoder's linear layers in inference forwards (calibration, quantization).
    var linearHook: LinearLayerHook?
    /// Inference forwards compute the last layer only for the rows the head reads: when the head pools
    /// [CLS] (every Hugging Face head) and no `linearHook` needs every row, the last layer needs keys and values of
    /// every token but its query, attention output, feed-forward and LayerNorms only for the B [CLS] rows,
    /// which skips about 5/6 of that layer. The logits are the same; what is lost is the full last hidden
    /// state (`hiddenState(L)`) and the last layer's attention probabilities, and `backward` after such a
    /// forward. Off by default, for callers (distillation teachers, inspection) that read those.
    var headRowsOnlyInInference = false
    private let layerOffsets: [LayerOffsets]
    private let floats = BufferPool<Float>()
    private let integers = BufferPool<Int32>()
    private var saved: SavedForward?

    /// Offsets into the store of one layer's parameters (the same offsets index the gradients).
    private struct LayerOffsets {
        let qkvWeight, qkvBias, outWeight, outBias, norm1Weight, norm1Bias: Int
        let ffnInWeight, ffnInBias, ffnOutWeight, ffnOutBias, norm2Weight, norm2Bias: Int
    }

    /// What one layer's forward kept for its backward. N = B * T.
    private struct LayerBuffers {
        let qkv: FloatPointer               // (N, 3A) [Q | K | V], A = the layer's attention width
        let probs: FloatPointer             // (B, nh, T, T) attention probabilities before dropout (nh: this layer's heads)
        let probsMask: FloatPointer?        // (B, nh, T, T) attention dropout mask, training only
        let droppedProbs: FloatPointer?     // (B, nh, T, T) probs * probsMask
        let context: FloatPointer           // (N, A) attention output before the projection
        let attentionMask: FloatPointer?    // (N, H) dropout mask of the projection (BERT, training)
        let residual1: FloatPointer         // (N, H) x + attention: input of LN1
        let norm1: FloatPointer             // (N, H) LN1 output
        let norm1Mean, norm1Rstd: FloatPointer   // (N)
        let ffnPre: FloatPointer            // (N, I) before GELU, bias added
        let ffnAct: FloatPointer            // (N, I) after GELU
        let ffnMask: FloatPointer?          // (N, H) dropout mask of the FFN output, training only
        let residual2: FloatPointer         // (N, H) LN1 + FFN: input of LN2
        let norm2Mean, norm2Rstd: FloatPointer   // (N)
    }

    private struct SavedForward {
        let batch, length: Int
        let ids: UnsafeMutablePointer<Int32>        // (N)
        let types: UnsafeMutablePointer<Int32>?     // (N), BERT only
        let keyMask: FloatPointer                   // (B, T) 1 real token, 0 padding
        let positions: UnsafeMutablePointer<Int32>? // (N) RoBERTa's position ids; nil: t
        let embeddingSum: FloatPointer              // (N, E) word + position (+ type): input of the embedding LN
        let embeddingMean, embeddingRstd: FloatPointer   // (N)
        let embeddingMask: FloatPointer?            // (N, E)
        let embeddingNarrow: FloatPointer?          // (N, E) ALBERT: dropout(LN(sum)), the input of the widening
        let hidden: [FloatPointer]                  // L + 1 of (N, H): embedding output, then each layer's
        let layers: [LayerBuffers]
        let pooled: FloatPointer                    // (B, K·H), K = head.inputLayers
        let pooledMask: FloatPointer?               // (B, H) RoBERTa's dropout before its dense, training only
        let pooledDropped: FloatPointer?            // (B, H) pooled * pooledMask
        let maxIndex: UnsafeMutablePointer<Int32>   // (B, H) token chosen by max pooling, -1 if none
        let headPre: FloatPointer                   // (B, D) first head linear
        let headAct: FloatPointer                   // (B, D) after tanh / ReLU
        let headMask: FloatPointer?                 // (B, D)
        let headDropped: FloatPointer?              // (B, D) headAct * headMask
        let logits: FloatPointer                    // (B, numLabels)
        let backwardSlot: Int
        let backwardIntegerSlot: Int
        /// The last layer ran for the [CLS] rows only (`headRowsOnlyInInference`): hidden[L] is (B, H) and
        /// `layers` holds L - 1 entries.
        let headRowsOnly: Bool
    }

    /// A model with every parameter zero: fill it from a checkpoint (`store.setValues`) or call
    /// `initializeRandomly(seed:)`.
    init(shape: EncoderShape, head: ClassifierHead, numLabels: Int, pooling: Pooling = .cls, dropoutSeed: UInt64 = 42) {
        precondition(numLabels >= 1, "a classifier needs at least one label")
        precondition(head.inputLayers >= 1 && head.inputLayers <= shape.layers + 1,
                     "the head reads \(head.inputLayers) hidden states; the encoder has \(shape.layers + 1)")
        self.shape = shape
        self.head = head
        self.numLabels = numLabels
        self.pooling = pooling
        self.dropoutSeed = dropoutSeed
        self.frozenEncoder = false
        let names = ModelParameterNames(shape: shape, head: head)
        self.names = names
        let store = ParameterStore(layout: parameterLayout(shape, head: head, numLabels: numLabels))
        self.store = store
        let h = shape.hiddenSize
        // One entry per repeat; ALBERT's repeats all point at its one stored layer.
        self.layerOffsets = (0..<shape.layers).map { index in
            let layer = names.layers[shape.storedLayer(index)]
            func offset(_ name: String) -> Int { store.view(named: name)!.offset }
            let a = shape.attentionWidth(layer: index)
            // The fused QKV GEMM relies on the layout putting the three weights, then the three biases, side by side.
            precondition(offset(layer.key + ".weight") == offset(layer.query + ".weight") + a * h &&
                         offset(layer.value + ".weight") == offset(layer.query + ".weight") + 2 * a * h &&
                         offset(layer.key + ".bias") == offset(layer.query + ".bias") + a &&
                         offset(layer.value + ".bias") == offset(layer.query + ".bias") + 2 * a,
                         "parameter layout must keep query/key/value contiguous")
            return LayerOffsets(qkvWeight: offset(layer.query + ".weight"), qkvBias: offset(layer.query + ".bias"),
                                outWeight: offset(layer.attentionOutput + ".weight"), outBias: offset(layer.attentionOutput + ".bias"),
                                norm1Weight: offset(layer.attentionNorm + ".weight"), norm1Bias: offset(layer.attentionNorm + ".bias"),
                                ffnInWeight: offset(layer.ffnIn + ".weight"), ffnInBias: offset(layer.ffnIn + ".bias"),
                                ffnOutWeight: offset(layer.ffnOut + ".weight"), ffnOutBias: offset(layer.ffnOut + ".bias"),
                                norm2Weight: offset(layer.outputNorm + ".weight"), norm2Bias: offset(layer.outputNorm + ".bias"))
        }
    }

    /// Hugging Face's initialisation from a seeded generator (see `initializeParameters`).
    func initializeRandomly(seed: UInt64) {
        initializeParameters(store, names: names, head: head, seed: seed, paddingTokenId: shape.paddingIndex ?? 0)
    }

    /// The pooling actually used: the Hugging Face heads always read [CLS].
    var effectivePooling: Pooling {
        if case .seedMLP = head { return pooling }
        return .cls
    }

    private var headHidden: Int { headHiddenSize(shape, head) }
    private func value(_ offset: Int) -> FloatPointer { store.values + offset }
    private func gradient(_ offset: Int) -> FloatPointer { store.gradients + offset }
    private func value(_ name: String) -> FloatPointer { store.pointer(name) }
    private func gradient(_ name: String) -> FloatPointer { store.gradientPointer(name) }

    // ---------------------------------------------------------------- forward

    /// Runs the model on a padded batch and returns the logits (B, numLabels), row-major.
    ///
    /// inputIds, attentionMask, tokenTypeIds: (B, T) row-major. `training` turns dropout on (masks
    /// from `dropoutSeed` and a step counter), off otherwise. Activations stay until the next forward.
    @discardableResult
    func forward(inputIds: [Int32], attentionMask: [Int32], tokenTypeIds: [Int32]? = nil,
                 batch: Int, length: Int, training: Bool) throws -> [Float] {
        try validate(inputIds: inputIds, attentionMask: attentionMask, tokenTypeIds: tokenTypeIds, batch: batch, length: length)
        let B = batch, T = length, N = B * T, H = shape.hiddenSize, I = shape.intermediateSize, L = shape.layers
        let D = headHidden, eps = shape.layerNormEps
        let hiddenP = training ? shape.hiddenDropout : 0
        let attentionP = training ? shape.attentionDropout : 0
        let headP = training ? shape.classifierDropout : 0
        let step = dropoutStep
        if training { dropoutStep += 1 }
        let seed = dropoutSeed
        // Each dropout site of a step draws from its own stream: (step, site).
        func stream(_ site: Int) -> UInt64 { step << 20 | UInt64(site) }

        floats.rewind()
        integers.rewind()
        let ids = integers.take(N)
        inputIds.withUnsafeBufferPointer { ids.update(from: $0.baseAddress!, count: N) }
        var types: UnsafeMutablePointer<Int32>? = nil
        if names.tokenTypeEmbeddings != nil {
            let buffer = integers.take(N)
            if let tokenTypeIds { tokenTypeIds.withUnsafeBufferPointer { buffer.update(from: $0.baseAddress!, count: N) } }
            else { buffer.update(repeating: 0, count: N) }
            types = buffer
        }
        let maxIndex = integers.take(B * H)
        let keyMask = floats.take(B * T)
        for i in 0..<(B * T) { keyMask[i] = attentionMask[i] != 0 ? 1 : 0 }

        // RoBERTa's position ids: pad + 1, pad + 2, … over the non-pad tokens, pad at the pads
        // (transformers' create_position_ids_from_input_ids: it looks at the ids, not the attention mask).
        var positions: UnsafeMutablePointer<Int32>? = nil
        if let pad = shape.paddingIndex {
            let buffer = integers.take(N)
            Embeddings.robertaPositions(out: buffer, ids: ids, paddingIndex: Int32(pad), batch: B, length: T)
            positions = buffer
        }

        // Embeddings: LN(word + position (+ type)), dropout; ALBERT then widens E to H.
        let E = shape.embeddingSize
        let embeddingSum = floats.take(N * E)
        Embeddings.forward(out: embeddingSum, ids: ids, positions: positions, types: types, word: value(names.wordEmbeddings),
                           position: value(names.positionEmbeddings), tokenType: names.tokenTypeEmbeddings.map { value($0) },
                           batch: B, length: T, hidden: E)
        let embeddingMean = floats.take(N), embeddingRstd = floats.take(N)
        let embeddingOut = floats.take(N * E)
        sk_layernorm_forward(embeddingOut, embeddingMean, embeddingRstd, embeddingSum, value(names.embeddingNorm + ".weight"),
                             value(names.embeddingNorm + ".bias"), Int32(N), Int32(E), eps)
        let embeddingMask = hiddenP > 0 ? floats.take(N * E) : nil
        if let embeddingMask {
            Dropout.forward(out: embeddingOut, inp: embeddingOut, mask: embeddingMask, count: N * E, p: hiddenP, seed: seed, stream: stream(0))
        }
        var hidden = [embeddingOut]
        var embeddingNarrow: FloatPointer? = nil
        if let projection = names.embeddingProjection {
            // hidden[0] (N, H) = narrow (N, E) @ Wm^T + bm: transformers' hidden_states[0] is this widened one.
            let widened = floats.take(N * H)
            LinearLayer.forward(out: widened, inp: embeddingOut, weight: value(projection + ".weight"), bias: value(projection + ".bias"),
                                rows: N, inFeatures: E, outFeatures: H)
            embeddingNarrow = embeddingOut
            hidden = [widened]
        }

        // Hooks see inference only: training always runs the float layers it differentiates.
        let hook = training ? nil : linearHook
        let headRowsOnly = !training && headRowsOnlyInInference && effectivePooling == .cls && head.inputLayers == 1
            && !(hook?.needsEveryRow ?? false) && L > 0
        var layers: [LayerBuffers] = []
        layers.reserveCapacity(L)
        for l in 0..<(headRowsOnly ? L - 1 : L) {
            let p = layerOffsets[l], x = hidden[l], ln = names.layers[shape.storedLayer(l)], A = shape.attentionWidth(layer: l)
            let attention = AttentionCore.Shape(batch: B, length: T, heads: shape.heads(inLayer: l), headSize: shape.headSize)
            // qkv (N, 3A) = x @ [Wq; Wk; Wv]^T + [bq; bk; bv]
            let qkv = floats.take(N * 3 * A)
            encoderLinear(hook, [ln.query, ln.key, ln.value], out: qkv, inp: x, weight: value(p.qkvWeight), bias: value(p.qkvBias), rows: N, inFeatures: H, outFeatures: 3 * A)
            let probs = floats.take(attention.scoreCount)
            let probsMask = attentionP > 0 ? floats.take(attention.scoreCount) : nil
            let droppedProbs = attentionP > 0 ? floats.take(attention.scoreCount) : nil
            let context = floats.take(N * A)
            AttentionCore.forward(context: context, probs: probs, dropoutMask: probsMask, dropped: droppedProbs, dropoutP: attentionP,
                                  seed: seed, stream: stream(1 + 4 * l), qkv: qkv, keyMask: keyMask, shape: attention)
            // residual1 (N, H) = x + dropout(context @ Wo^T + bo)   (DistilBERT has no dropout here)
            let residual1 = floats.take(N * H)
            encoderLinear(hook, [ln.attentionOutput], out: residual1, inp: context, weight: value(p.outWeight), bias: value(p.outBias), rows: N, inFeatures: A, outFeatures: H)
            let attentionMask = hiddenP > 0 && shape.modelType != .distilbert ? floats.take(N * H) : nil
            if let attentionMask {
                Dropout.forward(out: residual1, inp: residual1, mask: attentionMask, count: N * H, p: hiddenP, seed: seed, stream: stream(2 + 4 * l))
            }
            sk_add(residual1, residual1, x, N * H)
            let norm1 = floats.take(N * H), norm1Mean = floats.take(N), norm1Rstd = floats.take(N)
            sk_layernorm_forward(norm1, norm1Mean, norm1Rstd, residual1, value(p.norm1Weight), value(p.norm1Bias), Int32(N), Int32(H), eps)
            // ffnAct (N, I) = GELU(norm1 @ W1^T + b1). A forward with the [CLS]-only last layer cannot be
            // differentiated (backward refuses it), so it keeps no pre-activation: GELU runs in place, one
            // (N, I) buffer fewer to write and to read back.
            let ffnPre = floats.take(N * I), ffnAct = headRowsOnly ? ffnPre : floats.take(N * I)
            encoderLinear(hook, [ln.ffnIn], out: ffnPre, inp: norm1, weight: value(p.ffnInWeight), bias: nil, rows: N, inFeatures: H, outFeatures: I)
            biasActivation(ffnAct, ffnPre, bias: value(p.ffnInBias), rows: N, columns: I)
            // residual2 (N, H) = norm1 + dropout(ffnAct @ W2^T + b2)   (ALBERT has no dropout here)
            let residual2 = floats.take(N * H)
            encoderLinear(hook, [ln.ffnOut], out: residual2, inp: ffnAct, weight: value(p.ffnOutWeight), bias: value(p.ffnOutBias), rows: N, inFeatures: I, outFeatures: H)
            let ffnMask = hiddenP > 0 && shape.modelType != .albert ? floats.take(N * H) : nil
            if let ffnMask {
                Dropout.forward(out: residual2, inp: residual2, mask: ffnMask, count: N * H, p: hiddenP, seed: seed, stream: stream(3 + 4 * l))
            }
            sk_add(residual2, residual2, norm1, N * H)
            let out = floats.take(N * H), norm2Mean = floats.take(N), norm2Rstd = floats.take(N)
            sk_layernorm_forward(out, norm2Mean, norm2Rstd, residual2, value(p.norm2Weight), value(p.norm2Bias), Int32(N), Int32(H), eps)
            hidden.append(out)
            layers.append(LayerBuffers(qkv: qkv, probs: probs, probsMask: probsMask, droppedProbs: droppedProbs, context: context,
                                       attentionMask: attentionMask, residual1: residual1, norm1: norm1, norm1Mean: norm1Mean,
                                       norm1Rstd: norm1Rstd, ffnPre: ffnPre, ffnAct: ffnAct, ffnMask: ffnMask, residual2: residual2,
                                       norm2Mean: norm2Mean, norm2Rstd: norm2Rstd))
        }

        if headRowsOnly { hidden.append(lastLayerForHeadRows(hook, x: hidden[L - 1], keyMask: keyMask, batch: B, length: T)) }

        // Head: pooled (B, K·H) -> Linear(K·H, D) -> tanh | ReLU -> dropout -> Linear(D, labels).
        let K = head.inputLayers
        let pooled = floats.take(B * K * H)
        if headRowsOnly {
            pooled.update(from: hidden[L], count: B * H)    // already the [CLS] rows
        } else if K > 1 {
            // The seed's use_multi_layers: [CLS] of hidden states L, L−1, …, L−K+1, side by side.
            for b in 0..<B {
                for i in 0..<K { (pooled + (b * K + i) * H).update(from: hidden[L - i] + b * T * H, count: H) }
            }
        } else {
            Pooler.forward(pooled: pooled, maxIndex: maxIndex, hidden: hidden[L], keyMask: keyMask, pooling: effectivePooling,
                           batch: B, length: T, width: H)
        }
        // RoBERTa's head drops out <s> before its dense (the others start with their linear).
        let pooledMask = head == .roberta && headP > 0 ? floats.take(B * K * H) : nil
        let pooledDropped = head == .roberta && headP > 0 ? floats.take(B * K * H) : nil
        if let pooledMask, let pooledDropped {
            Dropout.forward(out: pooledDropped, inp: pooled, mask: pooledMask, count: B * K * H, p: headP, seed: seed, stream: stream(2 + 4 * L))
        }
        let headPre = floats.take(B * D), headAct = floats.take(B * D)
        LinearLayer.forward(out: headPre, inp: pooledDropped ?? pooled, weight: value(names.headHidden + ".weight"), bias: value(names.headHidden + ".bias"),
                            rows: B, inFeatures: K * H, outFeatures: D)
        let usesTanh = head.usesTanh
        for i in 0..<(B * D) { headAct[i] = usesTanh ? tanh(headPre[i]) : Swift.max(headPre[i], 0) }
        let headMask = headP > 0 ? floats.take(B * D) : nil
        let headDropped = headP > 0 ? floats.take(B * D) : nil
        if let headMask, let headDropped {
            Dropout.forward(out: headDropped, inp: headAct, mask: headMask, count: B * D, p: headP, seed: seed, stream: stream(1 + 4 * L))
        }
        let logits = floats.take(B * numLabels)
        LinearLayer.forward(out: logits, inp: headDropped ?? headAct, weight: value(names.headOutput + ".weight"),
                            bias: value(names.headOutput + ".bias"), rows: B, inFeatures: D, outFeatures: numLabels)

        saved = SavedForward(batch: B, length: T, ids: ids, types: types, keyMask: keyMask, positions: positions, embeddingSum: embeddingSum,
                             embeddingMean: embeddingMean, embeddingRstd: embeddingRstd, embeddingMask: embeddingMask,
                             embeddingNarrow: embeddingNarrow,
                             hidden: hidden, layers: layers, pooled: pooled, pooledMask: pooledMask, pooledDropped: pooledDropped, maxIndex: maxIndex, headPre: headPre, headAct: headAct,
                             headMask: headMask, headDropped: headDropped, logits: logits,
                             backwardSlot: floats.position, backwardIntegerSlot: integers.position, headRowsOnly: headRowsOnly)
        return Array(UnsafeBufferPointer(start: logits, count: B * numLabels))
    }

    /// The last encoder layer for the [CLS] rows only (see `headRowsOnlyInInference`); x (N, H) is the
    /// previous layer's output. Returns the layer's output rows of the B [CLS] tokens, (B, H).
    private func lastLayerForHeadRows(_ hook: LinearLayerHook?, x: UnsafePointer<Float>, keyMask: UnsafePointer<Float>,
                                      batch B: Int, length T: Int) -> FloatPointer {
        let last = shape.layers - 1
        let H = shape.hiddenSize, I = shape.intermediateSize, N = B * T, nh = shape.heads(inLayer: last), dh = shape.headSize
        let A = shape.attentionWidth(layer: last)
        let p = layerOffsets[last], eps = shape.layerNormEps, ln = names.layers[shape.storedLayer(last)]
        // cls (B, H): the [CLS] row of each sequence.
        let cls = floats.take(B * H)
        for b in 0..<B { (cls + b * H).update(from: x + b * T * H, count: H) }
        let q = floats.take(B * A)
        // kv: keys and values of every token, row stride kvStride (values at + A).
        let kv: UnsafePointer<Float>, kvStride: Int
        if let hook {
            // The hook's layer is the fused query/key/value one: run it on every row, qkv (N, 3A), and take
            // the [CLS] queries from it. The extra queries cost 1/3 of this product; the rest of the layer
            // still runs on B rows only.
            let qkv = floats.take(N * 3 * A)
            encoderLinear(hook, [ln.query, ln.key, ln.value], out: qkv, inp: x, weight: value(p.qkvWeight), bias: value(p.qkvBias),
                          rows: N, inFeatures: H, outFeatures: 3 * A)
            for b in 0..<B { (q + b * A).update(from: qkv + b * T * 3 * A, count: A) }
            kv = UnsafePointer(qkv + A)
            kvStride = 3 * A
        } else {
            // kv (N, 2A) = x @ [Wk; Wv]^T + [bk; bv]; q (B, A) = cls @ Wq^T + bq.
            let keysValues = floats.take(N * 2 * A)
            LinearLayer.forward(out: keysValues, inp: x, weight: value(p.qkvWeight) + A * H, bias: value(p.qkvBias) + A,
                                rows: N, inFeatures: H, outFeatures: 2 * A)
            LinearLayer.forward(out: q, inp: cls, weight: value(p.qkvWeight), bias: value(p.qkvBias), rows: B, inFeatures: H, outFeatures: A)
            kv = UnsafePointer(keysValues)
            kvStride = 2 * A
        }
        // Per sequence and head: scores (1, T) = scale * q K^T, masked softmax, context (1, dh) = probs @ V.
        let scores = floats.take(B * nh * T), context = floats.take(B * A)
        let scale = 1 / Float(dh).squareRoot()
        for b in 0..<B {
            let keys = kv + b * T * kvStride, values = keys + A, probs = scores + b * nh * T
            for h in 0..<nh {
                gemm(false, true, m: 1, n: T, k: dh, alpha: scale, q + b * A + h * dh, lda: A, keys + h * dh, ldb: kvStride,
                     beta: 0, probs + h * T, ldc: T)
            }
            sk_masked_softmax_rows(probs, probs, keyMask + b * T, nh, Int32(T))
            for h in 0..<nh {
                gemm(false, false, m: 1, n: dh, k: T, probs + h * T, lda: T, values + h * dh, ldb: kvStride,
                     beta: 0, context + b * A + h * dh, ldc: A)
            }
        }
        // The rest of the layer as in `forward`, on B rows: projection + residual, LN1, FFN + residual, LN2.
        let residual1 = floats.take(B * H)
        encoderLinear(hook, [ln.attentionOutput], out: residual1, inp: context, weight: value(p.outWeight), bias: value(p.outBias),
                      rows: B, inFeatures: A, outFeatures: H)
        sk_add(residual1, residual1, cls, B * H)
        let norm1 = floats.take(B * H), norm1Mean = floats.take(B), norm1Rstd = floats.take(B)
        sk_layernorm_forward(norm1, norm1Mean, norm1Rstd, residual1, value(p.norm1Weight), value(p.norm1Bias), Int32(B), Int32(H), eps)
        let ffnPre = floats.take(B * I), ffnAct = ffnPre   // inference only: GELU in place
        encoderLinear(hook, [ln.ffnIn], out: ffnPre, inp: norm1, weight: value(p.ffnInWeight), bias: nil, rows: B, inFeatures: H, outFeatures: I)
        biasActivation(ffnAct, ffnPre, bias: value(p.ffnInBias), rows: B, columns: I)
        let residual2 = floats.take(B * H)
        encoderLinear(hook, [ln.ffnOut], out: residual2, inp: ffnAct, weight: value(p.ffnOutWeight), bias: value(p.ffnOutBias),
                      rows: B, inFeatures: I, outFeatures: H)
        sk_add(residual2, residual2, norm1, B * H)
        let out = floats.take(B * H), norm2Mean = floats.take(B), norm2Rstd = floats.take(B)
        sk_layernorm_forward(out, norm2Mean, norm2Rstd, residual2, value(p.norm2Weight), value(p.norm2Bias), Int32(B), Int32(H), eps)
        return out
    }

    private func validate(inputIds: [Int32], attentionMask: [Int32], tokenTypeIds: [Int32]?, batch: Int, length: Int) throws {
        guard batch >= 1, length >= 1 else { throw ModelInputError(problem: "batch \(batch) x length \(length) is empty") }
        let n = batch * length
        guard inputIds.count == n else { throw ModelInputError(problem: "\(inputIds.count) input ids for batch \(batch) x length \(length) (\(n) expected)") }
        guard attentionMask.count == n else { throw ModelInputError(problem: "attention mask has \(attentionMask.count) entries, \(n) expected") }
        guard length <= shape.maxSequenceLength else {
            throw ModelInputError(problem: "sequence length \(length) exceeds the model's \(shape.maxSequenceLength) positions")
        }
        if let bad = inputIds.firstIndex(where: { $0 < 0 || Int($0) >= shape.vocabSize }) {
            throw ModelInputError(problem: "token id \(inputIds[bad]) at row \(bad / length), position \(bad % length) is outside the vocabulary of \(shape.vocabSize)")
        }
        if let tokenTypeIds {
            guard tokenTypeIds.count == n else { throw ModelInputError(problem: "token type ids have \(tokenTypeIds.count) entries, \(n) expected") }
            guard names.tokenTypeEmbeddings != nil else { throw ModelInputError(problem: "DistilBERT takes no token type ids") }
            if let bad = tokenTypeIds.firstIndex(where: { $0 < 0 || Int($0) >= shape.typeVocabSize }) {
                throw ModelInputError(problem: "token type id \(tokenTypeIds[bad]) at row \(bad / length) is outside 0..<\(shape.typeVocabSize)")
            }
        }
    }

    /// An encoder linear layer: the hook's product when it takes the layer, the float one otherwise.
    private func encoderLinear(_ hook: LinearLayerHook?, _ layerNames: [String], out: FloatPointer, inp: UnsafePointer<Float>,
                               weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, rows: Int, inFeatures: Int, outFeatures: Int) {
        if let hook {
            hook.observe(layers: layerNames, input: inp, rows: rows, inFeatures: inFeatures)
            if hook.replace(layers: layerNames, input: inp, rows: rows, inFeatures: inFeatures, output: out,
                            outFeatures: outFeatures, includeBias: bias != nil) { return }
        }
        LinearLayer.forward(out: out, inp: inp, weight: weight, bias: bias, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures)
    }

    // ---------------------------------------------------------------- backward

    /// Adds the gradients of the last forward's loss to `store.gradients`, given dLogits (B, numLabels).
    ///
    /// `hiddenStateGradients[i]` (B, T, H) is an extra gradient on hidden state i (0 = embedding
    /// output, L = last layer), e.g. from a hidden-state distillation loss.
    /// `attentionProbabilityGradients[l]` (B, heads, T, T) is an extra gradient on layer l's attention
    /// probabilities (before dropout), e.g. from an attention distillation loss.
    func backward(dLogits: [Float], hiddenStateGradients: [Int: [Float]] = [:], attentionProbabilityGradients: [Int: [Float]] = [:]) {
        guard let saved else { preconditionFailure("backward without a forward") }
        precondition(!saved.headRowsOnly, "backward needs a full forward: this one ran the last layer for [CLS] only (headRowsOnlyInInference)")
        let B = saved.batch, T = saved.length, N = B * T, H = shape.hiddenSize, I = shape.intermediateSize, L = shape.layers
        let D = headHidden, K = head.inputLayers
        precondition(dLogits.count == B * numLabels, "dLogits needs B x numLabels = \(B * numLabels) values")
        floats.rewind(to: saved.backwardSlot)
        integers.rewind(to: saved.backwardIntegerSlot)

        // Head, from the logits down to the pooled vector.
        let dLogitsBuffer = floats.take(B * numLabels)
        dLogits.withUnsafeBufferPointer { dLogitsBuffer.update(from: $0.baseAddress!, count: B * numLabels) }
        let dHead = floats.take(B * D)
        LinearLayer.backward(dinp: dHead, dweight: gradient(names.headOutput + ".weight"), dbias: gradient(names.headOutput + ".bias"),
                             dout: dLogitsBuffer, inp: saved.headDropped ?? saved.headAct, weight: value(names.headOutput + ".weight"),
                             rows: B, inFeatures: D, outFeatures: numLabels)
        if let mask = saved.headMask { Dropout.backward(dinp: dHead, dout: dHead, mask: mask, count: B * D) }
        let usesTanh = head.usesTanh
        for i in 0..<(B * D) {
            let a = saved.headAct[i]
            dHead[i] *= usesTanh ? 1 - a * a : (saved.headPre[i] > 0 ? 1 : 0)
        }
        let dPooled = frozenEncoder ? nil : floats.take(B * K * H)
        LinearLayer.backward(dinp: dPooled, dweight: gradient(names.headHidden + ".weight"), dbias: gradient(names.headHidden + ".bias"),
                             dout: dHead, inp: saved.pooledDropped ?? saved.pooled, weight: value(names.headHidden + ".weight"), rows: B, inFeatures: K * H, outFeatures: D)
        guard let dPooled else { return }
        if let mask = saved.pooledMask { Dropout.backward(dinp: dPooled, dout: dPooled, mask: mask, count: B * K * H) }

        // dx (N, H): gradient at the current layer's output, walking down.
        let dx = floats.take(N * H, zeroed: true)
        if K == 1 {
            Pooler.backward(dhidden: dx, dpooled: dPooled, maxIndex: saved.maxIndex, keyMask: saved.keyMask, pooling: effectivePooling,
                            batch: B, length: T, width: H)
        }
        func addExtra(_ index: Int) {
            // A multi-layer head read the [CLS] row of hidden state `index` as slice L − index of its input.
            if K > 1, L - index < K {
                for b in 0..<B { sk_accumulate(dx + b * T * H, dPooled + (b * K + L - index) * H, H) }
            }
            guard let extra = hiddenStateGradients[index] else { return }
            precondition(extra.count == N * H, "hidden state gradient \(index) needs B x T x H = \(N * H) values")
            extra.withUnsafeBufferPointer { sk_accumulate(dx, $0.baseAddress!, N * H) }
        }
        addExtra(L)

        // Buffers sized for the widest layer (A <= H, a layer's heads <= shape.heads), reused by every layer.
        let dResidual = floats.take(N * H), dProjection = floats.take(N * H), dNorm1 = floats.take(N * H)
        let dContext = floats.take(N * H), dFfn = floats.take(N * I), dqkv = floats.take(N * 3 * H)
        let dProbs = floats.take(B * shape.heads * T * T)
        for l in stride(from: L - 1, through: 0, by: -1) {
            let p = layerOffsets[l], a = saved.layers[l], x = saved.hidden[l], A = shape.attentionWidth(layer: l)
            let attention = AttentionCore.Shape(batch: B, length: T, heads: shape.heads(inLayer: l), headSize: shape.headSize)
            // LN2 backward: dResidual = d(residual2)
            dResidual.update(repeating: 0, count: N * H)
            sk_layernorm_backward(dResidual, gradient(p.norm2Weight), gradient(p.norm2Bias), dx, a.residual2, value(p.norm2Weight),
                                  a.norm2Mean, a.norm2Rstd, Int32(N), Int32(H))
            // FFN: residual2 = norm1 + dropout(GELU(norm1 W1^T + b1) W2^T + b2)
            var dFfnOut = UnsafePointer(dResidual)
            if let mask = a.ffnMask { Dropout.backward(dinp: dProjection, dout: dResidual, mask: mask, count: N * H); dFfnOut = UnsafePointer(dProjection) }
            LinearLayer.backward(dinp: dFfn, dweight: gradient(p.ffnOutWeight), dbias: gradient(p.ffnOutBias), dout: dFfnOut,
                                 inp: a.ffnAct, weight: value(p.ffnOutWeight), rows: N, inFeatures: I, outFeatures: H)
            activationBackward(dFfn, pre: a.ffnPre, count: N * I)
            LinearLayer.backward(dinp: dNorm1, dweight: gradient(p.ffnInWeight), dbias: gradient(p.ffnInBias), dout: dFfn,
                                 inp: a.norm1, weight: value(p.ffnInWeight), rows: N, inFeatures: H, outFeatures: I)
            sk_accumulate(dNorm1, dResidual, N * H)
            // LN1 backward: dResidual = d(residual1)
            dResidual.update(repeating: 0, count: N * H)
            sk_layernorm_backward(dResidual, gradient(p.norm1Weight), gradient(p.norm1Bias), dNorm1, a.residual1, value(p.norm1Weight),
                                  a.norm1Mean, a.norm1Rstd, Int32(N), Int32(H))
            // Attention: residual1 = x + dropout(context Wo^T + bo)
            var dAttentionOut = UnsafePointer(dResidual)
            if let mask = a.attentionMask { Dropout.backward(dinp: dProjection, dout: dResidual, mask: mask, count: N * H); dAttentionOut = UnsafePointer(dProjection) }
            LinearLayer.backward(dinp: dContext, dweight: gradient(p.outWeight), dbias: gradient(p.outBias), dout: dAttentionOut,
                                 inp: a.context, weight: value(p.outWeight), rows: N, inFeatures: A, outFeatures: H)
            let extraProbs = attentionProbabilityGradients[l]
            precondition(extraProbs == nil || extraProbs!.count == attention.scoreCount,
                         "attention probability gradient \(l) needs B x heads x T x T = \(attention.scoreCount) values")
            extraProbs.withOptionalBuffer { extra in
                AttentionCore.backward(dqkv: dqkv, dprobs: dProbs, dcontext: dContext, qkv: a.qkv, probs: a.probs, dropped: a.droppedProbs,
                                       dropoutMask: a.probsMask, shape: attention, extraProbabilityGradient: extra)
            }
            // dx = dqkv @ [Wq; Wk; Wv] + dResidual (the residual path around attention)
            LinearLayer.backward(dinp: dx, dweight: gradient(p.qkvWeight), dbias: gradient(p.qkvBias), dout: dqkv, inp: x,
                                 weight: value(p.qkvWeight), rows: N, inFeatures: H, outFeatures: 3 * A)
            sk_accumulate(dx, dResidual, N * H)
            addExtra(l)
        }

        // Embeddings: hidden[0] = dropout(LN(embeddingSum)), for ALBERT widened: hidden[0] = narrow Wm^T + bm.
        let E = shape.embeddingSize
        var dNarrow = dx
        if let projection = names.embeddingProjection, let narrow = saved.embeddingNarrow {
            dNarrow = floats.take(N * E)
            LinearLayer.backward(dinp: dNarrow, dweight: gradient(projection + ".weight"), dbias: gradient(projection + ".bias"), dout: dx,
                                 inp: narrow, weight: value(projection + ".weight"), rows: N, inFeatures: E, outFeatures: H)
        }
        if let mask = saved.embeddingMask { Dropout.backward(dinp: dNarrow, dout: dNarrow, mask: mask, count: N * E) }
        let dEmbedding = floats.take(N * E, zeroed: true)
        sk_layernorm_backward(dEmbedding, gradient(names.embeddingNorm + ".weight"), gradient(names.embeddingNorm + ".bias"), dNarrow,
                              saved.embeddingSum, value(names.embeddingNorm + ".weight"), saved.embeddingMean, saved.embeddingRstd,
                              Int32(N), Int32(E))
        Embeddings.backward(dword: gradient(names.wordEmbeddings), dposition: gradient(names.positionEmbeddings),
                            dtokenType: names.tokenTypeEmbeddings.map { gradient($0) }, dout: dEmbedding, ids: saved.ids,
                            positions: saved.positions, types: saved.types, batch: B, length: T, hidden: E)
    }

    /// out (rows, columns) = act(pre + bias), the bias added into pre (kept for the backward); out may be pre.
    private func biasActivation(_ out: FloatPointer, _ pre: FloatPointer, bias: UnsafePointer<Float>, rows: Int, columns: Int) {
        switch shape.activation {
        case .gelu: sk_bias_gelu_forward(out, pre, bias, Int32(rows), Int32(columns))
        case .geluTanh: TanhGELU.forward(out: out, pre: pre, bias: bias, rows: rows, columns: columns)
        }
    }

    /// d (count) = d * act'(pre), in place.
    private func activationBackward(_ d: FloatPointer, pre: UnsafePointer<Float>, count: Int) {
        switch shape.activation {
        case .gelu: sk_gelu_backward(d, pre, d, count)
        case .geluTanh: TanhGELU.backward(dpre: d, pre: pre, dout: d, count: count)
        }
    }

    // ---------------------------------------------------------------- inspection

    /// Hidden state `index` of the last forward, (B, T, H): 0 is the embedding output, i the output of layer i.
    func hiddenState(_ index: Int) -> Tensor {
        guard let saved else { preconditionFailure("no forward has run") }
        precondition(!(saved.headRowsOnly && index == shape.layers),
                     "the last hidden state was computed for [CLS] only (headRowsOnlyInInference)")
        let count = saved.batch * saved.length * shape.hiddenSize
        return Tensor(shape: [saved.batch, saved.length, shape.hiddenSize],
                      scalars: Array(UnsafeBufferPointer(start: saved.hidden[index], count: count)))
    }

    /// The vector the head read for each sequence, (B, K·H) (pooled last hidden state, or the K [CLS] vectors).
    func pooledOutput() -> Tensor {
        guard let saved else { preconditionFailure("no forward has run") }
        let width = head.inputLayers * shape.hiddenSize
        return Tensor(shape: [saved.batch, width],
                      scalars: Array(UnsafeBufferPointer(start: saved.pooled, count: saved.batch * width)))
    }

    /// Attention probabilities of one layer in the last forward, (B, heads, T, T), before dropout
    /// (heads: the heads that layer keeps).
    func attentionProbabilities(layer: Int) -> Tensor {
        guard let saved else { preconditionFailure("no forward has run") }
        precondition(layer < saved.layers.count, "layer \(layer)'s attention was computed for [CLS] only (headRowsOnlyInInference)")
        let T = saved.length, heads = shape.heads(inLayer: layer)
        return Tensor(shape: [saved.batch, heads, T, T],
                      scalars: Array(UnsafeBufferPointer(start: saved.layers[layer].probs, count: saved.batch * heads * T * T)))
    }

    /// Bytes of activation and scratch memory held for reuse.
    var activationBytes: Int { floats.allocatedBytes + integers.allocatedBytes }
}

// ---------------------------------------------------------------- pooling

enum Pooler {
    /// pooled (B, W) from hidden (B, T, W): the [CLS] row, or the mean / max over real tokens
    /// (keyMask (B, T) = 1). maxIndex (B, W) records which token won the max, -1 when none.
    static func forward(pooled: FloatPointer, maxIndex: UnsafeMutablePointer<Int32>, hidden: UnsafePointer<Float>,
                        keyMask: UnsafePointer<Float>, pooling: Pooling, batch: Int, length: Int, width: Int) {
        for b in 0..<batch {
            let out = pooled + b * width, rows = hidden + b * length * width
            switch pooling {
            case .cls:
                out.update(from: rows, count: width)
            case .mean:
                out.update(repeating: 0, count: width)
                var count: Float = 0
                for t in 0..<length where keyMask[b * length + t] != 0 {
                    sk_accumulate(out, rows + t * width, width)
                    count += 1
                }
                if count > 0 { for c in 0..<width { out[c] /= count } }
            case .max:
                let index = maxIndex + b * width
                index.update(repeating: -1, count: width)
                out.update(repeating: 0, count: width)
                for t in 0..<length where keyMask[b * length + t] != 0 {
                    let row = rows + t * width
                    for c in 0..<width where index[c] < 0 || row[c] > out[c] {
                        out[c] = row[c]
                        index[c] = Int32(t)
                    }
                }
            }
        }
    }

    /// dhidden (B, T, W) += the gradient of the pooling given dpooled (B, W).
    static func backward(dhidden: FloatPointer, dpooled: UnsafePointer<Float>, maxIndex: UnsafePointer<Int32>,
                         keyMask: UnsafePointer<Float>, pooling: Pooling, batch: Int, length: Int, width: Int) {
        for b in 0..<batch {
            let d = dpooled + b * width, rows = dhidden + b * length * width
            switch pooling {
            case .cls:
                sk_accumulate(rows, d, width)
            case .mean:
                var count: Float = 0
                for t in 0..<length where keyMask[b * length + t] != 0 { count += 1 }
                guard count > 0 else { continue }
                for t in 0..<length where keyMask[b * length + t] != 0 {
                    let row = rows + t * width
                    for c in 0..<width { row[c] += d[c] / count }
                }
            case .max:
                let index = maxIndex + b * width
                for c in 0..<width where index[c] >= 0 { rows[Int(index[c]) * width + c] += d[c] }
            }
        }
    }
}

private extension Optional where Wrapped == [Float] {
    /// The array's base address for the body, or nil when there is no array.
    func withOptionalBuffer<R>(_ body: (UnsafePointer<Float>?) -> R) -> R {
        guard let self else { return body(nil) }
        return self.withUnsafeBufferPointer { body($0.baseAddress) }
    }
}
