import Foundation

/// Reading an input file (model weights, config, tokenizer, CSV, recipe) only when it is a regular
/// file: a FIFO or a device named as one would block the read forever or never end, so it is
/// refused with a reason the caller puts in its one-line error.
enum InputFile {
    struct NotRegular: LocalizedError {
        let kind: String
        var errorDescription: String? { "not a regular file but \(kind)" }
    }

    /// The file's bytes; `mapped` maps them instead of copying (large weight files).
    static func read(_ url: URL, mapped: Bool = false) throws -> Data {
        try checkRegular(url)
        // A missing or unreadable file is left to Data's own error, which says which.
        return try Data(contentsOf: url, options: mapped ? .alwaysMapped : [])
    }

    /// Throws `NotRegular` when `url` exists and is not a regular file (a symbolic link to one is fine).
    static func checkRegular(_ url: URL) throws {
        var status = stat()
        if stat(url.path, &status) == 0 {
            let type = status.st_mode & S_IFMT
            if type != S_IFREG {
                let kind = switch type {
                case S_IFDIR: "a folder"
                case S_IFIFO: "a FIFO"
                case S_IFCHR, S_IFBLK: "a device"
                case S_IFSOCK: "a socket"
                default: "not a file"
                }
                throw NotRegular(kind: kind)
            }
        }
    }
}
