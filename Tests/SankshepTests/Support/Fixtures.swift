import Foundation

/// Reference files made with PyTorch and Hugging Face, kept beside the tests (Tests/SankshepTests/Fixtures).
enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()   // Support
        .deletingLastPathComponent()   // SankshepTests
        .appendingPathComponent("Fixtures")

    static func url(_ relativePath: String) -> URL { root.appendingPathComponent(relativePath) }
}

extension Fixtures {
    /// The checkout's root: the bundled data lives in `data/`.
    static let repositoryRoot = root
        .deletingLastPathComponent()   // SankshepTests
        .deletingLastPathComponent()   // Tests
        .deletingLastPathComponent()

    static let bundledData = repositoryRoot.appendingPathComponent("data/HateSpeech.csv")
    static let bundledTokenizer = repositoryRoot.appendingPathComponent("data/tokenizer")

    /// A fresh empty folder under the system's temporary directory.
    static func temporaryFolder(_ name: String = #function) throws -> URL {
        let folder = FileManager.default.temporaryDirectory
            .appendingPathComponent("sankshep-tests-\(name.filter { $0.isLetter || $0.isNumber })-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }
}
