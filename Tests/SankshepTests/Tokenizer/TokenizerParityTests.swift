import Foundation
import Testing
@testable import Host

/// One line of a reference file written by Hugging Face (see Fixtures/tokenizer, scripts/fixtures).
struct ReferenceEncoding: Decodable {
    let text: String
    let inputIds: [Int]
    let tokens: [String]?
    let lowercase: Bool?
    let stripAccents: Bool?

    static func load(_ relativePath: String) throws -> [ReferenceEncoding] {
        let data = try Data(contentsOf: Fixtures.url(relativePath))
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try data.split(separator: UInt8(ascii: "\n")).map { try decoder.decode(ReferenceEncoding.self, from: Data($0)) }
    }
}

/// Lines whose ids differ from the reference, described for the failure message (first few only).
func mismatches(_ tokenizer: BertTokenizer, _ lines: [ReferenceEncoding], checkTokens: Bool = true) -> [String] {
    var found: [String] = []
    for line in lines {
        let ids = tokenizer.encode(line.text)
        if ids != line.inputIds {
            found.append("\(line.text.debugDescription): got \(ids), want \(line.inputIds)")
        } else if checkTokens, let tokens = line.tokens, tokenizer.tokens(forIds: ids) != tokens {
            found.append("\(line.text.debugDescription): tokens \(tokenizer.tokens(forIds: ids)), want \(tokens)")
        }
    }
    return found
}

/// A temporary folder removed when the test ends.
final class TemporaryDirectory {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("sankshep-tokenizer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }

    func file(_ name: String) -> URL { url.appendingPathComponent(name) }

    @discardableResult
    func write(_ name: String, _ text: String) throws -> URL {
        try Data(text.utf8).write(to: file(name))
        return file(name)
    }
}

/// The fixture's tokenizer.json with its normalizer switched to lower-case + strip accents (null).
/// Edited as text: a Swift dictionary would merge canonically equivalent vocabulary entries.
func uncasedTokenizerJSON(in folder: TemporaryDirectory) throws -> URL {
    let text = try String(contentsOf: Fixtures.url("tokenizer/tokenizer.json"), encoding: .utf8)
    let cased = "\"strip_accents\": false,\n    \"lowercase\": false"
    #expect(text.contains(cased))
    return try folder.write("tokenizer.json", text.replacingOccurrences(of: cased, with: "\"strip_accents\": null,\n    \"lowercase\": true"))
}

@Suite("Tokenizer ids match Hugging Face")
struct TokenizerParityTests {
    @Test("every cased reference line gets Hugging Face's ids, loading vocab.txt + tokenizer_config.json")
    func casedFromVocabAndConfig() throws {
        let tokenizer = try BertTokenizer(vocabFile: Fixtures.url("tokenizer/vocab.txt"),
                                          configFile: Fixtures.url("tokenizer/tokenizer_config.json"))
        #expect(tokenizer.options.lowercase == false)
        let lines = try ReferenceEncoding.load("tokenizer/reference_cased.jsonl")
        #expect(lines.count == 3015)
        let wrong = mismatches(tokenizer, lines)
        #expect(wrong.isEmpty, "\(wrong.count) lines differ, first: \(wrong.prefix(3))")
    }

    @Test("every cased reference line gets Hugging Face's ids, loading tokenizer.json alone")
    func casedFromTokenizerJSON() throws {
        let tokenizer = try BertTokenizer(tokenizerJSON: Fixtures.url("tokenizer/tokenizer.json"))
        #expect(tokenizer.vocabularySize == 8000)
        let wrong = mismatches(tokenizer, try ReferenceEncoding.load("tokenizer/reference_cased.jsonl"))
        #expect(wrong.isEmpty, "\(wrong.count) lines differ, first: \(wrong.prefix(3))")
    }

