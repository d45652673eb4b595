import Foundation
import Kernels
import Testing
@testable import Host

/// The fake quantizers of quantization-aware training and their straight-through gradients.
@Suite("Fake quantization: forward as the INT8 kernels quantize, straight-through backward")
struct FakeQuantizationTests {
    /// Inputs spread over [-3, 3], so a scale of 1.5/127 clips about half of them.
    static func inputs(_ count: Int, seed: UInt64) -> [Float] {
        var generator = SeededGenerator(seed: seed)
        return generator.weights(count, in: -3...3)
    }

    @Test("per-tensor input codes are the static INT8 kernel's, and exactly the clipped inputs are marked")
    func perTensorMatchesKernel() {
        let (M, K) = (5, 37)
        let x = Self.inputs(M * K, seed: 1)
        let scale: Float = 1.5 / 127
        var xHat = [Float](repeating: 0, count: M * K)
        var clipped = [UInt8](repeating: 0, count: M * K)
        InputFakeQuant.forwardPerTensor(out: &xHat, clipped: &clipped, inp: x, count: M * K, scale: scale, qmax: 127)
        let Kp = Int(sk_int8_padded_k(Int32(K)))
        var codes = [Int8](repeating: 0, count: M * Kp)
        var rowScales = [Float](repeating: 0, count: M)
        sk_quantize_rows_int8(x, Int32(M), Int32(K), scale, &codes, &rowScales)
        var clippedCount = 0
        for m in 0..<M {
            #expect(rowScales[m] == scale)
            for k in 0..<K {
                let i = m * K + k
                #expect(xHat[i] == Float(codes[m * Kp + k]) * scale, "x[\(i)] = \(x[i])")
                let outside = abs(x[i] * (1 / scale)) > 127
                #expect((clipped[i] == 1) == outside, "x[\(i)] = \(x[i])")
                if outside { clippedCount += 1 }
            }
        }
        #expect(clippedCount > M * K / 4 && clippedCount < M * K * 3 / 4)
    }

