import Foundation
import Testing
@testable import Host

@Suite("Writing files atomically")
struct AtomicFileTests {
    @Test("a write creates missing folders and leaves no temporary file")
    func writesAndCleansUp() throws {
        let folder = try CheckpointTempFolder()
        let target = folder.url.appendingPathComponent("run/fold_0/summary.csv")
        try AtomicFile.write(Data("a,b\n1,2\n".utf8), to: target)
        #expect(try String(contentsOf: target, encoding: .utf8) == "a,b\n1,2\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: target.deletingLastPathComponent().path) == ["summary.csv"])
        let permissions = try FileManager.default.attributesOfItem(atPath: target.path)[.posixPermissions] as? Int
        #expect(permissions.map { $0 & 0o044 != 0 } == true, "outputs are readable by others as the umask allows")
    }

    @Test("a replaced file holds exactly the new content")
    func replaces() throws {
        let folder = try CheckpointTempFolder()
        let target = folder.file("config.json")
        try AtomicFile.write(Data(repeating: 65, count: 10_000), to: target)
        try AtomicFile.write(Data("{}".utf8), to: target)
        #expect(try Data(contentsOf: target) == Data("{}".utf8))
        #expect(try folder.contents() == ["config.json"])
    }

    @Test("a write that fails half-way keeps the old file and removes the temporary one")
    func failureKeepsOldFile() throws {
        struct Interrupted: Error {}
        let folder = try CheckpointTempFolder()
        let target = folder.file("model.safetensors")
        try AtomicFile.write(Data("old".utf8), to: target)
        #expect(throws: Interrupted.self) {
            try AtomicFile.write(to: target) { append in
                try Data("new and partial".utf8).withUnsafeBytes { try append($0) }
                throw Interrupted()
            }
        }
        #expect(try Data(contentsOf: target) == Data("old".utf8))
        #expect(try folder.contents() == ["model.safetensors"])
    }

    @Test("a folder that cannot be written gives one line naming the file")
    func unwritableFolder() throws {
        let folder = try CheckpointTempFolder()
        let blocker = folder.file("not-a-folder")
        try Data("x".utf8).write(to: blocker)
        let target = blocker.appendingPathComponent("out.json")
        _ = oneLineCheckpointError(naming: target.path) { try AtomicFile.write(Data("{}".utf8), to: target) }
    }

    @Test("a copy is identical to its source")
    func copies() throws {
        let folder = try CheckpointTempFolder()
        let source = Fixtures.url("bert-tiny/tokenizer.json")
        let target = folder.file("tokenizer.json")
        try AtomicFile.copy(from: source, to: target)
        #expect(try Data(contentsOf: target) == Data(contentsOf: source))
    }
}
