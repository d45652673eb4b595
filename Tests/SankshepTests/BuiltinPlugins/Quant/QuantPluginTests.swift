import Foundation
import PluginAPI
import Testing
@testable import Host

/// A float linear layer and a batch to run through it, all from one seed.
struct LinearCase {
    let rows: Int, cols: Int, tokens: Int
    let weight: [Float], bias: [Float], x: [Float]

    init(rows: Int, cols: Int, tokens: Int, seed: UInt64, spread: Float = 0.1) {
        var generator = SeededGenerator(seed: seed)
        self.rows = rows
        self.cols = cols
        self.tokens = tokens
        weight = generator.weights(rows * cols, in: -spread...spread)
        bias = generator.weights(rows, in: -0.5...0.5)
        x = generator.weights(tokens * cols, in: -1...1)
    }

    /// y = x Wᵀ + b in double precision.
    var exact: [Float] {
        (0..<tokens).flatMap { t in
            (0..<rows).map { r in
                var sum = Double(bias[r])
                for c in 0..<cols { sum += Double(x[t * cols + c]) * Double(weight[r * cols + c]) }
                return Float(sum)
            }
        }
    }

    func quantize(_ method: QuantizerMethod, options: [String: String] = [:], stats: ActivationStats? = nil,
                  withBias: Bool = true) throws -> QuantizedLayer {
        try weight.withUnsafeBufferPointer { w in
            try bias.withUnsafeBufferPointer { b in
                try method.quantize(weight: WeightView(data: w, rows: rows, cols: cols, layerName: "encoder.layer.0.dense.weight",
                                                       layerKind: .ffn, bias: withBias ? b : nil),
                                    options: options, stats: stats)
            }
        }
    }

    /// Statistics of `x` as the host would gather them for static quantization.
    var calibrationStats: ActivationStats {
        let absMax = (0..<cols).map { c in (0..<tokens).map { abs(x[$0 * cols + c]) }.max()! }
        return ActivationStats(features: cols, tokens: tokens, inputAbsMax: absMax, samples: x)
    }
}

/// ‖a - b‖ / ‖b‖ over all values.
func relativeError(_ a: [Float], _ b: [Float]) -> Double {
    var difference = 0.0, norm = 0.0
    for i in a.indices {
        difference += Double(a[i] - b[i]) * Double(a[i] - b[i])
        norm += Double(b[i]) * Double(b[i])
    }
    return (difference / norm).squareRoot()
}

@Suite("Quant plugin: dynamic, static, int4, fp16")
struct QuantPluginTests {
    let registry: PluginRegistry
    init() throws { registry = try PluginTestSupport.builtInRegistry() }

    func method(_ name: String) throws -> QuantizerMethod { try registry.quantizer(named: name) }

    @Test("the plugin registers the four quantizers with their option schemas")
    func registersMethods() throws {
        for name in ["dynamic", "static", "int4", "fp16"] {
            let quantizer = try method(name)
            #expect(quantizer.method.kind == .quantizer)
            #expect(quantizer.method.pluginName == "sankshep-quant")
            #expect(quantizer.formatVersion == "1")
        }
        #expect(try method("dynamic").method.options.isEmpty)
        #expect(try method("fp16").method.options.isEmpty)
        #expect(try method("int4").method.options.map(\.summary) == ["group_size=32 (32|64|128)"])
        #expect(try method("static").method.options.map(\.summary) == ["observer=minmax (minmax|percentile|mse)", "percentile=99.99 (float)"])
        #expect(try method("static").neededStatistics == UInt32(SK_STAT_INPUT_ABS_MAX | SK_STAT_INPUT_SAMPLES))
        #expect(try method("dynamic").neededStatistics == 0)
    }

