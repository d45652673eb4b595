import Foundation
import Testing
import ZIPFoundation
@testable import Host

/// Pickle bytes written opcode by opcode, to make checkpoints torch would never write.
struct PickleBytes {
    var bytes: [UInt8] = [0x80, 0x02]   // PROTO 2

    mutating func op(_ code: UInt8) { bytes.append(code) }
    mutating func global(_ module: String, _ name: String) { bytes.append(0x63); bytes += Array("\(module)\n\(name)\n".utf8) }
    mutating func string(_ text: String) {
        let utf8 = Array(text.utf8)
        bytes.append(0x58)   // BINUNICODE
        withUnsafeBytes(of: UInt32(utf8.count).littleEndian) { bytes += $0 }
        bytes += utf8
    }
    mutating func int(_ value: Int) { bytes.append(0x4A); withUnsafeBytes(of: Int32(value).littleEndian) { bytes += $0 } }
    mutating func tuple(_ values: [Int]) { op(0x28); values.forEach { int($0) }; op(0x74) }   // MARK ... TUPLE

    /// `_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())` over FloatStorage `key`.
    mutating func tensor(storage key: String, elements: Int, offset: Int, size: [Int], stride: [Int]) {
        global("torch._utils", "_rebuild_tensor_v2")
        op(0x28)                                                          // MARK (arguments)
        op(0x28); string("storage"); global("torch", "FloatStorage"); string(key); string("cpu"); int(elements); op(0x74)
        op(0x51)                                                          // BINPERSID
        int(offset); tuple(size); tuple(stride); op(0x89)                 // NEWFALSE
        global("collections", "OrderedDict"); op(0x29); op(0x52)          // OrderedDict()
        op(0x74); op(0x52)                                                // TUPLE, REDUCE
    }

    /// An OrderedDict of the given (name, tensor-writing) pairs, then STOP.
    static func stateDict(_ items: [(String, (inout PickleBytes) -> Void)]) -> [UInt8] {
        var pickle = PickleBytes()
        pickle.global("collections", "OrderedDict"); pickle.op(0x29); pickle.op(0x52)
        pickle.op(0x28)
        for (name, write) in items { pickle.string(name); write(&pickle) }
        pickle.op(0x75)   // SETITEMS
        pickle.op(0x2E)   // STOP
        return pickle.bytes
    }
}

/// A zip laid out as torch.save lays it out, with the given members under `archive/`.
func writeTorchZip(to url: URL, members: [String: Data]) throws {
    let archive = try Archive(url: url, accessMode: .create)
    for (name, data) in members.sorted(by: { $0.key < $1.key }) {
        try archive.addEntry(with: "archive/\(name)", type: .file, uncompressedSize: Int64(data.count)) { position, size in
            data.subdata(in: Int(position)..<(Int(position) + size))
        }
    }
}

func littleEndianFloatBytes(_ values: [Float]) -> Data { values.withUnsafeBytes { Data($0) } }

@Suite("Reading torch.save checkpoints")
struct TorchCheckpointTests {
    @Test("pytorch_model.bin loads to exactly the tensors of the same model's safetensors file")
    func binMatchesSafeTensors() throws {
        let fromBin = try StateDict.read(Fixtures.url("bert-tiny-bin/pytorch_model.bin"))
        let fromSafeTensors = try StateDict.read(Fixtures.url("bert-tiny/model.safetensors"))
        #expect(fromBin.count == 41)
        #expect(fromBin.names.first == "bert.embeddings.word_embeddings.weight", "file order is kept")
        #expect(Set(fromBin.names) == Set(fromSafeTensors.names))
        for name in fromSafeTensors.names {
            let a = try #require(fromBin[name]), b = try #require(fromSafeTensors[name])
            #expect(a.shape == b.shape, "\(name)")
            #expect(a.scalars.map(\.bitPattern) == b.scalars.map(\.bitPattern), "\(name) differs")
        }
    }