    @Test("the fixture folder loads as vocab.txt + tokenizer_config.json, cased")
    func casedFromDirectory() throws {
        let tokenizer = try BertTokenizer(directory: Fixtures.url("tokenizer"))
        #expect(tokenizer.source.hasSuffix("vocab.txt"))
        let wrong = mismatches(tokenizer, try ReferenceEncoding.load("tokenizer/reference_cased.jsonl"))
        #expect(wrong.isEmpty, "\(wrong.count) lines differ, first: \(wrong.prefix(3))")
    }

    @Test("every uncased reference line gets Hugging Face's ids from vocab.txt alone (defaults lower-case and strip, as for bangla-bert-base)")
    func uncasedFromVocabAlone() throws {
        let folder = try TemporaryDirectory()
        try FileManager.default.copyItem(at: Fixtures.url("tokenizer/vocab.txt"), to: folder.file("vocab.txt"))
        var tokenizer = try BertTokenizer(directory: folder.url)
        tokenizer.logger.logLevel = .critical
        #expect(tokenizer.options.lowercase && tokenizer.options.stripsAccents)
        let lines = try ReferenceEncoding.load("tokenizer/reference_uncased.jsonl")
        #expect(lines.count == 2015)
        let wrong = mismatches(tokenizer, lines)
        #expect(wrong.isEmpty, "\(wrong.count) lines differ, first: \(wrong.prefix(3))")
    }

    @Test("every uncased reference line gets Hugging Face's ids from vocab.txt + a do_lower_case config")
    func uncasedFromVocabAndConfig() throws {
        let folder = try TemporaryDirectory()
        try FileManager.default.copyItem(at: Fixtures.url("tokenizer/vocab.txt"), to: folder.file("vocab.txt"))
        try folder.write("tokenizer_config.json", #"{"do_lower_case": true, "strip_accents": null}"#)
        var tokenizer = try BertTokenizer(directory: folder.url)
        tokenizer.logger.logLevel = .critical
        let wrong = mismatches(tokenizer, try ReferenceEncoding.load("tokenizer/reference_uncased.jsonl"))
        #expect(wrong.isEmpty, "\(wrong.count) lines differ, first: \(wrong.prefix(3))")
    }

    @Test("every uncased reference line gets Hugging Face's ids from a lower-casing tokenizer.json alone")
    func uncasedFromTokenizerJSON() throws {
        let folder = try TemporaryDirectory()
        _ = try uncasedTokenizerJSON(in: folder)
        var tokenizer = try BertTokenizer(directory: folder.url)
        tokenizer.logger.logLevel = .critical
        #expect(tokenizer.source.hasSuffix("tokenizer.json"))
        #expect(tokenizer.options.lowercase && tokenizer.options.stripsAccents)
        let wrong = mismatches(tokenizer, try ReferenceEncoding.load("tokenizer/reference_uncased.jsonl"))
        #expect(wrong.isEmpty, "\(wrong.count) lines differ, first: \(wrong.prefix(3))")
    }

    @Test("awkward and random strings get Hugging Face's ids under all four lower-case/strip settings",
          arguments: [(false, false as Bool?), (true, nil), (true, false), (false, true)])
    func edgeCases(lowercase: Bool, stripAccents: Bool?) throws {
        let base = try BertTokenizer.readVocabulary(Fixtures.url("tokenizer/vocab.txt"))
        let extra = try BertTokenizer.readVocabulary(Fixtures.url("tokenizer-edge/extra_vocab.txt"))
        var tokenizer = BertTokenizer(vocabulary: base + extra, lowercase: lowercase, stripAccents: stripAccents)
        tokenizer.logger.logLevel = .critical
        let lines = try ReferenceEncoding.load("tokenizer-edge/edge_cases.jsonl")
            .filter { $0.lowercase == lowercase && $0.stripAccents == stripAccents }
        #expect(lines.count == 456)
        let wrong = mismatches(tokenizer, lines)
        #expect(wrong.isEmpty, "\(wrong.count) lines differ, first: \(wrong.prefix(3))")
    }
}
