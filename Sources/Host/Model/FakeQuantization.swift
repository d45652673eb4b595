import Kernels

// Quantization-aware training: the encoder's linear layers run with their quantization simulated
// ("fake-quantized") in float, so fine-tuning learns weights that survive the quantizer, and the
// backward goes through the rounding with the straight-through estimator (Bengio et al. 2013).
//
// For one linear layer y = x Wᵀ + b with x (M, K), W (N, K), y (M, N):
//
//   forward   Ŵ (N, K) = the quantizer's reconstruction of W (its "sankshep.qat/1" fake_quantize:
//                        bit for bit what the converted layer holds), refreshed after every step
//             x̂ (M, K)  = q · s,  q = round_half_even(clamp(x / s, −qmax, qmax))  — s per tensor or per row
//             y (M, N)  = x̂ Ŵᵀ + b
//   backward  dŴ (N, K) = dyᵀ x̂          → dW = dŴ ⊙ pass   (pass: the quantizer's mask, 0 where W clipped)
//             dx̂ (M, K) = dy Ŵ           → dx = dx̂ ⊙ [|x / s| ≤ qmax]   (0 where the input clipped)
//             db (N)    = Σ_m dy
//
// Per-tensor input scales (static INT8) are OBSERVED, not learned: they start at the calibration
// rows' largest |x| (what the static quantizer's minmax observer picks after training) and follow an
// exponential moving average of each training batch's largest |x| (PyTorch's
// MovingAverageMinMaxObserver) until they are frozen for the last epoch. Why not learned ranges (LSQ,
// PACT): at 8 bits the grid is fine enough that where the range sits costs little, observed ranges add
// no parameters or learning rate to tune, and the scheme that would gain most from learned ranges
// (4-bit activations) is not one the built-in targets use: INT4's inputs are quantized per row at run
// time (SK_QAT_INPUT_PER_ROW), with nothing to learn. The scale of a row (per-row scheme) takes no
// gradient, as in the straight-through estimator's usual form.

/// How a quantizer quantizes a layer's input (the "sankshep.qat/1" extension's `input_scheme`).
enum QATInputScheme: Sendable, Equatable {
    /// Inputs stay float (weight-only methods).
    case float
    /// One scale per layer input, chosen while training and fixed at conversion; codes ±qmax.
    case perTensor(qmax: Int)
    /// Each row's own scale max|x_row| / qmax at run time; nothing clips.
    case perRow(qmax: Int)
}

/// The fake quantizer of a layer's input: forward and backward side by side.
enum InputFakeQuant {
    /// x̂ (rows, cols) = q · s with q = round_half_even(clamp(x · (1/s), −qmax, qmax)), one scale s > 0
    /// for the whole tensor; clipped (rows·cols) = 1 where x · (1/s) fell outside ±qmax.
    /// The float operations are the quantizer's (sk_quantize_rows_int8 with a static scale), so the
    /// codes are the converted layer's.
    static func forwardPerTensor(out: FloatPointer, clipped: UnsafeMutablePointer<UInt8>, inp: UnsafePointer<Float>,
                                 count: Int, scale: Float, qmax: Int) {
        let inverse = 1 / scale, limit = Float(qmax)
        for i in 0..<count {
            let v = inp[i] * inverse
            let clamped = !(v >= -limit) ? -limit : (v > limit ? limit : v)
            clipped[i] = clamped == v ? 0 : 1
            out[i] = clamped.rounded(.toNearestOrEven) * scale
        }
    }

    /// x̂ (rows, cols): each row with its own scale s = max|x_row| / qmax, multiplied as qmax / max|x_row|
    /// (0 for an all-zero row), as dynamic INT8 quantizes rows. Nothing clips.
    static func forwardPerRow(out: FloatPointer, inp: UnsafePointer<Float>, rows: Int, cols: Int, qmax: Int) {
        let limit = Float(qmax)
        for r in 0..<rows {
            let x = inp + r * cols, y = out + r * cols
            var largest: Float = 0
            for k in 0..<cols { largest = Swift.max(largest, abs(x[k])) }
            let scale = largest / limit, inverse = largest > 0 ? limit / largest : 0
            for k in 0..<cols {
                let v = x[k] * inverse
                let clamped = !(v >= -limit) ? -limit : (v > limit ? limit : v)
                y[k] = clamped.rounded(.toNearestOrEven) * scale
            }
        }
    }

