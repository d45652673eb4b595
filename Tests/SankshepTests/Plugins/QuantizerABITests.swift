import Foundation
import Testing
@testable import Host

/// The quantizer half of the ABI, driven through a small C quantizer compiled at test time.
@Suite("Quantizer ABI")
struct QuantizerABITests {
    let quantizer: QuantizerMethod
    let library: String

    init() throws {
        let folder = try PluginTestSupport.makeFolder()
        library = try PluginTestSupport.compile(sourceFile: Fixtures.url("plugins/int8_rows_quantizer.c").path,
                                                name: "int8_rows", in: folder)
        quantizer = try PluginRegistry(searchPath: PluginSearchPath(explicit: [library], environment: nil, executableFolder: nil))
            .quantizer(named: "int8-rows")
    }

    @Test("a quantized layer runs forward close to the float layer and reports its saved size")
    func quantizeAndRun() throws {
        var generator = SeededGenerator(seed: 21)
        let (rows, cols, tokens) = (13, 29, 5)
        let w = generator.weights(rows * cols), b = generator.weights(rows), x = generator.weights(tokens * cols)
        let layer = try w.withUnsafeBufferPointer { w in
            try b.withUnsafeBufferPointer { b in
                try quantizer.quantize(weight: WeightView(data: w, rows: rows, cols: cols, layerName: "dense", bias: b))
            }
        }
        let y = try layer.forward(x, tokens: tokens)
        for t in 0..<tokens {
            for r in 0..<rows {
                let exact = (0..<cols).reduce(b[r]) { $0 + x[t * cols + $1] * w[r * cols + $1] }
                #expect(abs(y[t * rows + r] - exact) < 0.05)
            }
        }
        #expect(layer.savedBytes == rows * cols + 2 * rows * 4)
    }

    @Test("serialize then load through the plugin gives identical outputs; the format tag is checked")
    func saveAndLoad() throws {
        var generator = SeededGenerator(seed: 22)
        let (rows, cols) = (7, 10)
        let w = generator.weights(rows * cols), x = generator.weights(3 * cols)
        let layer = try w.withUnsafeBufferPointer { try quantizer.quantize(weight: WeightView(data: $0, rows: rows, cols: cols)) }
        let blobs = try layer.serialize()
        #expect(Set(blobs.keys) == ["qweight", "scales"])
        #expect(quantizer.formatVersion == "1")
        let loaded = try quantizer.load(blobs: blobs, formatVersion: quantizer.formatVersion, rows: rows, cols: cols)
        #expect(try loaded.forward(x, tokens: 3) == layer.forward(x, tokens: 3))

        let wrongTag = try #require(throws: PluginError.self) {
            try quantizer.load(blobs: blobs, formatVersion: "2", rows: rows, cols: cols)
        }
        #expect(wrongTag.message == "quantizer 'int8-rows' (\(library)): int8-rows: cannot read format version other than 1")
        let missing = try #require(throws: PluginError.self) {
            try quantizer.load(blobs: ["scales": blobs["scales"]!], formatVersion: "1", rows: rows, cols: cols)
        }
        #expect(missing.message == "quantizer 'int8-rows' (\(library)): no blob named 'qweight' was saved")
    }
}
