import Crypto
import Foundation
import Logging

/// The token ids of a data set by one tokenizer, kept on disk (`--cache_dir`) so that a rerun skips
/// tokenizing.
///
/// A file is named by a SHA-256 over everything that decides what it holds: the data file's bytes
/// and the CSV options that change which rows are read and how (`dataKey`), the tokenizer as its
/// files define it (vocabulary and options), the sequence length, and the format version. Every
/// tokenizer has its own file, so a teacher and a student with different vocabularies never share
/// ids; `TokenizedCorpus` asks once per tokenizer. Files are written atomically and carry the
/// SHA-256 of their payload: a file that does not check out (truncated, corrupted, another format,
/// another row count) is reported, rebuilt and replaced, never used.
///
/// Layout (little-endian): `SKTOKENS`, format version (u32), rows (u32), payload bytes (u64),
/// SHA-256 of the payload (32 bytes), then the payload: per row its length (u32) and its ids (i32).
struct TokenCache: Sendable {
    let directory: URL
    /// What names the rows: see `dataKey(file:options:)`.
    let dataKey: String

    static let formatVersion: UInt32 = 1
    static let magic = Data("SKTOKENS".utf8)
    static let headerSize = 8 + 4 + 4 + 8 + 32

    /// The data file's SHA-256 and the CSV options that change the rows read from it (the seed
    /// counts only when a fraction of the rows is sampled).
    static func dataKey(file: URL, options: CommentCSVOptions) throws -> String {
        let bytes: Data
        do {
            bytes = try Data(contentsOf: file, options: .alwaysMapped)
        } catch {
            throw DatasetError(file: file.path, problem: "cannot read the file (\(error.localizedDescription))")
        }
        var fields = [hex(SHA256.hash(data: bytes)), options.textColumn, options.labelColumn, "\(options.labels)",
                      options.onBadRows.rawValue, "\(options.dataFraction)"]
        if options.dataFraction < 1 { fields.append("\(options.seed)") }
        return fields.joined(separator: "\u{1F}")
    }

    /// The cache file of one tokenizer at one sequence length.
    func file(tokenizer: any Tokenizer, maxLength: Int) -> URL {
        var hasher = SHA256()
        hasher.update(data: Data("v\(Self.formatVersion) \(Sankshep.configuration.version) max_length \(maxLength)\u{1F}\(dataKey)\u{1F}\(tokenizer.configurationKey)".utf8))
        for token in tokenizer.vocabulary {
            // Length-prefixed, so that no two vocabularies hash alike.
            hasher.update(data: Data("\u{1F}\(token.utf8.count):\(token)".utf8))
        }
        return directory.appendingPathComponent("tokens-\(Self.hex(hasher.finalize()).prefix(32)).bin")
    }

    /// The ids of `texts` by `tokenizer`: from the cache when it holds them, else tokenized and cached.
    /// A cache that cannot be read costs a warning and a tokenization; one that cannot be written, a warning.
    func sequences(_ texts: [String], tokenizer: any Tokenizer, maxLength: Int, logger: Logger) -> [[Int]] {
        let started = DispatchTime.now().uptimeNanoseconds
        func seconds() -> String { String(format: "%.2f", Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9) }
        let url = file(tokenizer: tokenizer, maxLength: maxLength)
        if FileManager.default.fileExists(atPath: url.path) {
            do {
                let cached = try Self.read(url)
                guard cached.count == texts.count else {
                    throw TokenCacheError("holds \(cached.count) rows, the data has \(texts.count)")
                }
                logger.info("tokenized data read from the cache \(url.path) (\(texts.count) comments, \(seconds()) s)")
                return cached
            } catch {
                logger.warning("\(url.path): \(error); tokenizing again and replacing it")
            }
        }
        let sequences = texts.map { tokenizer.encode($0, maxLength: maxLength) }
        let tokenized = seconds()
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try AtomicFile.write(Self.encode(sequences), to: url)
            logger.info("tokenized \(texts.count) comments in \(tokenized) s; cached in \(url.path)")
        } catch {
            logger.warning("tokenized \(texts.count) comments in \(tokenized) s; cannot cache them in \(directory.path): \(error)")
        }
        return sequences
    }

    static func encode(_ sequences: [[Int]]) -> Data {
        // Lengths and ids as one run of 32-bit little-endian words.
        var words: [UInt32] = []
        words.reserveCapacity(sequences.reduce(0) { $0 + 1 + $1.count })
        for sequence in sequences {
            words.append(UInt32(sequence.count).littleEndian)
            for id in sequence { words.append(UInt32(bitPattern: Int32(truncatingIfNeeded: id)).littleEndian) }
        }
        let payload = words.withUnsafeBytes { Data($0) }
        var data = magic
        append(formatVersion, to: &data)
        append(UInt32(sequences.count), to: &data)
        append(UInt64(payload.count), to: &data)
        data.append(contentsOf: SHA256.hash(data: payload))
        data.append(payload)
        return data
    }

    static func read(_ url: URL) throws -> [[Int]] {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw TokenCacheError("cannot read the cache file (\(error.localizedDescription))")
        }
        return try decode(data)
    }

    static func decode(_ data: Data) throws -> [[Int]] {
        let data = Data(data)   // indices from 0
        guard data.count >= headerSize, data.starts(with: magic) else {
            throw TokenCacheError("not a token cache file (\(data.count) bytes)")
        }
        let payload = data[headerSize...]
        return try data.withUnsafeBytes { raw in
            func integer<T: FixedWidthInteger>(at offset: Int, _: T.Type) -> T {
                T(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: T.self))
            }
            let version = integer(at: 8, UInt32.self)
            guard version == formatVersion else { throw TokenCacheError("format version \(version), expected \(formatVersion)") }
            let rows = Int(integer(at: 12, UInt32.self))
            let payloadSize = integer(at: 16, UInt64.self)
            guard payloadSize == UInt64(raw.count - headerSize) else {
                throw TokenCacheError("truncated or padded: \(raw.count - headerSize) payload bytes, the header says \(payloadSize)")
            }
            guard SHA256.hash(data: payload).elementsEqual(raw[24..<56]) else {
                throw TokenCacheError("checksum mismatch: the file is corrupted")
            }
            var sequences: [[Int]] = []
            sequences.reserveCapacity(rows)
            var offset = headerSize
            for row in 0..<rows {
                guard offset + 4 <= raw.count else { throw TokenCacheError("row \(row + 1) of \(rows) is missing") }
                let length = Int(integer(at: offset, UInt32.self))
                offset += 4
                guard length <= (raw.count - offset) / 4 else { throw TokenCacheError("row \(row + 1) of \(rows) is cut short") }
                sequences.append((0..<length).map { Int(integer(at: offset + 4 * $0, Int32.self)) })
                offset += 4 * length
            }
            guard offset == raw.count else { throw TokenCacheError("\(raw.count - offset) bytes after the last row") }
            return sequences
        }
    }

    private static func append<T: FixedWidthInteger>(_ value: T, to data: inout Data) {
        withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) }
    }

    private static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        digest.map { String(format: "%02x", $0) }.joined()
    }
}

struct TokenCacheError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
