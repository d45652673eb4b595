import Foundation
import Testing
@testable import Host

@Suite("Refusing broken or lying safetensors files")
struct SafeTensorsBadInputTests {
    @Test("a truncated model file is refused, naming the file and the tensor cut off")
    func truncatedFile() throws {
        let folder = try CheckpointTempFolder()
        let whole = try Data(contentsOf: Fixtures.url("bert-tiny/model.safetensors"))
        let cut = folder.file("model.safetensors")
        try whole.prefix(whole.count - 1000).write(to: cut)
        let message = oneLineCheckpointError(naming: cut.path) { _ = try SafeTensorsFile(contentsOf: cut) }
        #expect(message.contains("lie outside") && message.contains("truncated"))
    }

    @Test("a file shorter than the 8-byte length prefix is refused as truncated")
    func shorterThanPrefix() throws {
        let folder = try CheckpointTempFolder()
        let file = folder.file("tiny.safetensors")
        try Data([1, 2, 3]).write(to: file)
        let message = oneLineCheckpointError(naming: file.path) { _ = try SafeTensorsFile(contentsOf: file) }
        #expect(message.contains("truncated: 3 bytes"))
    }

    @Test("a header length past the end of the file is refused")
    func headerLengthPastEnd() throws {
        let folder = try CheckpointTempFolder()
        let file = folder.file("liar.safetensors")
        var bytes = rawSafeTensors(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, dataBytes: 4)
        bytes.replaceSubrange(0..<8, with: withUnsafeBytes(of: UInt64(1 << 40).littleEndian) { Data($0) })
        try bytes.write(to: file)
        let message = oneLineCheckpointError(naming: file.path) { _ = try SafeTensorsFile(contentsOf: file) }
        #expect(message.contains("header length 1099511627776 runs past the end of the file"))
    }

    @Test("data offsets outside the data section are refused, naming the tensor")
    func offsetsOutsideBuffer() throws {
        let folder = try CheckpointTempFolder()
        let file = folder.file("outside.safetensors")
        try rawSafeTensors(header: #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}}"#,
                           dataBytes: 20).write(to: file)
        let message = oneLineCheckpointError(naming: file.path) { _ = try SafeTensorsFile(contentsOf: file) }
        #expect(message.contains("tensor 'b'") && message.contains("[16, 24]") && message.contains("20-byte data section"))
    }

    @Test("overlapping tensors are refused, naming both")
    func overlappingOffsets() throws {
        let folder = try CheckpointTempFolder()
        let file = folder.file("overlap.safetensors")
        try rawSafeTensors(header: #"{"first":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"second":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#,
                           dataBytes: 16).write(to: file)
        let message = oneLineCheckpointError(naming: file.path) { _ = try SafeTensorsFile(contentsOf: file) }
        #expect(message.contains("'first'") && message.contains("'second'") && message.contains("overlap"))
    }

    @Test("a shape that disagrees with the byte range is refused")
    func shapeDisagreesWithOffsets() throws {
        let folder = try CheckpointTempFolder()
        let file = folder.file("shape.safetensors")
        try rawSafeTensors(header: #"{"w":{"dtype":"F16","shape":[3,3],"data_offsets":[0,16]}}"#, dataBytes: 16).write(to: file)
        let message = oneLineCheckpointError(naming: file.path) { _ = try SafeTensorsFile(contentsOf: file) }
        #expect(message.contains("tensor 'w': shape [3, 3] of F16 needs 18 bytes, offsets give 16"))
    }

    @Test("bytes that belong to no tensor are refused, as the Python reader does")
    func gapsAndTrailingBytes() throws {
        let folder = try CheckpointTempFolder()
        let gap = folder.file("gap.safetensors")
        try rawSafeTensors(header: #"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}}"#,
                           dataBytes: 6).write(to: gap)
        #expect(oneLineCheckpointError(naming: gap.path) { _ = try SafeTensorsFile(contentsOf: gap) }.contains("bytes 2..<4"))
        let trailing = folder.file("trailing.safetensors")
        try rawSafeTensors(header: #"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}"#, dataBytes: 5).write(to: trailing)
        #expect(oneLineCheckpointError(naming: trailing.path) { _ = try SafeTensorsFile(contentsOf: trailing) }.contains("3 bytes after the last tensor"))
    }

    @Test("malformed headers are refused in one line", arguments: [
        (#"not json at all"#, "not valid JSON"),
        (#"[1, 2]"#, "not a JSON object"),
        (#"{"w":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}}"#, "unsupported dtype Q7"),
        (#"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, "not a non-negative integer"),
        (#"{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}"#, "not a non-negative integer"),
        (#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}}"#, "data_offsets must be two integers"),
        (#"{"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,4]}}"#, "impossibly large"),
        (#"{"__metadata__":{"format":5}}"#, "not a string"),
    ])
    func malformedHeaders(header: String, expected: String) throws {
        let folder = try CheckpointTempFolder()
        let file = folder.file("bad.safetensors")
        try rawSafeTensors(header: header, dataBytes: 4).write(to: file)
        let message = oneLineCheckpointError(naming: file.path) { _ = try SafeTensorsFile(contentsOf: file) }
        #expect(message.contains(expected), "\(message)")
    }
}
