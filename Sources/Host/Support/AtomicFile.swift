import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file could not be written: names the file and the reason, on one line.
struct FileWriteError: Error, CustomStringConvertible {
    let file: String
    let problem: String
    var description: String { oneLine("\(file): \(problem)") }
}

/// Every output file of Sankshep is written through here, so an interrupted run never leaves a
/// half-written model, CSV or config behind: the bytes go to a temporary file in the same folder
/// (same file system, so the rename is atomic), are flushed to disk with fsync, and only then renamed
/// over the destination. A reader sees either the old file or the complete new one.
enum AtomicFile {
    /// Writes `data` to `url` atomically, creating missing parent folders.
    static func write(_ data: Data, to url: URL) throws {
        try write(to: url) { descriptor, path in
            try data.withUnsafeBytes { raw in
                try writeAll(raw, to: descriptor, path: path)
            }
        }
    }

    /// Copies the file at `source` to `destination` atomically (the copy is complete or absent).
    static func copy(from source: URL, to destination: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: source) } catch {
            throw FileWriteError(file: source.path, problem: "cannot read the file to copy it (\(error.localizedDescription))")
        }
        try write(data, to: destination)
    }

    /// Streams the content: `body` writes through `append`, which may be called any number of times.
    /// Use it for outputs too large to assemble in memory first.
    static func write(to url: URL, body: (_ append: (UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws {
        try write(to: url) { descriptor, path in
            try body { chunk in try writeAll(chunk, to: descriptor, path: path) }
        }
    }

    /// A run killed while writing leaves its temporary file (`.<name>.tmp-<8 hex>`), and a folder
    /// copy its `.<name>.partial-<UUID>` folder; neither was ever renamed into place, so both are
    /// removed when a run starts in the same output folder. Returns the paths removed.
    @discardableResult
    static func removeLeftovers(in folder: URL) -> [String] {
        guard let walker = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: nil, options: []) else { return [] }
        var removed: [String] = []
        for case let url as URL in walker where isLeftover(url.lastPathComponent) {
            walker.skipDescendants()
            if (try? FileManager.default.removeItem(at: url)) != nil { removed.append(url.path) }
        }
        return removed
    }

    /// `.<name>.tmp-XXXXXXXX` (this file's temporary names) or `.<name>.partial-<UUID>`.
    static func isLeftover(_ name: String) -> Bool {
        guard name.hasPrefix(".") else { return false }
        if let range = name.range(of: ".tmp-", options: .backwards) {
            let suffix = name[range.upperBound...]
            return suffix.count == 8 && suffix.allSatisfy(\.isHexDigit)
        }
        if let range = name.range(of: ".partial-", options: .backwards) {
            return UUID(uuidString: String(name[range.upperBound...])) != nil
        }
        return false
    }

    // MARK: - The one place that creates, syncs and renames

    /// `fill` writes the content into `descriptor`; its path argument is the destination, for error messages.
    private static func write(to url: URL, _ fill: (_ descriptor: Int32, _ destinationPath: String) throws -> Void) throws {
        let destination = url.standardizedFileURL
        let folder = destination.deletingLastPathComponent()
        try refuseNonRegular(destination.path)
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw FileWriteError(file: destination.path, problem: "cannot create the folder \(folder.path) (\(error.localizedDescription))")
        }
        // A fresh random name nobody else is writing to (O_EXCL), created 0666 so the kernel applies the
        // umask and the output ends up with ordinary permissions.
        let temporaryPath = folder.appendingPathComponent(".\(destination.lastPathComponent).tmp-\(UUID().uuidString.prefix(8))").path
        let descriptor = open(temporaryPath, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o666)
        guard descriptor >= 0 else {
            throw FileWriteError(file: destination.path, problem: "cannot create a temporary file in \(folder.path) (\(errnoText()))")
        }
        var renamed = false
        defer { if !renamed { unlink(temporaryPath) } }
        do {
            defer { close(descriptor) }
            try fill(descriptor, destination.path)
            guard fsync(descriptor) == 0 else {
                throw FileWriteError(file: destination.path, problem: "cannot flush the temporary file to disk (\(errnoText()))")
            }
        }
        guard rename(temporaryPath, destination.path) == 0 else {
            throw FileWriteError(file: destination.path, problem: "cannot move the temporary file into place (\(errnoText()))")
        }
        renamed = true
        // The rename itself lives in the folder: sync it too, so it survives a power cut.
        let folderDescriptor = open(folder.path, O_RDONLY)
        if folderDescriptor >= 0 {
            _ = fsync(folderDescriptor)
            close(folderDescriptor)
        }
    }

    /// The rename would replace a symbolic link, a FIFO or a device with a regular file (and a folder
    /// cannot be replaced at all): an output name that is anything but a regular file, or absent, is
    /// refused before anything is written.
    private static func refuseNonRegular(_ path: String) throws {
        var status = stat()
        guard lstat(path, &status) == 0 else { return }  // absent: a new file
        let kind = status.st_mode & S_IFMT
        guard kind != S_IFREG else { return }
        let what = switch kind {
        case S_IFLNK: "a symbolic link"
        case S_IFDIR: "a folder"
        case S_IFIFO: "a FIFO"
        case S_IFSOCK: "a socket"
        case S_IFCHR, S_IFBLK: "a device"
        default: "not a regular file"
        }
        throw FileWriteError(file: path, problem: "is \(what); outputs are written only as regular files, so it is left as it is")
    }

    private static func writeAll(_ bytes: UnsafeRawBufferPointer, to descriptor: Int32, path: String) throws {
        var offset = 0
        while offset < bytes.count {
            let written = systemWrite(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw FileWriteError(file: path, problem: "write failed after \(offset) of \(bytes.count) bytes (\(errnoText()))")
            }
            offset += written
        }
    }

    #if canImport(Glibc)
    private static let systemWrite = Glibc.write
    #else
    private static let systemWrite = Darwin.write
    #endif

    private static func errnoText() -> String { String(cString: strerror(errno)) }
}
