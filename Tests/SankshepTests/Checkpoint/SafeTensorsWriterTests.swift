import Foundation
import Testing
@testable import Host

@Suite("Writing safetensors files")
struct SafeTensorsWriterTests {
    @Test("a model file written back reads back bit for bit, metadata included")
    func roundTripIsExact() throws {
        let folder = try CheckpointTempFolder()
        let original = try SafeTensorsFile(contentsOf: Fixtures.url("bert-tiny/model.safetensors"))
        let tensors = try original.names.map { ($0, try original.tensor(named: $0)) }
        let copy = folder.file("copy.safetensors")
        try SafeTensorsWriter.write(tensors, metadata: ["format": "pt", "stage": "baseline"], to: copy)

        let reread = try SafeTensorsFile(contentsOf: copy)
        #expect(reread.names.sorted() == original.names.sorted())
        #expect(reread.metadata == ["format": "pt", "stage": "baseline"])
        for name in original.names {
            let a = try original.tensor(named: name), b = try reread.tensor(named: name)
            #expect(a.shape == b.shape)
            #expect(a.scalars.map(\.bitPattern) == b.scalars.map(\.bitPattern), "\(name) changed")
        }
    }

    @Test("raw entries keep their dtype and bytes, and every tensor starts aligned to its element size")
    func rawEntriesAndAlignment() throws {
        let int8 = Data([0x80, 0x7F, 0x01])
        let half = Data([0x00, 0x3C, 0x00, 0xC0])   // 1.0, -2.0 in float16
        let entries = [
            SafeTensorsWriter.Entry(name: "q.weight", dtype: .i8, shape: [3], bytes: int8),
            SafeTensorsWriter.Entry(name: "q.half", dtype: .f16, shape: [2], bytes: half),
            SafeTensorsWriter.Entry(name: "q.scale", tensor: Tensor(shape: [1, 2], scalars: [0.5, -3.25])),
            SafeTensorsWriter.Entry(name: "q.zero", dtype: .u8, shape: [0], bytes: Data()),
        ]
        let data = try SafeTensorsWriter.encode(entries: entries, metadata: ["quant_method": "dynamic"])
        let headerLength = data.prefix(8).withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        #expect(headerLength % 8 == 0)
        let file = try SafeTensorsFile(bytes: data, path: "memory")
        for entry in file.entries { #expect((8 + headerLength + entry.range.lowerBound) % entry.dtype.byteSize == 0, "\(entry.name) misaligned") }
        #expect(file.entry(named: "q.weight")?.dtype == .i8)
        #expect(file.rawBytes(of: file.entry(named: "q.weight")!) == int8)
        #expect(try file.tensor(named: "q.half").scalars == [1, -2])
        #expect(try file.tensor(named: "q.scale") == Tensor(shape: [1, 2], scalars: [0.5, -3.25]))
        #expect(file.entry(named: "q.zero")?.shape == [0])
        #expect(file.metadata["quant_method"] == "dynamic")
        // Kept for a check with the Python `safetensors` reader when SANKSHEP_EXPORT_DIR is set.
        if let keep = ProcessInfo.processInfo.environment["SANKSHEP_EXPORT_DIR"] {
            try SafeTensorsWriter.write(entries: entries, metadata: ["quant_method": "dynamic"], to: URL(fileURLWithPath: keep).appendingPathComponent("mixed-dtypes.safetensors"))
        }
    }

    @Test("entries whose bytes do not match their shape, or that repeat a name, are refused")
    func inconsistentEntries() throws {
        let folder = try CheckpointTempFolder()
        let target = folder.file("out.safetensors")
        let short = SafeTensorsWriter.Entry(name: "w", dtype: .f16, shape: [3], bytes: Data(count: 4))
        #expect(oneLineCheckpointError(naming: target.path) { try SafeTensorsWriter.write(entries: [short], to: target) }
            .contains("tensor 'w': shape [3] of F16 needs 6 bytes, got 4"))
        let one = SafeTensorsWriter.Entry(name: "w", tensor: Tensor(zeros: [1]))
        #expect(oneLineCheckpointError(naming: target.path) { try SafeTensorsWriter.write(entries: [one, one], to: target) }
            .contains("given twice"))
        #expect(try folder.contents().isEmpty, "a refused write leaves nothing behind")
    }
}
