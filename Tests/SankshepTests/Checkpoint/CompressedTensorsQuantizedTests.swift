import Foundation
import Testing
@testable import Host

@Suite("compressed-tensors quantized layouts")
struct CompressedTensorsQuantizedTests {
    // Two rows of 16 four-bit values and the words compressed-tensors 0.20.1's
    // pack_to_int32(values, num_bits=4) gives for them (computed with it in Python).
    static let values: [Int8] = [-8, -3, 2, 7, -4, 1, 6, -5, 0, 5, -6, -1, 4, -7, -2, 3,
                                 -5, 0, 5, -6, -1, 4, -7, -2, 3, -8, -3, 2, 7, -4, 1, 6]
    static let words: [Int32] = [1049950800, -1239649576, 1640443267, -380656373]

    @Test("4-bit values pack into int32 words exactly as compressed-tensors' pack_to_int32, and unpack back")
    func packingMatchesPython() {
        #expect(CompressedTensorsQuantized.pack(Self.values, rows: 2, cols: 16) == Self.words)
        #expect(CompressedTensorsQuantized.unpack(Self.words, rows: 2, cols: 16) == Self.values)
        // Little-endian words: byte i holds input 2i in its low nibble, 2i + 1 in its high one, as v + 8.
        let bytes = Self.words.flatMap { word in withUnsafeBytes(of: word.littleEndian) { Array($0) } }
        for (i, byte) in bytes.enumerated() {
            #expect(Int(byte & 0xF) - 8 == Int(Self.values[2 * i]) && Int(byte >> 4) - 8 == Int(Self.values[2 * i + 1]))
        }
    }

    @Test("a file in either layout reads back as float weights, without its scale tensors")
    func readsBackAsFloat() throws {
        let codes: [Int8] = [-127, 0, 5, 127, 1, -1]
        var entries = CompressedTensorsQuantized.intQuantized(module: "a", codes: codes, rows: 2, cols: 3, scales: [0.5, 0.25], inputScale: 0.125)
        let groupScales: [Float] = [0.1, -0.2, 0.3, 0.4]   // (2 rows, 2 groups of 8)
        entries += CompressedTensorsQuantized.packQuantized(module: "b", values: Self.values, rows: 2, cols: 16, scales: groupScales)
        entries.append(SafeTensorsWriter.Entry(name: "b.bias", tensor: Tensor(shape: [2], scalars: [1, 2])))
        let file = try SafeTensorsFile(bytes: try SafeTensorsWriter.encode(entries: entries), path: "ct.safetensors")
        var stateDict = try SparseBitmask.denseStateDict(file)
        try CompressedTensorsQuantized.dequantize(&stateDict, file: file)

        #expect(Set(stateDict.names) == ["a.weight", "b.weight", "b.bias"])
        #expect(stateDict["a.weight"] == Tensor(shape: [2, 3], scalars: [-63.5, 0, 2.5, 31.75, 0.25, -0.25]))
        let b = try #require(stateDict["b.weight"])
        #expect(b.shape == [2, 16])
        for (index, value) in Self.values.enumerated() {
            #expect(b.scalars[index] == Float(value) * groupScales[(index / 16) * 2 + (index % 16) / 8])
        }
    }

    @Test("a packed weight whose words disagree with its shape is refused in one line naming the file and tensor")
    func lyingShape() throws {
        var entries = CompressedTensorsQuantized.packQuantized(module: "layer", values: Self.values, rows: 2, cols: 16, scales: [1, 1])
        let index = entries.firstIndex { $0.name == "layer.weight_shape" }!
        var shape = Data()
        for value: Int64 in [2, 24] { withUnsafeBytes(of: value.littleEndian) { shape.append(contentsOf: $0) } }
        entries[index] = SafeTensorsWriter.Entry(name: "layer.weight_shape", dtype: .i64, shape: [2], bytes: shape)
        let file = try SafeTensorsFile(bytes: try SafeTensorsWriter.encode(entries: entries), path: "lying.safetensors")
        let message = oneLineCheckpointError(naming: "lying.safetensors") {
            var stateDict = StateDict()
            try CompressedTensorsQuantized.dequantize(&stateDict, file: file)
        }
        #expect(message.contains("layer.weight_packed"), "\(message)")
    }
}