    @Test("the seed framework's best_model_fold0.pt loads with its encoder and MLP head keys")
    func seedCheckpoint() throws {
        let state = try TorchCheckpoint.read(Fixtures.url("seed-checkpoint/best_model_fold0.pt"))
        #expect(state.names.filter { $0.hasPrefix("encoder.") }.count == 39)
        #expect(state["classifier.0.weight"]?.shape == [256, 32])
        #expect(state["classifier.0.bias"]?.shape == [256])
        #expect(state["classifier.3.weight"]?.shape == [1, 256])
        #expect(state["classifier.3.bias"]?.shape == [1])
        #expect(state.names.allSatisfy { $0.hasPrefix("encoder.") || $0.hasPrefix("classifier.0.") || $0.hasPrefix("classifier.3.") })
        // Its gradients in the reference file were taken at exactly these weights.
        let reference = try SafeTensorsFile(contentsOf: Fixtures.url("seed-checkpoint/reference.safetensors"))
        let pooler = try reference.tensor(named: "after_adamw_step.encoder.pooler.dense.weight")   // untouched by AdamW
        #expect(state["encoder.pooler.dense.weight"] == pooler)
    }

    @Test("non-contiguous views and storage offsets are materialised in row-major order")
    func stridedViews() throws {
        let folder = try CheckpointTempFolder()
        let file = folder.file("views.pt")
        let pickle = PickleBytes.stateDict([
            ("transposed", { $0.tensor(storage: "0", elements: 6, offset: 0, size: [3, 2], stride: [1, 3]) }),
            ("every_other", { $0.tensor(storage: "0", elements: 6, offset: 1, size: [2], stride: [2]) }),
            ("row", { $0.tensor(storage: "0", elements: 6, offset: 3, size: [1, 3], stride: [3, 1]) }),
            ("broadcast", { $0.tensor(storage: "0", elements: 6, offset: 5, size: [2, 2], stride: [0, 0]) }),
        ])
        try writeTorchZip(to: file, members: ["data.pkl": Data(pickle), "data/0": littleEndianFloatBytes([0, 1, 2, 3, 4, 5]), "byteorder": Data("little".utf8)])
        let state = try TorchCheckpoint.read(file)
        #expect(state.names == ["transposed", "every_other", "row", "broadcast"])
        #expect(state["transposed"] == Tensor(shape: [3, 2], scalars: [0, 3, 1, 4, 2, 5]))
        #expect(state["every_other"] == Tensor(shape: [2], scalars: [1, 3]))
        #expect(state["row"] == Tensor(shape: [1, 3], scalars: [3, 4, 5]))
        #expect(state["broadcast"] == Tensor(shape: [2, 2], scalars: [5, 5, 5, 5]))
    }

    @Test("a view reaching past its storage is refused, naming the storage")
    func viewPastStorage() throws {
        let folder = try CheckpointTempFolder()
        let file = folder.file("lying.pt")
        let pickle = PickleBytes.stateDict([("w", { $0.tensor(storage: "0", elements: 6, offset: 2, size: [2, 3], stride: [3, 1]) })])
        try writeTorchZip(to: file, members: ["data.pkl": Data(pickle), "data/0": littleEndianFloatBytes([0, 1, 2, 3, 4, 5])])
        let message = oneLineCheckpointError(naming: file.path) { _ = try TorchCheckpoint.read(file) }
        #expect(message.contains("storage 0") && message.contains("reaches element 7 of a storage of 6 elements"))
    }

    @Test("a storage file shorter than the pickle claims is refused")
    func shortStorage() throws {
        let folder = try CheckpointTempFolder()
        let file = folder.file("short.pt")
        let pickle = PickleBytes.stateDict([("w", { $0.tensor(storage: "0", elements: 6, offset: 0, size: [6], stride: [1]) })])
        try writeTorchZip(to: file, members: ["data.pkl": Data(pickle), "data/0": littleEndianFloatBytes([0, 1, 2])])
        #expect(oneLineCheckpointError(naming: file.path) { _ = try TorchCheckpoint.read(file) }.contains("has 12 bytes"))
    }

