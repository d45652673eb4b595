import Foundation
import Logging
import Testing
@testable import Host

@Suite("The tokenized-data cache")
struct TokenCacheTests {
    static let texts = ["তুমি খুব ভালো মানুষ", "এই লোকটা একটা চোর", "ধন্যবাদ", ""]
    static let logger = Logger(label: "test")

    static func cache(_ folder: URL, dataKey: String = "data") -> TokenCache {
        TokenCache(directory: folder.appendingPathComponent("cache"), dataKey: dataKey)
    }

    @Test("ids round-trip through the file format")
    func roundTrip() throws {
        let sequences = [[2, 17, 7999, 3], [], [2, 3], [Int](repeating: 5, count: 300)]
        #expect(try TokenCache.decode(TokenCache.encode(sequences)) == sequences)
    }

    @Test("a second call reads the cached ids instead of tokenizing")
    func rerunReadsTheCache() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let tokenizer = try BertTokenizer(directory: Fixtures.bundledTokenizer)
        let cache = Self.cache(folder)
        let first = cache.sequences(Self.texts, tokenizer: tokenizer, maxLength: 16, logger: Self.logger)
        #expect(first == Self.texts.map { tokenizer.encode($0, maxLength: 16) })
        // Ids that no tokenizer would give, written where the cache looks: a rerun returns them.
        let planted = Self.texts.indices.map { [$0, 1000 + $0] }
        try AtomicFile.write(TokenCache.encode(planted), to: cache.file(tokenizer: tokenizer, maxLength: 16))
        #expect(cache.sequences(Self.texts, tokenizer: tokenizer, maxLength: 16, logger: Self.logger) == planted)
    }

    @Test("a truncated, corrupted or mismatched cache file is rebuilt, never used",
          arguments: ["truncated", "corrupted", "other rows", "not a cache"])
    func damagedFileRebuilt(_ damage: String) throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let tokenizer = try BertTokenizer(directory: Fixtures.bundledTokenizer)
        let cache = Self.cache(folder)
        let expected = cache.sequences(Self.texts, tokenizer: tokenizer, maxLength: 16, logger: Self.logger)
        let file = cache.file(tokenizer: tokenizer, maxLength: 16)
        var bytes = try Data(contentsOf: file)
        switch damage {
        case "truncated": bytes = bytes.prefix(bytes.count - 3)
        case "corrupted": bytes[bytes.count - 2] ^= 0x40
        case "other rows": bytes = TokenCache.encode([[2, 3]])
        default: bytes = Data("row,fold\n".utf8)
        }
        try bytes.write(to: file)
        if damage != "other rows" { #expect(throws: TokenCacheError.self) { try TokenCache.read(file) } }
        #expect(cache.sequences(Self.texts, tokenizer: tokenizer, maxLength: 16, logger: Self.logger) == expected)
        #expect(try TokenCache.read(file) == expected, "the damaged file was replaced")
    }

    @Test("the file changes with the data, the CSV options that change rows, the tokenizer's vocabulary and options, and max_length")
    func keyedByEverythingThatDecidesTheIds() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let csv = folder.appendingPathComponent("a.csv")
        try "Comments,HateSpeech\nভালো,0\n".write(to: csv, atomically: true, encoding: .utf8)
        var options = CommentCSVOptions()
        let key = try TokenCache.dataKey(file: csv, options: options)
        let tokenizer = try BertTokenizer(directory: Fixtures.bundledTokenizer)
        let base = Self.cache(folder, dataKey: key).file(tokenizer: tokenizer, maxLength: 16)
        #expect(Self.cache(folder, dataKey: key).file(tokenizer: try BertTokenizer(directory: Fixtures.bundledTokenizer), maxLength: 16) == base)
        #expect(Self.cache(folder, dataKey: key).file(tokenizer: tokenizer, maxLength: 32) != base)
        let otherTokenizer = try BertTokenizer(directory: Fixtures.url("bert-tiny"))
        #expect(Self.cache(folder, dataKey: key).file(tokenizer: otherTokenizer, maxLength: 16) != base)
        var lowercased = tokenizer.options
        lowercased.lowercase.toggle()
        let relaxed = try BertTokenizer(vocabulary: tokenizer.vocabulary, options: lowercased, source: "test")
        #expect(Self.cache(folder, dataKey: key).file(tokenizer: relaxed, maxLength: 16) != base)
        options.dataFraction = 0.5
        #expect(try TokenCache.dataKey(file: csv, options: options) != key)
        options.dataFraction = 1
        options.seed = 7
        #expect(try TokenCache.dataKey(file: csv, options: options) == key, "the seed samples nothing when every row is kept")
        options.labelColumn = "Label"
        #expect(try TokenCache.dataKey(file: csv, options: options) != key)
        try "Comments,HateSpeech\nভালো,1\n".write(to: csv, atomically: true, encoding: .utf8)
        #expect(try TokenCache.dataKey(file: csv, options: CommentCSVOptions()) != key)
    }
}