    @Test("each method's forward stays close to the float layer on random data",
          arguments: [("dynamic", 0.02), ("static", 0.02), ("int4", 0.10), ("fp16", 1e-3)])
    func forwardIsClose(name: String, bound: Double) throws {
        let layer = LinearCase(rows: 67, cols: 256, tokens: 13, seed: 7)
        let stats = name == "static" ? layer.calibrationStats : nil
        let quantized = try layer.quantize(method(name), stats: stats)
        let error = relativeError(try quantized.forward(layer.x, tokens: layer.tokens), layer.exact)
        #expect(error <= bound, "\(name): relative error \(error)")
        #expect(error > 0, "\(name): a quantized layer that is exact is suspicious")
    }

    @Test("int4 is close for every group size, and larger groups save more bytes",
          arguments: ["32", "64", "128"])
    func int4GroupSizes(group: String) throws {
        let layer = LinearCase(rows: 40, cols: 384, tokens: 5, seed: 8)
        let quantized = try layer.quantize(method("int4"), options: ["group_size": group])
        #expect(relativeError(try quantized.forward(layer.x, tokens: layer.tokens), layer.exact) <= 0.10)
        let groups = Int(group)!
        // Codes two per byte, one int8 scale per group, one float scale per channel, the bias.
        #expect(quantized.savedBytes == 40 * 384 / 2 + 40 * (384 / groups) + 40 * 4 + 40 * 4)
        let loaded = try method("int4").load(blobs: try quantized.serialize(), formatVersion: "1", rows: 40, cols: 384)
        #expect(try loaded.forward(layer.x, tokens: 5) == quantized.forward(layer.x, tokens: 5), "group size \(group) read back")
    }

    @Test("serialize then deserialize gives identical outputs, with or without bias",
          arguments: ["dynamic", "static", "int4", "fp16"])
    func saveAndLoad(name: String) throws {
        let layer = LinearCase(rows: 33, cols: 128, tokens: 6, seed: 9)
        let quantizer = try method(name)
        for withBias in [true, false] {
            let stats = name == "static" ? layer.calibrationStats : nil
            let quantized = try layer.quantize(quantizer, options: name == "int4" ? ["group_size": "64"] : [:],
                                               stats: stats, withBias: withBias)
            let blobs = try quantized.serialize()
            #expect(blobs.values.reduce(0) { $0 + $1.count } == quantized.savedBytes)
            #expect(blobs["bias"]?.count == (withBias ? 33 * 4 : 0))
            let loaded = try quantizer.load(blobs: blobs, formatVersion: quantizer.formatVersion, rows: 33, cols: 128)
            #expect(try loaded.forward(layer.x, tokens: 6) == quantized.forward(layer.x, tokens: 6))
            #expect(try loaded.serialize() == blobs)
        }
    }