    @Test("per-row input codes are dynamic INT8's, with each row's own scale, and an all-zero row stays zero")
    func perRowMatchesKernel() {
        let (M, K) = (4, 70)
        var x = Self.inputs(M * K, seed: 2)
        for k in 0..<K { x[2 * K + k] = 0 }
        var xHat = [Float](repeating: 0, count: M * K)
        InputFakeQuant.forwardPerRow(out: &xHat, inp: x, rows: M, cols: K, qmax: 127)
        let Kp = Int(sk_int8_padded_k(Int32(K)))
        var codes = [Int8](repeating: 0, count: M * Kp)
        var rowScales = [Float](repeating: 0, count: M)
        sk_quantize_rows_int8(x, Int32(M), Int32(K), 0, &codes, &rowScales)
        for m in 0..<M {
            for k in 0..<K { #expect(xHat[m * K + k] == Float(codes[m * Kp + k]) * rowScales[m]) }
        }
        #expect(xHat[(2 * K)..<(3 * K)].allSatisfy { $0 == 0 })
    }

    @Test("the input gradient passes straight through inside the range and is zero where the input clipped, as finite differences of the clamp say")
    func inputGradientMask() {
        let count = 200
        let x = Self.inputs(count, seed: 3)
        let scale: Float = 1.5 / 127
        var xHat = [Float](repeating: 0, count: count)
        var clipped = [UInt8](repeating: 0, count: count)
        InputFakeQuant.forwardPerTensor(out: &xHat, clipped: &clipped, inp: x, count: count, scale: scale, qmax: 127)
        var generator = SeededGenerator(seed: 4)
        let dout = generator.weights(count)
        var dinp = [Float](repeating: .nan, count: count)
        InputFakeQuant.backward(dinp: &dinp, dout: dout, clipped: clipped, count: count)
        // The straight-through estimator differentiates the clamp and takes round() as the identity.
        // Away from the clipping edges the clamp has a derivative: 1 inside, 0 outside.
        let edge: Float = 127 * scale, h: Float = 1e-3
        func clamp(_ v: Float) -> Float { Swift.min(Swift.max(v, -edge), edge) }
        for i in 0..<count where abs(abs(x[i]) - edge) > 10 * h {
            let numeric = (clamp(x[i] + h) - clamp(x[i] - h)) / (2 * h)
            #expect(abs(dinp[i] - numeric * dout[i]) <= 1e-3 * abs(dout[i]), "x = \(x[i]): \(dinp[i]) vs \(numeric * dout[i])")
        }
        // And on the clipped side the quantizer itself is flat: its finite difference is exactly 0 too.
        var plus = [Float](repeating: 0, count: count), minus = plus, ignored = clipped
        let shifted = x.map { $0 + h }, lowered = x.map { $0 - h }
        InputFakeQuant.forwardPerTensor(out: &plus, clipped: &ignored, inp: shifted, count: count, scale: scale, qmax: 127)
        InputFakeQuant.forwardPerTensor(out: &minus, clipped: &ignored, inp: lowered, count: count, scale: scale, qmax: 127)
        for i in 0..<count where abs(x[i]) > edge + 10 * h { #expect(plus[i] == minus[i] && dinp[i] == 0) }
    }

    /// One fake-quantized layer (N, K) with weights on a per-row INT8 grid made here, `pass` zero on
    /// the first row so the weight mask shows.
    static func layer(rows N: Int, cols K: Int, scheme: QATInputScheme) -> (FakeQuantization, FakeQuantization.Layer) {
        let layer = FakeQuantization.Layer(key: "dense", weightOffset: 0, rows: N, cols: K)
        let fake = FakeQuantization(layers: [layer], scheme: scheme) { layer, weight in
            for r in 0..<layer.rows {
                var largest: Float = 0
                for c in 0..<layer.cols { largest = Swift.max(largest, abs(weight[r * layer.cols + c])) }
                let step = largest / 127
                for c in 0..<layer.cols {
                    layer.fakeWeight[r * layer.cols + c] = step > 0 ? (weight[r * layer.cols + c] / step).rounded() * step : 0
                    layer.pass[r * layer.cols + c] = r == 0 ? 0 : 1
                }
            }
        }
        return (fake, layer)
    }

    @Test("a fake-quantized linear layer: dŴ and db match finite differences of the product, dx is dout·Ŵ masked, dW is dŴ masked by pass",
          arguments: [QATInputScheme.perTensor(qmax: 127), .perRow(qmax: 127)])
    func linearGradients(scheme: QATInputScheme) throws {
        let (M, K, N) = (6, 10, 4)
        var generator = SeededGenerator(seed: 5)
        let store = ParameterStore(layout: [("dense.weight", [N, K]), ("dense.bias", [N])])
        let w = generator.weights(N * K), b = generator.weights(N)
        w.withUnsafeBufferPointer { store.values.update(from: $0.baseAddress!, count: N * K) }
        b.withUnsafeBufferPointer { (store.values + N * K).update(from: $0.baseAddress!, count: N) }
        let (fake, layer) = Self.layer(rows: N, cols: K, scheme: scheme)
        try fake.refreshWeights(store)
        #expect(!layer.passesAll)
        let x = Self.inputs(M * K, seed: 6)
        if case .perTensor = scheme { fake.setInputScales(["dense": 1.5 / 127]) }
        fake.rangeMode = .frozen
        let c = generator.weights(M * N)   // loss = Σ c ⊙ y, so dL/dy = c
        func loss(_ weight: [Float], _ bias: [Float]) -> Double {
            layer.fakeWeight = weight
            var y = [Float](repeating: 0, count: M * N)
            fake.forward(layer, out: &y, inp: x, bias: bias, tokens: M, training: false)
            return zip(y, c).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
        let fakeWeight = layer.fakeWeight
        _ = loss(fakeWeight, b)
        store.zeroGradients()
        var dx = [Float](repeating: 0, count: M * K)
        fake.backward(layer, dinp: &dx, dweight: store.gradients, dbias: store.gradients + N * K, dout: c)
        // The product is linear in Ŵ and b: central differences are exact up to rounding.
        let h: Float = 1e-2
        for i in 0..<(N * K) {
            var up = fakeWeight, down = fakeWeight
            up[i] += h
            down[i] -= h
            let numeric = (loss(up, b) - loss(down, b)) / Double(2 * h)
            #expect(abs(Double(store.gradients[i]) - numeric) < 1e-3, "dŴ[\(i)]")
        }
        for j in 0..<N {
            var up = b, down = b
            up[j] += h
            down[j] -= h
            let numeric = (loss(fakeWeight, up) - loss(fakeWeight, down)) / Double(2 * h)
            #expect(abs(Double(store.gradients[N * K + j]) - numeric) < 1e-3, "db[\(j)]")
        }
        layer.fakeWeight = fakeWeight
        // dx = (c · Ŵ) ⊙ [not clipped]; nothing clips per row.
        var xHat = [Float](repeating: 0, count: M * K), clipped = [UInt8](repeating: 0, count: M * K)
        if case .perTensor = scheme {
            InputFakeQuant.forwardPerTensor(out: &xHat, clipped: &clipped, inp: x, count: M * K, scale: 1.5 / 127, qmax: 127)
            #expect(clipped.contains(1))
        }
        for m in 0..<M {
            for k in 0..<K {
                var expected: Float = 0
                for n in 0..<N { expected += c[m * N + n] * fakeWeight[n * K + k] }
                if clipped[m * K + k] == 1 { expected = 0 }
                #expect(abs(dx[m * K + k] - expected) < 1e-5)
            }
        }
        // The weight's own gradient: dŴ where pass is 1, zero on the masked first row.
        let dFake = Array(UnsafeBufferPointer(start: store.gradients, count: N * K))
        fake.maskWeightGradients(store)
        for i in 0..<(N * K) { #expect(store.gradients[i] == (i < K ? 0 : dFake[i])) }
    }

    @Test("input ranges: calibration takes the largest |x|, training forwards move them by the moving average, frozen and inference forwards leave them")
    func rangeObservers() throws {
        let (fake, layer) = Self.layer(rows: 2, cols: 3, scheme: .perTensor(qmax: 127))
        let store = ParameterStore(layout: [("dense.weight", [2, 3])])
        try fake.refreshWeights(store)
        var y = [Float](repeating: 0, count: 4)
        func run(_ x: [Float], training: Bool) { fake.forward(layer, out: &y, inp: x, bias: nil, tokens: 2, training: training) }
        fake.rangeMode = .calibrate
        run([0.5, -2, 1, 0, 0, 0], training: false)
        run([0.1, 0.2, -0.3, 1, 1, 1], training: false)
        #expect(layer.range == 2)
        fake.rangeMode = .observe
        run([4, 0, 0, 0, 0, 0], training: false)
        #expect(layer.range == 2)
        run([4, 0, 0, 0, 0, 0], training: true)
        let momentum: Float = 0.99
        #expect(layer.range == momentum * 2 + (1 - momentum) * 4)
        let observed = layer.range
        fake.rangeMode = .frozen
        run([40, 0, 0, 0, 0, 0], training: true)
        #expect(layer.range == observed)
        #expect(fake.inputScales == ["dense": observed / 127])
    }

    @Test("with fake quantization on, the network's gradients downstream of every quantizer match finite differences")
    func networkGradientsWhereDefined() throws {
        let model = SequenceClassifier(shape: GradientCheckTests.tinyBert, head: .bertPooler, numLabels: 2)
        initializeParameters(model.store, names: model.names, head: model.head, seed: 7, initializerRange: 0.4)
        let fake = Self.networkFakeQuantization(model, scheme: .perRow(qmax: 127)) { layer, weight in
            for i in 0..<(layer.rows * layer.cols) { layer.fakeWeight[i] = (weight[i] * 64).rounded() / 64 }
        }
        model.fakeQuantization = fake
        try fake.refreshWeights(model.store)
        model.store.zeroGradients()
        _ = try GradientCheckTests.loss(model, training: false, step: 0)
        model.backward(dLogits: GradientCheckTests.lossWeights)
        // Parameters no quantizer sits after: the last layer's output LayerNorm and bias, and the head.
        let last = model.names.layers[model.shape.layers - 1]
        let names = [last.outputNorm + ".weight", last.outputNorm + ".bias", last.ffnOut + ".bias",
                     model.names.headHidden + ".weight", model.names.headOutput + ".weight", model.names.headOutput + ".bias"]
        let epsilon: Float = 1e-3
        for name in names {
            let view = try #require(model.store.view(named: name))
            let values = model.store.values + view.offset
            for i in stride(from: 0, to: view.count, by: Swift.max(1, view.count / 5)) {
                let saved = values[i]
                values[i] = saved + epsilon
                let plus = try GradientCheckTests.loss(model, training: false, step: 0)
                values[i] = saved - epsilon
                let minus = try GradientCheckTests.loss(model, training: false, step: 0)
                values[i] = saved
                let numeric = (plus - minus) / Double(2 * epsilon)
                let analytic = Double(model.store.gradients[view.offset + i])
                #expect(abs(analytic - numeric) <= 2e-3 + 2e-2 * abs(numeric), "\(name)[\(i)]: \(analytic) vs \(numeric)")
            }
        }
    }

    @Test("routed through an identity fake quantizer with float inputs, every gradient is the float network's, bit for bit")
    func identityQuantizerChangesNothing() throws {
        func model() -> SequenceClassifier {
            let model = SequenceClassifier(shape: GradientCheckTests.tinyBert, head: .bertPooler, numLabels: 2)
            initializeParameters(model.store, names: model.names, head: model.head, seed: 7, initializerRange: 0.4)
            return model
        }
        let plain = model(), routed = model()
        let fake = Self.networkFakeQuantization(routed, scheme: .float) { layer, weight in
            for i in 0..<(layer.rows * layer.cols) { layer.fakeWeight[i] = weight[i] }
        }
        routed.fakeQuantization = fake
        try fake.refreshWeights(routed.store)
        for network in [plain, routed] {
            network.store.zeroGradients()
            _ = try GradientCheckTests.loss(network, training: true, step: 2)
            network.backward(dLogits: GradientCheckTests.lossWeights)
        }
        #expect(Array(UnsafeBufferPointer(start: plain.store.gradients, count: plain.store.count))
                == Array(UnsafeBufferPointer(start: routed.store.gradients, count: routed.store.count)))
    }

    /// A fake quantizer for every encoder linear layer of `model`.
    static func networkFakeQuantization(_ model: SequenceClassifier, scheme: QATInputScheme,
                                        weights: @escaping FakeQuantization.WeightQuantizer) -> FakeQuantization {
        let layers = EncoderQuantizer.linearGroups(model.names).map { group in
            FakeQuantization.Layer(key: group.weights.map { String($0.dropLast(7)) }.joined(separator: "|"),
                                   weightOffset: model.store.view(named: group.weights[0])!.offset,
                                   rows: group.weights.reduce(0) { $0 + model.store.view(named: $1)!.shape[0] },
                                   cols: model.store.view(named: group.weights[0])!.shape[1])
        }
        return FakeQuantization(layers: layers, scheme: scheme, quantizeWeight: weights)
    }
}
