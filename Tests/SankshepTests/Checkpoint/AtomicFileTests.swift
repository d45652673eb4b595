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

    @Test("an output name that is a symbolic link, a FIFO or a folder is refused in one line and left as it is",
          arguments: ["symlink", "fifo", "folder"])
    func nonRegularDestination(kind: String) throws {
        let folder = try CheckpointTempFolder()
        let elsewhere = folder.file("elsewhere.json")
        try Data("keep".utf8).write(to: elsewhere)
        let target = folder.file("predictions.jsonl")
        switch kind {
        case "symlink": try FileManager.default.createSymbolicLink(at: target, withDestinationURL: elsewhere)
        case "fifo": #expect(mkfifo(target.path, 0o600) == 0)
        default: try FileManager.default.createDirectory(at: target, withIntermediateDirectories: false)
        }
        let message = oneLineCheckpointError(naming: target.path) { try AtomicFile.write(Data("{}".utf8), to: target) }
        #expect(message.contains("outputs are written only as regular files"), "\(message)")
        var status = stat()
        #expect(lstat(target.path, &status) == 0)
        let expected = kind == "symlink" ? S_IFLNK : kind == "fifo" ? S_IFIFO : S_IFDIR
        #expect(status.st_mode & S_IFMT == expected, "the \(kind) was replaced")
        #expect(try Data(contentsOf: elsewhere) == Data("keep".utf8), "nothing was written through the link")
        #expect(try folder.contents().filter { $0.contains(".tmp-") }.isEmpty)
    }

    @Test("the temporary files and partial folders a killed run leaves are removed, and nothing else")
    func leftoversRemoved() throws {
        let folder = try CheckpointTempFolder()
        let nested = folder.url.appendingPathComponent("student")
        try FileManager.default.createDirectory(at: nested, withIntermediateDirectories: true)
        let leftovers = [".model.safetensors.tmp-0A1B2C3D", "student/.config.json.tmp-deadbeef"]
        let kept = ["model.safetensors", ".hidden", ".x.tmp-notahexname", "student/config.json", "notes.tmp-01234567"]
        for name in leftovers + kept { try Data("x".utf8).write(to: folder.url.appendingPathComponent(name)) }
        let partial = folder.url.appendingPathComponent(".best_model_baseline.partial-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: partial, withIntermediateDirectories: true)
        try Data("x".utf8).write(to: partial.appendingPathComponent("model.safetensors"))
        let removed = AtomicFile.removeLeftovers(in: folder.url)
        #expect(Set(removed.map { URL(fileURLWithPath: $0).lastPathComponent }) == Set(leftovers.map { URL(fileURLWithPath: $0).lastPathComponent } + [partial.lastPathComponent]))
        for name in kept { #expect(FileManager.default.fileExists(atPath: folder.url.appendingPathComponent(name).path), "\(name) was removed") }
        #expect(!FileManager.default.fileExists(atPath: partial.path))
    }
}