    @Test("a pickle that asks for anything but tensor rebuilding is refused, naming the global", arguments: [
        ("os", "system"), ("builtins", "eval"), ("subprocess", "Popen"), ("torch", "load"), ("torch._utils", "_rebuild_qtensor"),
    ])
    func refusesForeignGlobals(module: String, name: String) throws {
        let folder = try CheckpointTempFolder()
        let file = folder.file("evil.pt")
        var pickle = PickleBytes()
        pickle.global(module, name)
        pickle.string("touch /tmp/sankshep-pwned")
        pickle.op(0x85)   // TUPLE1
        pickle.op(0x52)   // REDUCE
        pickle.op(0x2E)   // STOP
        try writeTorchZip(to: file, members: ["data.pkl": Data(pickle.bytes)])
        let message = oneLineCheckpointError(naming: file.path) { _ = try TorchCheckpoint.read(file) }
        #expect(message.contains("'\(module).\(name)'") && message.contains("refused"))
    }

    @Test("STACK_GLOBAL is held to the same rule as GLOBAL")
    func refusesStackGlobal() throws {
        let folder = try CheckpointTempFolder()
        let file = folder.file("evil4.pt")
        var pickle = PickleBytes()
        pickle.string("builtins"); pickle.string("exec")
        pickle.op(0x93)   // STACK_GLOBAL
        pickle.op(0x2E)
        try writeTorchZip(to: file, members: ["data.pkl": Data(pickle.bytes)])
        #expect(oneLineCheckpointError(naming: file.path) { _ = try TorchCheckpoint.read(file) }.contains("'builtins.exec'"))
    }

    @Test("opcodes a state dict never uses are refused")
    func refusesUnknownOpcodes() throws {
        let folder = try CheckpointTempFolder()
        let file = folder.file("inst.pt")
        var pickle = PickleBytes()
        pickle.bytes += Array("ios\nsystem\n".utf8)   // INST: the text-protocol way to call a global
        try writeTorchZip(to: file, members: ["data.pkl": Data(pickle.bytes)])
        #expect(oneLineCheckpointError(naming: file.path) { _ = try TorchCheckpoint.read(file) }.contains("opcode 0x69"))
    }

    @Test("a truncated pickle is refused, not read past its end")
    func truncatedPickle() throws {
        let folder = try CheckpointTempFolder()
        let file = folder.file("cut.pt")
        let whole = PickleBytes.stateDict([("w", { $0.tensor(storage: "0", elements: 1, offset: 0, size: [1], stride: [1]) })])
        try writeTorchZip(to: file, members: ["data.pkl": Data(whole.prefix(whole.count / 2)), "data/0": littleEndianFloatBytes([1])])
        #expect(oneLineCheckpointError(naming: file.path) { _ = try TorchCheckpoint.read(file) }.contains("pickle byte"))
    }

    @Test("a pickle nesting containers 100,000 deep is refused in one line instead of overflowing the stack",
          arguments: [UInt8(0x85), UInt8(0x5D)])   // TUPLE1 around a tuple; LIST-in-LIST through APPEND
    func deepNesting(opcode: UInt8) throws {
        let folder = try CheckpointTempFolder()
        let file = folder.file("deep.pt")
        var pickle = PickleBytes()
        if opcode == 0x85 {
            pickle.op(0x29)                                            // EMPTY_TUPLE
            for _ in 0..<100_000 { pickle.op(0x85) }                   // TUPLE1
        } else {
            for _ in 0..<100_000 { pickle.op(0x5D) }                   // EMPTY_LIST × n
            for _ in 0..<99_999 { pickle.op(0x61) }                    // APPEND the top list into the one below
        }
        pickle.op(0x2E)
        try writeTorchZip(to: file, members: ["data.pkl": Data(pickle.bytes)])
        #expect(oneLineCheckpointError(naming: file.path) { _ = try TorchCheckpoint.read(file) }.contains("nest deeper than 100"))
    }

    @Test("a pickle whose list contains itself, directly or through another list, is refused")
    func selfReference() throws {
        let folder = try CheckpointTempFolder()
        let direct = folder.file("self.pt")
        var pickle = PickleBytes()
        pickle.bytes += [0x5D, 0x71, 0x00, 0x68, 0x00, 0x61, 0x2E]    // EMPTY_LIST, BINPUT 0, BINGET 0, APPEND, STOP
        try writeTorchZip(to: direct, members: ["data.pkl": Data(pickle.bytes)])
        #expect(oneLineCheckpointError(naming: direct.path) { _ = try TorchCheckpoint.read(direct) }.contains("inside itself"))

        let indirect = folder.file("cycle.pt")
        pickle = PickleBytes()
        // L0, L1; L1.append(L0); POP; L0.append(L1): L0 is already inside L1.
        pickle.bytes += [0x5D, 0x71, 0x00, 0x5D, 0x71, 0x01, 0x68, 0x00, 0x61, 0x30, 0x68, 0x01, 0x61, 0x2E]
        try writeTorchZip(to: indirect, members: ["data.pkl": Data(pickle.bytes)])
        #expect(oneLineCheckpointError(naming: indirect.path) { _ = try TorchCheckpoint.read(indirect) }.contains("already inside another"))
    }