    @Test("the saved blobs are named for what they hold")
    func blobNames() throws {
        let layer = LinearCase(rows: 8, cols: 64, tokens: 3, seed: 10)
        #expect(Set(try layer.quantize(method("dynamic")).serialize().keys) == ["weight.int8", "weight.scale", "bias"])
        #expect(Set(try layer.quantize(method("static"), stats: layer.calibrationStats).serialize().keys)
                == ["weight.int8", "weight.scale", "bias", "input.scale"])
        #expect(Set(try layer.quantize(method("int4")).serialize().keys) == ["weight.q4", "weight.group_scale", "weight.scale", "bias"])
        #expect(Set(try layer.quantize(method("fp16")).serialize().keys) == ["weight.f16", "bias"])
    }

    @Test("saved bytes of a 768 x 768 layer with bias against FP32: INT8 <= 0.28, INT4 <= 0.16, FP16 <= 0.52")
    func savedSizeRatios() throws {
        let layer = LinearCase(rows: 768, cols: 768, tokens: 4, seed: 11)
        let fp32 = Double((768 * 768 + 768) * 4)
        let ratios = try [("dynamic", 0.28), ("static", 0.28), ("int4", 0.16), ("fp16", 0.52)].map { name, bound in
            let stats = name == "static" ? layer.calibrationStats : nil
            let ratio = Double(try layer.quantize(method(name), stats: stats).savedBytes) / fp32
            #expect(ratio <= bound, "\(name): \(ratio) of FP32")
            return ratio
        }
        #expect(ratios[0] > 0.25 && ratios[2] > 0.125 && ratios[3] > 0.5, "sizes below the bits they hold: \(ratios)")
    }

    @Test("group_size=48 is refused in one line naming the option and the choices")
    func groupSizeRefused() throws {
        let layer = LinearCase(rows: 4, cols: 96, tokens: 1, seed: 12)
        let error = try #require(throws: PluginError.self) { try layer.quantize(method("int4"), options: ["group_size": "48"]) }
        #expect(error.message == "option 'group_size' of method 'int4': '48' is not one of 32, 64, 128")
        #expect(!error.message.contains("\n"))
    }

    @Test("a weight whose input count is not a multiple of the group is refused naming the layer")
    func int4ShapeRefused() throws {
        let layer = LinearCase(rows: 4, cols: 80, tokens: 1, seed: 13)
        let error = try #require(throws: PluginError.self) { try layer.quantize(method("int4"), options: ["group_size": "64"]) }
        #expect(error.message.hasSuffix("encoder.layer.0.dense.weight: 80 input features are not a multiple of group_size 64"))
    }

    @Test("a weight that is not a finite number is refused naming its position")
    func nonFiniteWeightRefused() throws {
        var generator = SeededGenerator(seed: 14)
        var w = generator.weights(6 * 32)
        w[2 * 32 + 5] = .nan
        for name in ["dynamic", "int4", "fp16"] {
            let error = try #require(throws: PluginError.self) {
                try w.withUnsafeBufferPointer { try method(name).quantize(weight: WeightView(data: $0, rows: 6, cols: 32, layerName: "q")) }
            }
            #expect(error.message.hasSuffix("q: weight at row 2, column 5 is nan, not a finite number"), "\(name): \(error.message)")
        }
    }

    @Test("static: a fixed calibrated scale, so inputs beyond the calibration range clip")
    func staticScaleIsFixed() throws {
        let layer = LinearCase(rows: 16, cols: 64, tokens: 8, seed: 15)
        let staticLayer = try layer.quantize(method("static"), stats: layer.calibrationStats)
        let dynamicLayer = try layer.quantize(method("dynamic"))
        let scale = try staticLayer.serialize()["input.scale"]!.withUnsafeBytes { $0.load(as: Float.self) }
        let largest = layer.x.map { abs($0) }.max()!
        #expect(scale == largest / 127)
        // Ten times the calibrated range: dynamic follows, static saturates at ±127 · scale.
        let loud = layer.x.map { $0 * 10 }
        let loudExact = LinearCase.scaled(layer, by: 10)
        #expect(relativeError(try dynamicLayer.forward(loud, tokens: 8), loudExact) < 0.02)
        #expect(relativeError(try staticLayer.forward(loud, tokens: 8), loudExact) > 0.2)
    }

    /// The static scale a layer calibrated on `stats` with `options` chose.
    func staticScale(_ layer: LinearCase, _ stats: ActivationStats, _ options: [String: String]) throws -> Float {
        try layer.quantize(method("static"), options: options, stats: stats).serialize()["input.scale"]!
            .withUnsafeBytes { $0.load(as: Float.self) }
    }

    @Test("static: the percentile observer clips a rare outlier that min-max keeps, and is more accurate for it")
    func percentileClipsOutliers() throws {
        var generator = SeededGenerator(seed: 16)
        let (rows, cols, tokens) = (24, 64, 512)
        var calibration = generator.weights(tokens * cols, in: -1...1)
        calibration[77] = 40   // one outlier among 32,768 values
        let layer = LinearCase(rows: rows, cols: cols, tokens: 1, seed: 17)
        let absMax = (0..<cols).map { c in (0..<tokens).map { abs(calibration[$0 * cols + c]) }.max()! }
        let stats = ActivationStats(features: cols, tokens: tokens, inputAbsMax: absMax, samples: calibration)
        #expect(try staticScale(layer, stats, ["observer": "minmax"]) == 40 / 127)
        let percentile = try staticScale(layer, stats, ["observer": "percentile", "percentile": "99.9"])
        // The 99.9th percentile of |U(-1, 1)| is 0.999.
        #expect(abs(percentile * 127 - 0.999) < 0.01, "percentile threshold \(percentile * 127)")
        // On inputs like the calibration data the clipped scale is far more accurate than min-max.
        let typical = LinearCase(rows: rows, cols: cols, tokens: 32, seed: 18)
        func error(_ options: [String: String]) throws -> Double {
            let quantized = try LinearCase.with(typical, weight: layer.weight, bias: layer.bias)
                .quantize(method("static"), options: options, stats: stats)
            return relativeError(try quantized.forward(typical.x, tokens: 32), LinearCase.exact(typical.x, layer, tokens: 32))
        }
        #expect(try error(["observer": "percentile", "percentile": "99.9"]) < error(["observer": "minmax"]) / 3)
    }

    @Test("static: the MSE observer's threshold has the least quantization error on the samples among other choices")
    func mseMinimisesError() throws {
        // Heavy-tailed inputs (Laplace, b = 1), as transformer activations tend to be.
        var generator = SeededGenerator(seed: 22)
        let (cols, tokens) = (64, 512)
        let calibration: [Float] = (0..<(cols * tokens)).map { _ in
            let u = Float.random(in: Float.ulpOfOne...1, using: &generator)
            return (Bool.random(using: &generator) ? 1 : -1) * -log(u)
        }
        let layer = LinearCase(rows: 8, cols: cols, tokens: 1, seed: 23)
        let absMax = (0..<cols).map { c in (0..<tokens).map { abs(calibration[$0 * cols + c]) }.max()! }
        let stats = ActivationStats(features: cols, tokens: tokens, inputAbsMax: absMax, samples: calibration)
        /// Σ (x - dequantize(quantize(x)))² over the samples for a clipping threshold t.
        func squaredError(_ t: Float) -> Double {
            let step = Double(t) / 127
            return calibration.reduce(0.0) { sum, x in
                let q = max(-127, min(127, (Double(x) / step).rounded())) * step
                return sum + (Double(x) - q) * (Double(x) - q)
            }
        }
        let largest = absMax.max()!
        let mse = try staticScale(layer, stats, ["observer": "mse"]) * 127
        #expect(mse < largest, "mse kept the whole range \(largest)")
        let others = [largest, 0.9 * largest, 0.8 * largest, 0.6 * largest, 0.4 * largest,
                      try staticScale(layer, stats, ["observer": "percentile", "percentile": "99.99"]) * 127]
        for other in others {
            #expect(squaredError(mse) <= squaredError(other) * 1.01, "mse threshold \(mse) against \(other)")
        }
    }

    @Test("static without calibration statistics is refused naming the layer")
    func staticNeedsStats() throws {
        let layer = LinearCase(rows: 4, cols: 32, tokens: 2, seed: 19)
        let error = try #require(throws: PluginError.self) { try layer.quantize(method("static")) }
        #expect(error.message.contains("encoder.layer.0.dense.weight"))
        let zeros = ActivationStats(features: 32, tokens: 2, inputAbsMax: [Float](repeating: 0, count: 32),
                                    samples: [Float](repeating: 0, count: 64))
        let zeroError = try #require(throws: PluginError.self) { try layer.quantize(method("static"), stats: zeros) }
        #expect(zeroError.message.hasSuffix("encoder.layer.0.dense.weight: every calibration input is zero, so no static scale can be chosen"))
    }

    @Test("loading refuses another format version, a missing blob and a blob of the wrong size, each in one line")
    func loadErrors() throws {
        let layer = LinearCase(rows: 5, cols: 64, tokens: 1, seed: 20)
        let dynamic = try method("dynamic")
        let blobs = try layer.quantize(dynamic).serialize()
        let version = try #require(throws: PluginError.self) { try dynamic.load(blobs: blobs, formatVersion: "7", rows: 5, cols: 64) }
        #expect(version.message.hasSuffix("dynamic layer (5 x 64): saved in format version '7', this plugin reads version 1"))
        var missing = blobs
        missing["weight.scale"] = nil
        let missingError = try #require(throws: PluginError.self) { try dynamic.load(blobs: missing, formatVersion: "1", rows: 5, cols: 64) }
        #expect(missingError.message.hasSuffix("no blob named 'weight.scale' was saved"))
        let wrongShape = try #require(throws: PluginError.self) { try dynamic.load(blobs: blobs, formatVersion: "1", rows: 5, cols: 32) }
        #expect(wrongShape.message.hasSuffix("dynamic layer (5 x 32): blob 'weight.int8' has 320 bytes, expected 160"))
        let int4 = try method("int4")
        var int4Blobs = try layer.quantize(int4).serialize()
        int4Blobs["weight.group_scale"] = [Int8](repeating: 1, count: 5 * 3).map { UInt8(bitPattern: $0) }
        let group = try #require(throws: PluginError.self) { try int4.load(blobs: int4Blobs, formatVersion: "1", rows: 5, cols: 64) }
        #expect(group.message.hasSuffix("int4 layer (5 x 64): blob 'weight.group_scale' has 15 bytes, not one scale per 32, 64 or 128 inputs of each row"))
        for error in [version, missingError, wrongShape, group] { #expect(!error.message.contains("\n")) }
    }

    @Test("batches of different sizes through one layer give the same rows as one at a time",
          arguments: ["dynamic", "static", "int4", "fp16"])
    func batchesAgreeWithSingleRows(name: String) throws {
        let layer = LinearCase(rows: 19, cols: 96, tokens: 9, seed: 21)
        let quantized = try layer.quantize(method(name), stats: name == "static" ? layer.calibrationStats : nil)
        let small = try quantized.forward(Array(layer.x[0 ..< 2 * 96]), tokens: 2)
        let all = try quantized.forward(layer.x, tokens: 9)
        #expect(Array(all[0 ..< 2 * 19]) == small)
        for t in [0, 4, 8] {
            let row = try quantized.forward(Array(layer.x[t * 96 ..< (t + 1) * 96]), tokens: 1)
            for r in 0..<19 { #expect(abs(row[r] - all[t * 19 + r]) <= 1e-5 * max(1, abs(row[r]))) }
        }
    }
}

extension LinearCase {
    init(rows: Int, cols: Int, tokens: Int, weight: [Float], bias: [Float], x: [Float]) {
        self.rows = rows
        self.cols = cols
        self.tokens = tokens
        self.weight = weight
        self.bias = bias
        self.x = x
    }

    static func with(_ other: LinearCase, weight: [Float], bias: [Float]) -> LinearCase {
        LinearCase(rows: bias.count, cols: other.cols, tokens: other.tokens, weight: weight, bias: bias, x: other.x)
    }

    static func scaled(_ layer: LinearCase, by factor: Float) -> [Float] {
        LinearCase(rows: layer.rows, cols: layer.cols, tokens: layer.tokens, weight: layer.weight, bias: layer.bias,
                   x: layer.x.map { $0 * factor }).exact
    }

    static func exact(_ x: [Float], _ layer: LinearCase, tokens: Int) -> [Float] {
        LinearCase(rows: layer.rows, cols: layer.cols, tokens: tokens, weight: layer.weight, bias: layer.bias, x: x).exact
    }
}