    /// dinp (n) = dout ⊙ [not clipped]: the straight-through estimator, zero where the input clipped.
    /// dinp may be dout.
    static func backward(dinp: FloatPointer, dout: UnsafePointer<Float>, clipped: UnsafePointer<UInt8>, count: Int) {
        for i in 0..<count { dinp[i] = clipped[i] != 0 ? 0 : dout[i] }
    }

    /// The largest |x| of (count) values.
    static func absMax(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var largest: Float = 0
        for i in 0..<count { largest = Swift.max(largest, abs(x[i])) }
        return largest
    }
}

/// The fake-quantized linear layers of one network while it trains for a quantizer. The network
/// (`SequenceClassifier.fakeQuantization`) asks it for each encoder linear layer's weight and input;
/// the training loop refreshes the weights after every optimizer step and masks their gradients.
final class FakeQuantization {
    /// What the observers of per-tensor input ranges do in a forward.
    enum RangeMode: Sendable {
        /// Take the largest |x| seen (calibration batches before training).
        case calibrate
        /// Training forwards move each range toward the batch's largest |x| (EMA); inference forwards leave it.
        case observe
        /// Ranges stay as they are.
        case frozen
    }

    /// One encoder linear layer (query/key/value fused, as the quantizer holds them).
    final class Layer {
        /// The layer names joined by "|" (`QuantizedLayerRecord.hookKey`).
        let key: String
        /// Where the (rows, cols) weight starts in the parameter store (Q, K, V are contiguous there).
        let weightOffset: Int
        let rows: Int, cols: Int
        /// Ŵ (rows, cols) and the gradient mask (rows, cols), from the quantizer.
        var fakeWeight: [Float]
        var pass: [UInt8]
        var passesAll = true
        /// Per-tensor scheme: the range (largest |x|) the scale is made of; 0 until first observed.
        var range: Float = 0
        /// Saved by the last forward for the backward: x̂ (tokens, cols) and the clip mask (tokens, cols).
        fileprivate var input: [Float] = []
        fileprivate var clipped: [UInt8] = []
        fileprivate var tokens = 0

        init(key: String, weightOffset: Int, rows: Int, cols: Int) {
            self.key = key
            self.weightOffset = weightOffset
            self.rows = rows
            self.cols = cols
            fakeWeight = [Float](repeating: 0, count: rows * cols)
            pass = [UInt8](repeating: 1, count: rows * cols)
        }
    }

    /// The quantizer's weight fake quantizer: (layer, W) fills the layer's `fakeWeight` and `pass`.
    typealias WeightQuantizer = (_ layer: Layer, _ weight: UnsafePointer<Float>) throws -> Void

    let scheme: QATInputScheme
    var rangeMode: RangeMode = .observe
    /// Weight of the old range in the moving average (PyTorch's averaging constant 0.01).
    var momentum: Float = 0.99
    let layers: [Layer]
    private let byKey: [String: Layer]
    private let quantizeWeight: WeightQuantizer

