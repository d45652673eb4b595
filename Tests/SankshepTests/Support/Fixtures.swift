import Foundation

/// Reference files made with PyTorch and Hugging Face, kept beside the tests (Tests/SankshepTests/Fixtures).
enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()   // Support
        .deletingLastPathComponent()   // SankshepTests
        .appendingPathComponent("Fixtures")

    static func url(_ relativePath: String) -> URL { root.appendingPathComponent(relativePath) }
}
