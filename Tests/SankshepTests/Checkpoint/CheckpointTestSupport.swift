import Foundation
import Testing
@testable import Host

/// A fresh folder under the system temp dir, removed when the value is released.
final class CheckpointTempFolder {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("sankshep-checkpoint-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    func file(_ name: String) -> URL { url.appendingPathComponent(name) }

    /// Names in the folder, hidden ones included (a leftover temp file would show here).
    func contents() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: url.path).sorted()
    }
}

/// Runs `body`, which must throw, and returns the error's description after checking that it is a
/// single line that names `file`.
func oneLineCheckpointError(naming file: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) -> String {
    do {
        try body()
        Issue.record("expected an error naming \(file), but nothing was thrown", sourceLocation: sourceLocation)
        return ""
    } catch {
        let text = "\(error)"
        #expect(!text.contains("\n"), "error is not one line: \(text)", sourceLocation: sourceLocation)
        #expect(text.contains(file), "error does not name \(file): \(text)", sourceLocation: sourceLocation)
        return text
    }
}

/// A safetensors file assembled byte by byte, to make files that lie.
func rawSafeTensors(header: String, dataBytes: Int) -> Data {
    var data = Data()
    let json = Data(header.utf8)
    withUnsafeBytes(of: UInt64(json.count).littleEndian) { data.append(contentsOf: $0) }
    data.append(json)
    data.append(Data(repeating: 0, count: dataBytes))
    return data
}
