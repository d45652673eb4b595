import Foundation

/// Where the bundled data and vocabulary live: `data/` of the checkout the executable was built in,
/// or of the current folder, or the folder named by `SANKSHEP_DATA_DIR`.
enum BundledResources {
    static func dataDirectory() throws -> URL {
        var candidates: [URL] = []
        if let override = ProcessInfo.processInfo.environment["SANKSHEP_DATA_DIR"] {
            candidates.append(URL(fileURLWithPath: override))
        }
        candidates.append(URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent("data"))
        // The executable sits in .build/<triple>/<configuration>/ of the checkout.
        var folder = executableURL().deletingLastPathComponent()
        for _ in 0..<5 {
            candidates.append(folder.appendingPathComponent("data"))
            folder = folder.deletingLastPathComponent()
        }
        for candidate in candidates where FileManager.default.fileExists(atPath: candidate.appendingPathComponent("tokenizer/vocab.txt").path) {
            return candidate
        }
        throw ValidationFailure("cannot find the bundled data folder (data/HateSpeech.csv, data/tokenizer/); run from the checkout or set SANKSHEP_DATA_DIR")
    }

    static func defaultDataset() throws -> URL { try dataDirectory().appendingPathComponent("HateSpeech.csv") }
    static func tokenizerDirectory() throws -> URL { try dataDirectory().appendingPathComponent("tokenizer") }

    static func executableURL() -> URL {
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            return URL(fileURLWithPath: path)
        }
        return URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
    }
}

/// A user-facing problem found before any work starts (a bad option, a missing file).
struct ValidationFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