    @Test("a storage claiming 2⁶² or 2⁶³−1 elements is refused before any size is computed from it",
          arguments: [Int64(1) << 62, Int64.max])
    func hugeStorageCount(elements: Int64) throws {
        let folder = try CheckpointTempFolder()
        let file = folder.file("huge.pt")
        var pickle = PickleBytes()
        pickle.global("collections", "OrderedDict"); pickle.op(0x29); pickle.op(0x52)
        pickle.op(0x28); pickle.string("w")
        pickle.global("torch._utils", "_rebuild_tensor_v2")
        pickle.op(0x28)
        pickle.op(0x28); pickle.string("storage"); pickle.global("torch", "FloatStorage"); pickle.string("0"); pickle.string("cpu")
        pickle.op(0x8A); pickle.op(8); withUnsafeBytes(of: elements.littleEndian) { pickle.bytes += $0 }   // LONG1, 8 bytes
        pickle.op(0x74); pickle.op(0x51)
        pickle.int(0); pickle.tuple([1]); pickle.tuple([1]); pickle.op(0x89)
        pickle.global("collections", "OrderedDict"); pickle.op(0x29); pickle.op(0x52)
        pickle.op(0x74); pickle.op(0x52)
        pickle.op(0x75); pickle.op(0x2E)
        try writeTorchZip(to: file, members: ["data.pkl": Data(pickle.bytes), "data/0": littleEndianFloatBytes([1])])
        let message = oneLineCheckpointError(naming: file.path) { _ = try TorchCheckpoint.read(file) }
        #expect(message.contains("storage 0"), "\(message)")
    }

    @Test("a zip without data.pkl is refused")
    func zipWithoutPickle() throws {
        let folder = try CheckpointTempFolder()
        let file = folder.file("pytorch_model.bin")
        try writeTorchZip(to: file, members: ["data/0": littleEndianFloatBytes([1, 2]), "version": Data("3\n".utf8)])
        #expect(oneLineCheckpointError(naming: file.path) { _ = try StateDict.read(file) }.contains("no data.pkl"))
    }

    @Test("a zip whose central directory claims member sizes beyond the file is refused before any allocation",
          arguments: [UInt32(0x7FFF_FFFF), 0xFFFF_FFF0])
    func lyingZipSizes(claimed: UInt32) throws {
        let folder = try CheckpointTempFolder()
        let file = folder.file("pytorch_model.bin")
        let pickle = PickleBytes.stateDict([("w", { $0.tensor(storage: "0", elements: 2, offset: 0, size: [2], stride: [1]) })])
        try writeTorchZip(to: file, members: ["data.pkl": Data(pickle), "data/0": littleEndianFloatBytes([1, 2])])
        // Every central-directory entry (PK\x01\x02) claims `claimed` bytes, stored and uncompressed.
        var bytes = [UInt8](try Data(contentsOf: file))
        var patched = 0
        for index in 0..<(bytes.count - 28) where bytes[index] == 0x50 && bytes[index + 1] == 0x4B && bytes[index + 2] == 1 && bytes[index + 3] == 2 {
            for field in [20, 24] { for byte in 0..<4 { bytes[index + field + byte] = UInt8((claimed >> (8 * UInt32(byte))) & 0xFF) } }
            patched += 1
        }
        #expect(patched >= 2)
        try Data(bytes).write(to: file)
        let message = oneLineCheckpointError(naming: file.path) { _ = try TorchCheckpoint.read(file) }
        #expect(!message.isEmpty)
    }

