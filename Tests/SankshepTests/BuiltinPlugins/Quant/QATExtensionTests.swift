import Foundation
import PluginAPI
import Testing
@testable import Host

/// The Quant plugin's "sankshep.qat/1": what static and int4 offer, and that conversion is exact.
@Suite("Quant plugin: quantization-aware training extension")
struct QuantPluginQATTests {
    @Test("static and int4 offer quantization-aware training with their input schemes; dynamic and fp16 do not")
    func whoOffersIt() throws {
        let registry = try PluginTestSupport.builtInRegistry()
        #expect(try registry.quantizer(named: "static").qatInputScheme() == .perTensor(qmax: 127))
        #expect(try registry.quantizer(named: "int4").qatInputScheme() == .perRow(qmax: 127))
        for name in ["dynamic", "fp16"] {
            let method = try registry.quantizer(named: name)
            #expect(!method.offersQAT)
            let error = #expect(throws: PluginError.self) { _ = try method.qatInputScheme() }
            #expect(error?.description.contains("'\(name)'") == true && error?.description.contains(SK_EXT_QAT) == true)
        }
    }

    /// (method, options, input scale): static with a scale that clips some inputs, int4 per group size.
    static let cases: [(String, [String: String], Float)] = [
        ("static", [:], 0.6 / 127), ("int4", ["group_size": "32"], 0), ("int4", ["group_size": "64"], 0), ("int4", ["group_size": "128"], 0),
    ]

    @Test("fake_quantize gives bit for bit the weight the converted layer holds, and the converted layer's outputs are the fake-quantized forward's",
          arguments: 0..<4)
    func conversionIsExact(index: Int) throws {
        let (name, options, scale) = Self.cases[index]
        let registry = try PluginTestSupport.builtInRegistry()
        let method = try registry.quantizer(named: name)
        let scheme = try method.qatInputScheme()
        let linear = LinearCase(rows: 48, cols: 256, tokens: 7, seed: 11)
        let layer = FakeQuantization.Layer(key: "dense", weightOffset: 0, rows: linear.rows, cols: linear.cols)
        let view = { (data: UnsafeBufferPointer<Float>, bias: UnsafeBufferPointer<Float>?) in
            WeightView(data: data, rows: linear.rows, cols: linear.cols, layerName: "encoder.layer.0.dense", layerKind: .ffn, bias: bias)
        }
        try linear.weight.withUnsafeBufferPointer { w in
            try method.fakeQuantize(weight: view(w, nil), options: options, into: &layer.fakeWeight, pass: &layer.pass)
        }
        #expect(layer.pass.allSatisfy { $0 == 1 })
        let converted = try linear.weight.withUnsafeBufferPointer { w in
            try linear.bias.withUnsafeBufferPointer { b in try method.convert(weight: view(w, b), inputScale: scale, options: options) }
        }
        #expect(try converted.dequantize() == layer.fakeWeight)
        // The same grid `create` makes from the same weight (post-training quantization).
        let stats = name == "static" ? linear.calibrationStats : nil
        #expect(try linear.quantize(method, options: options, stats: stats).dequantize() == layer.fakeWeight)

        let fake = FakeQuantization(layers: [layer], scheme: scheme) { _, _ in }
        fake.setInputScales(["dense": scale])
        fake.rangeMode = .frozen
        var expected = [Float](repeating: 0, count: linear.tokens * linear.rows)
        fake.forward(layer, out: &expected, inp: linear.x, bias: linear.bias, tokens: linear.tokens, training: false)
        let outputs = try converted.forward(linear.x, tokens: linear.tokens)
        // Integer sums scaled once in the plugin, float products in the fake forward: equal up to rounding.
        #expect(relativeError(outputs, expected) < 1e-5, "\(name) \(options): \(relativeError(outputs, expected))")
    }

    @Test("static's convert refuses an input scale that is not positive, in one line naming the layer")
    func staticNeedsAScale() throws {
        let method = try PluginTestSupport.builtInRegistry().quantizer(named: "static")
        let linear = LinearCase(rows: 4, cols: 32, tokens: 1, seed: 1)
        let error = #expect(throws: PluginError.self) {
            _ = try linear.weight.withUnsafeBufferPointer { w in
                try method.convert(weight: WeightView(data: w, rows: 4, cols: 32, layerName: "layer.7"), inputScale: 0, options: [:])
            }
        }
        #expect(error?.description.contains("layer.7: input scale 0.0") == true && error?.description.contains("\n") == false)
    }
}