    init(layers: [Layer], scheme: QATInputScheme, quantizeWeight: @escaping WeightQuantizer) {
        self.layers = layers
        self.scheme = scheme
        self.quantizeWeight = quantizeWeight
        byKey = Dictionary(layers.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
    }

    func layer(_ names: [String]) -> Layer? { byKey[names.joined(separator: "|")] }

    /// Ŵ of every layer from the float weights in `store` (after each optimizer step).
    func refreshWeights(_ store: ParameterStore) throws {
        for layer in layers {
            try quantizeWeight(layer, store.values + layer.weightOffset)
            layer.passesAll = !layer.pass.contains(0)
        }
    }

    /// dW = dŴ ⊙ pass, in place in the store's gradients (before clipping and the optimizer step).
    func maskWeightGradients(_ store: ParameterStore) {
        for layer in layers where !layer.passesAll {
            let gradient = store.gradients + layer.weightOffset
            for i in 0..<(layer.rows * layer.cols) where layer.pass[i] == 0 { gradient[i] = 0 }
        }
    }

    /// The per-tensor input scale of each layer (range / qmax), by key; empty for other schemes.
    var inputScales: [String: Float] {
        guard case .perTensor(let qmax) = scheme else { return [:] }
        return Dictionary(uniqueKeysWithValues: layers.map { ($0.key, $0.range / Float(qmax)) })
    }

    /// Sets the ranges from scales (`inputScales` of an earlier epoch).
    func setInputScales(_ scales: [String: Float]) {
        guard case .perTensor(let qmax) = scheme else { return }
        for layer in layers { if let scale = scales[layer.key] { layer.range = scale * Float(qmax) } }
    }

    // ---------------------------------------------------------------- forward / backward

    /// out (tokens, rows) = x̂ Ŵᵀ (+ bias), x̂ = the fake-quantized inp (tokens, cols); keeps x̂ and its
    /// clip mask for `backward`. `training` forwards move the observed ranges.
    func forward(_ layer: Layer, out: FloatPointer, inp: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                 tokens: Int, training: Bool) {
        let count = tokens * layer.cols
        if layer.input.count < count {
            layer.input = [Float](repeating: 0, count: count)
            layer.clipped = [UInt8](repeating: 0, count: count)
        }
        layer.tokens = tokens
        layer.input.withUnsafeMutableBufferPointer { xHat in
            layer.clipped.withUnsafeMutableBufferPointer { clipped in
                let xHat = xHat.baseAddress!, clipped = clipped.baseAddress!
                switch scheme {
                case .float:
                    xHat.update(from: inp, count: count)
                    clipped.update(repeating: 0, count: count)
                case .perRow(let qmax):
                    InputFakeQuant.forwardPerRow(out: xHat, inp: inp, rows: tokens, cols: layer.cols, qmax: qmax)
                    clipped.update(repeating: 0, count: count)
                case .perTensor(let qmax):
                    observe(layer, inp: inp, count: count, training: training)
                    let scale = layer.range / Float(qmax)
                    if scale > 0 {
                        InputFakeQuant.forwardPerTensor(out: xHat, clipped: clipped, inp: inp, count: count, scale: scale, qmax: qmax)
                    } else {
                        // Every input seen so far was zero: nothing to quantize yet.
                        xHat.update(from: inp, count: count)
                        clipped.update(repeating: 0, count: count)
                    }
                }
                layer.fakeWeight.withUnsafeBufferPointer { weight in
                    LinearLayer.forward(out: out, inp: xHat, weight: weight.baseAddress!, bias: bias, rows: tokens,
                                        inFeatures: layer.cols, outFeatures: layer.rows)
                }
            }
        }
    }

    /// The layer's backward from the last forward: dweight (rows, cols) += doutᵀ x̂ (the float weight's
    /// gradient, masked later by `maskWeightGradients`), dbias += Σ dout, dinp (tokens, cols) =
    /// (dout Ŵ) ⊙ [not clipped]. A nil pointer skips that part.
    func backward(_ layer: Layer, dinp: FloatPointer?, dweight: FloatPointer?, dbias: FloatPointer?, dout: UnsafePointer<Float>) {
        let count = layer.tokens * layer.cols
        layer.input.withUnsafeBufferPointer { xHat in
            layer.fakeWeight.withUnsafeBufferPointer { weight in
                LinearLayer.backward(dinp: dinp, dweight: dweight, dbias: dbias, dout: dout, inp: xHat.baseAddress!,
                                     weight: weight.baseAddress!, rows: layer.tokens, inFeatures: layer.cols, outFeatures: layer.rows)
            }
        }
        if let dinp, case .perTensor = scheme {
            layer.clipped.withUnsafeBufferPointer { InputFakeQuant.backward(dinp: dinp, dout: dinp, clipped: $0.baseAddress!, count: count) }
        }
    }

    private func observe(_ layer: Layer, inp: UnsafePointer<Float>, count: Int, training: Bool) {
        switch rangeMode {
        case .frozen:
            return
        case .calibrate:
            layer.range = Swift.max(layer.range, InputFakeQuant.absMax(inp, count: count))
        case .observe:
            guard training else { return }
            let largest = InputFakeQuant.absMax(inp, count: count)
            layer.range = layer.range > 0 ? momentum * layer.range + (1 - momentum) * largest : largest
        }
    }
}