    @Test("a storage named by two tensors with two element counts is refused, not read past its decoded values (found by fuzzing)")
    func storageWithTwoCounts() throws {
        let folder = try CheckpointTempFolder()
        let file = folder.file("pytorch_model.bin")
        let pickle = PickleBytes.stateDict([
            ("small", { $0.tensor(storage: "0", elements: 2, offset: 0, size: [2], stride: [1]) }),
            ("large", { $0.tensor(storage: "0", elements: 6, offset: 0, size: [6], stride: [1]) }),
        ])
        try writeTorchZip(to: file, members: ["data.pkl": Data(pickle), "data/0": littleEndianFloatBytes([1, 2, 3, 4, 5, 6])])
        let message = oneLineCheckpointError(naming: file.path) { _ = try TorchCheckpoint.read(file) }
        #expect(message.contains("storage 0 is referenced with 2 and with 6 elements"), "\(message)")
    }

    @Test("a big-endian checkpoint is refused rather than read with swapped bytes")
    func bigEndian() throws {
        let folder = try CheckpointTempFolder()
        let file = folder.file("be.pt")
        let pickle = PickleBytes.stateDict([("w", { $0.tensor(storage: "0", elements: 1, offset: 0, size: [1], stride: [1]) })])
        try writeTorchZip(to: file, members: ["data.pkl": Data(pickle), "data/0": littleEndianFloatBytes([1]), "byteorder": Data("big".utf8)])
        #expect(oneLineCheckpointError(naming: file.path) { _ = try TorchCheckpoint.read(file) }.contains("big-endian"))
    }

    @Test("files that are neither safetensors nor a torch zip are refused by content", arguments: [
        ([0x80, 0x02, 0x8A, 0x0A], "neither a torch.save zip nor a legacy torch.save file"),
        (Array("hello, this is text".utf8), "neither a safetensors file nor a torch.save zip"),
        ([0x01, 0x02], "truncated"),
    ] as [([UInt8], String)])
    func unknownFormats(bytes: [UInt8], expected: String) throws {
        let folder = try CheckpointTempFolder()
        let file = folder.file("weights.bin")
        try Data(bytes).write(to: file)
        #expect(oneLineCheckpointError(naming: file.path) { _ = try StateDict.read(file) }.contains(expected))
    }
}

@Suite("Reading what torch.save writes beyond plain float32 weights")
struct TorchCheckpointViewsTests {
    @Test("strided views, shared storages, half/bfloat16/double/int64 tensors and parameters read as torch made them contiguous",
          arguments: ["views.pt", "views_legacy.pt"])
    func viewsMatchTorch(file: String) throws {
        let state = try StateDict.read(Fixtures.url("checkpoint/\(file)"))
        let expected = try SafeTensorsFile(contentsOf: Fixtures.url("checkpoint/views.safetensors"))
        #expect(state.names == ["base", "transposed", "corner", "column", "broadcast", "half", "bfloat", "double",
                                "position_ids", "scalar", "parameter"])
        for name in expected.names {
            let tensor = try #require(state[name], "\(name) is missing")
            #expect(tensor == (try expected.tensor(named: name)), "\(name) differs from torch's contiguous copy")
        }
        #expect(state["scalar"]?.shape == [])
    }

    @Test("a legacy-format file cut short is refused, naming the storage that is missing")
    func truncatedLegacy() throws {
        let folder = try CheckpointTempFolder()
        let whole = try Data(contentsOf: Fixtures.url("checkpoint/views_legacy.pt"))
        let file = folder.file("views_legacy.pt")
        try whole.prefix(whole.count - 20).write(to: file)
        #expect(oneLineCheckpointError(naming: file.path) { _ = try StateDict.read(file) }.contains("truncated: storage"))
    }
}

@Suite("Reading torch.save checkpoints through symbolic links")
struct TorchCheckpointLinkTests {
    @Test("a checkpoint reached through a symbolic link (as Hugging Face's cache lays files out) reads as the file itself")
    func linkedCheckpoint() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let original = Fixtures.url("seed-checkpoint/best_model_fold0.pt")
        let link = folder.appendingPathComponent("best_model_linked.pt")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: original)
        let direct = try TorchCheckpoint.read(original)
        let linked = try TorchCheckpoint.read(link)
        #expect(linked.names == direct.names)
        #expect(linked["classifier.3.weight"] == direct["classifier.3.weight"])
    }
}
