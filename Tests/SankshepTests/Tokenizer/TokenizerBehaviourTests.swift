import Foundation
import Logging
import Testing
@testable import Host

/// Collects what a Logger is asked to print, so tests can count warnings.
final class CapturedLog: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [(Logger.Level, String)] = []

    var warnings: [String] { lock.withLock { entries.filter { $0.0 == .warning }.map(\.1) } }
    func append(_ level: Logger.Level, _ message: String) { lock.withLock { entries.append((level, message)) } }

    var logger: Logger { Logger(label: "test") { _ in Handler(log: self) } }

    struct Handler: LogHandler {
        let log: CapturedLog
        var logLevel: Logger.Level = .trace
        var metadata: Logger.Metadata = [:]
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) { log.append(event.level, event.message.description) }
    }
}

/// The fixture vocabulary with a given config, loaded as a user's folder would be.
func fixtureTokenizer(config: String? = nil, log: CapturedLog? = nil) throws -> BertTokenizer {
    let folder = try TemporaryDirectory()
    try FileManager.default.copyItem(at: Fixtures.url("tokenizer/vocab.txt"), to: folder.file("vocab.txt"))
    if let config { try folder.write("tokenizer_config.json", config) }
    var tokenizer = try BertTokenizer(directory: folder.url)
    if let log { tokenizer.logger = log.logger }
    return tokenizer
}

@Suite("Tokenizer files, errors and warnings")
struct TokenizerFileTests {
    /// Calls `load` and returns the one-line error it throws.
    func loadError(_ load: () throws -> Any) -> String? {
        do { _ = try load(); return nil } catch { return "\(error)" }
    }

    @Test("a vocab without [UNK] is refused, naming the file")
    func vocabWithoutUnknown() throws {
        let folder = try TemporaryDirectory()
        let vocab = try folder.write("vocab.txt", "[PAD]\n[CLS]\n[SEP]\n[MASK]\nআমি\n")
        let message = try #require(loadError { try BertTokenizer(directory: folder.url) })
        #expect(message.hasPrefix(vocab.path + ": "))
        #expect(message.contains("[UNK]"))
        #expect(!message.contains("\n"))
    }

    @Test("a vocab missing [CLS] and [PAD] is refused, naming both")
    func vocabWithoutSeveralSpecials() throws {
        let folder = try TemporaryDirectory()
        try folder.write("vocab.txt", "[UNK]\n[SEP]\nআমি\n")
        try folder.write("tokenizer_config.json", #"{"do_lower_case": false}"#)
        let message = try #require(loadError { try BertTokenizer(directory: folder.url) })
        #expect(message.contains("[CLS]") && message.contains("[PAD]"))
        #expect(message.contains("vocab.txt"))
    }

    @Test("a tokenizer.json whose vocab lacks [UNK] is refused, naming tokenizer.json")
    func tokenizerJSONWithoutUnknown() throws {
        let folder = try TemporaryDirectory()
        let file = try folder.write("tokenizer.json", """
            {"normalizer": {"type": "BertNormalizer", "lowercase": false}, "pre_tokenizer": {"type": "BertPreTokenizer"},
             "model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": {"[PAD]": 0, "[CLS]": 1, "[SEP]": 2, "a": 3}}}
            """)
        let message = try #require(loadError { try BertTokenizer(directory: folder.url) })
        #expect(message.hasPrefix(file.path + ": ") && message.contains("[UNK]"))
    }

    @Test("a folder with neither vocab.txt nor tokenizer.json is refused")
    func emptyFolder() throws {
        let folder = try TemporaryDirectory()
        let message = try #require(loadError { try BertTokenizer(directory: folder.url) })
        #expect(message.hasPrefix(folder.url.path) && message.contains("vocab.txt"))
    }

    @Test("broken or unsupported tokenizer files get one-line errors naming the file and the problem",
          arguments: [
            ("tokenizer_config.json", "{\"do_lower_case\": ", "is not valid JSON"),
            ("tokenizer_config.json", "[1, 2]", "is not a JSON object"),
            ("tokenizer_config.json", #"{"do_lower_case": "yes"}"#, "\"do_lower_case\" must be true or false"),
            ("tokenizer_config.json", #"{"unk_token": 7}"#, "\"unk_token\" must be a token string"),
            ("tokenizer.json", #"{"model": {"vocab": {"[UNK]": 0"#, "is not valid JSON"),
            ("tokenizer.json", #"{"normalizer": {"type": "Sequence"}, "pre_tokenizer": {"type": "BertPreTokenizer"}, "model": {"vocab": {}}}"#,
             "normalizer \"Sequence\" is not supported"),
            ("tokenizer.json", #"{"normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "model": {"vocab": {}}}"#,
             "pre_tokenizer \"Whitespace\" is not supported"),
            ("tokenizer.json", #"{"pre_tokenizer": {"type": "BertPreTokenizer"}, "model": {"type": "BPE", "vocab": {}}}"#,
             "model \"BPE\" is not supported"),
            ("tokenizer.json", #"{"pre_tokenizer": {"type": "BertPreTokenizer"}, "model": {"vocab": {"[UNK]": 0, "[CLS]": 5}}}"#,
             "ids have gaps"),
            ("tokenizer.json", #"{"pre_tokenizer": {"type": "BertPreTokenizer"}, "model": {"vocab": {"[UNK]": "zero"}}}"#,
             "has no integer id"),
          ])
    func brokenFiles(name: String, contents: String, problem: String) throws {
        let folder = try TemporaryDirectory()
        let file = try folder.write(name, contents)
        if name == "tokenizer_config.json" { try folder.write("vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n") }
        let message = try #require(loadError { try BertTokenizer(directory: folder.url) })
        #expect(message.hasPrefix(file.path + ": "), "\(message)")
        #expect(message.contains(problem), "\(message)")
        #expect(!message.contains("\n"))
    }

    @Test("a vocab.txt line that is not UTF-8 is named by its line number")
    func vocabNotUTF8() throws {
        let folder = try TemporaryDirectory()
        var bytes = Data("[PAD]\n[UNK]\n".utf8)
        bytes.append(contentsOf: [0xFF, 0xFE, 0x0A])
        try bytes.write(to: folder.file("vocab.txt"))
        let message = try #require(loadError { try BertTokenizer(vocabFile: folder.file("vocab.txt"), configFile: nil) })
        #expect(message.contains("line 3 is not valid UTF-8"))
    }

    @Test("vocab.txt with CRLF line ends reads the same entries")
    func vocabWithCRLF() throws {
        let folder = try TemporaryDirectory()
        try folder.write("vocab.txt", "[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\nআমি\r\n")
        let tokenizer = try BertTokenizer(vocabFile: folder.file("vocab.txt"), configFile: nil)
        #expect(tokenizer.vocabularySize == 5)
        #expect(tokenizer.encode("আমি") == [2, 4, 3])
    }

    @Test("special token names and settings come from tokenizer_config.json, strings or added-token objects")
    func configSpecialTokens() throws {
        let folder = try TemporaryDirectory()
        try folder.write("vocab.txt", "<pad>\n<unk>\n<s>\n</s>\nami\n")
        try folder.write("tokenizer_config.json", """
            {"do_lower_case": true, "strip_accents": false, "model_max_length": 128,
             "unk_token": {"content": "<unk>", "special": true}, "pad_token": "<pad>", "cls_token": "<s>", "sep_token": "</s>"}
            """)
        let tokenizer = try BertTokenizer(directory: folder.url)
        #expect([tokenizer.padId, tokenizer.unkId, tokenizer.clsId, tokenizer.sepId] == [Int]([0, 1, 2, 3]))
        #expect(tokenizer.maskId == nil)
        #expect(tokenizer.options.modelMaxLength == 128)
        #expect(tokenizer.options.stripAccents == false)
        #expect(tokenizer.encode("AMI </s> x") == [2, 4, 3, 1, 3])
    }

    @Test("vocabulary entries that differ only by Unicode composition keep their own ids")
    func canonicallyEquivalentEntries() throws {
        // "ড়" as one scalar (U+09DC) and as ড + nukta: equal Swift strings, different vocabulary entries.
        let composed = "\u{09DC}", decomposed = "\u{09A1}\u{09BC}"
        let tokenizer = BertTokenizer(vocabulary: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", composed, decomposed],
                                      lowercase: false, stripAccents: nil)
        #expect(tokenizer.encode(composed) == [2, 4, 3])
        #expect(tokenizer.encode(decomposed) == [2, 5, 3])
        #expect(tokenizer.id(forToken: decomposed) == 5)
    }
}

@Suite("Tokenizer warns when stripping destroys Bangla vowel signs")
struct TokenizerWarningTests {
    @Test("a lower-casing tokenizer warns once, on the first text that loses Bangla marks")
    func warnsOnce() throws {
        let log = CapturedLog()
        let tokenizer = try fixtureTokenizer(log: log)   // vocab.txt alone: lower-case + strip
        _ = tokenizer.encode("hello world")
        #expect(log.warnings.isEmpty)
        _ = tokenizer.encode("আমি তোমাকে ভালোবাসি")    // no Mn marks: া ি ো are spacing signs
        #expect(log.warnings.isEmpty)
        _ = tokenizer.encode("সুন্দর")                  // ু and ্ are dropped
        let copy = tokenizer
        _ = copy.tokenize("বুঝে নিও")
        _ = tokenizer.encode("কুকুর")
        #expect(log.warnings.count == 1)
        let warning = try #require(log.warnings.first)
        #expect(warning.contains("vocab.txt") && warning.contains("strip_accents") && !warning.contains("\n"))
    }

    @Test("a cased tokenizer, or one with strip_accents false, never warns")
    func silentWhenNotStripping() throws {
        for config in [#"{"do_lower_case": false}"#, #"{"do_lower_case": true, "strip_accents": false}"#] {
            let log = CapturedLog()
            let tokenizer = try fixtureTokenizer(config: config, log: log)
            _ = tokenizer.encode("সুন্দর কুকুর ড়")
            #expect(log.warnings.isEmpty)
        }
    }
}

@Suite("Tokenizer truncation, padding and batches")
struct TokenizerBatchTests {
    @Test("truncation keeps [CLS] and [SEP] and the first pieces, as Hugging Face's truncation=True does")
    func truncation() throws {
        let tokenizer = try BertTokenizer(directory: Fixtures.url("tokenizer"))
        let lines = try ReferenceEncoding.load("tokenizer/reference_cased.jsonl").prefix(200)
        for line in lines {
            for maxLength in [2, 3, 8, 16, 512] {
                let full = line.inputIds
                let expected = full.count <= maxLength ? full : Array(full.prefix(maxLength - 1)) + [tokenizer.sepId]
                #expect(tokenizer.encode(line.text, maxLength: maxLength) == expected)
            }
        }
        #expect(tokenizer.encode("ab cd ef gh", maxLength: 3) == [2, 1, 3])
    }

    @Test("tokenize gives the word pieces without [CLS]/[SEP]")
    func tokenizeHasNoSpecials() throws {
        let tokenizer = try BertTokenizer(directory: Fixtures.url("tokenizer"))
        #expect(tokenizer.tokenize("বাজেয়াপ্ত করা হোক।") == ["বাজে", "##য়া", "##প্ত", "করা", "হোক", "।"])
        #expect(tokenizer.tokenize("").isEmpty)
        #expect(tokenizer.tokens(forIds: [2, 8000, -1]) == ["[CLS]", "[UNK]", "[UNK]"])
    }

    @Test("a batch pads to its longest text with [PAD], masks the padding and has zero token types")
    func padsToLongest() throws {
        let tokenizer = try BertTokenizer(directory: Fixtures.url("tokenizer"))
        let texts = ["আমি", "ওর পুরা গুষ্টি", ""]
        let ids = texts.map { tokenizer.encode($0) }
        let batch = tokenizer.encodeBatch(ids)
        let T = ids.map(\.count).max()!
        #expect(batch.batchSize == 3 && batch.sequenceLength == T)
        for (b, row) in ids.enumerated() {
            let rowIds = Array(batch.inputIds[(b * T)..<((b + 1) * T)])
            let rowMask = Array(batch.attentionMask[(b * T)..<((b + 1) * T)])
            #expect(rowIds == row.map(Int32.init) + Array(repeating: Int32(tokenizer.padId), count: T - row.count))
            #expect(rowMask == Array(repeating: 1, count: row.count) + Array(repeating: 0, count: T - row.count))
        }
        #expect(batch.tokenTypeIds == Array(repeating: 0, count: 3 * T))
    }

    @Test("padTo pads further than the longest text but never cuts one")
    func padsToFixedLength() throws {
        let tokenizer = try BertTokenizer(directory: Fixtures.url("tokenizer"))
        let ids = [tokenizer.encode("আমি"), tokenizer.encode("ওর পুরা গুষ্টি শ্বশুরের")]
        let wide = tokenizer.encodeBatch(ids, padTo: 16)
        #expect(wide.sequenceLength == 16 && wide.inputIds.count == 32)
        #expect(wide.attentionMask.reduce(0, +) == Int32(ids[0].count + ids[1].count))
        let narrow = tokenizer.encodeBatch(ids, padTo: 2)
        #expect(narrow.sequenceLength == ids[1].count)
        #expect(Array(narrow.inputIds.suffix(ids[1].count)) == ids[1].map(Int32.init))
        let empty = tokenizer.encodeBatch([])
        #expect(empty.batchSize == 0 && empty.inputIds.isEmpty)
    }
}

@Suite("Saving a tokenizer")
struct TokenizerSaveTests {
    @Test("the bundled tokenizer.json, copied into every model folder, wraps a comment in [CLS] … [SEP] as BERT's post-processor")
    func bundledPostProcessor() throws {
        // transformers 4.x's fast tokenizer adds special tokens only through this entry.
        let data = try Data(contentsOf: Fixtures.bundledTokenizer.appendingPathComponent("tokenizer.json"))
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let post = try #require(json["post_processor"] as? [String: Any])
        #expect(post["type"] as? String == "TemplateProcessing")
        let single = try #require(post["single"] as? [[String: [String: Any]]])
        #expect(single.map { $0.keys.first! } == ["SpecialToken", "Sequence", "SpecialToken"])
        #expect(single.first?["SpecialToken"]?["id"] as? String == "[CLS]" && single.last?["SpecialToken"]?["id"] as? String == "[SEP]")
        let tokenizer = try BertTokenizer(directory: Fixtures.bundledTokenizer)
        let specials = try #require(post["special_tokens"] as? [String: [String: Any]])
        #expect(specials["[CLS]"]?["ids"] as? [Int] == [tokenizer.clsId])
        #expect(specials["[SEP]"]?["ids"] as? [Int] == [tokenizer.id(forToken: "[SEP]")!])
    }

    @Test("a saved tokenizer reloads to the same ids, from its folder and from its tokenizer.json alone",
          arguments: [false, true])
    func saveRoundTrip(lowercase: Bool) throws {
        var original = try fixtureTokenizer(config: #"{"do_lower_case": \#(lowercase), "model_max_length": 512}"#)
        original.logger.logLevel = .critical
        let folder = try TemporaryDirectory()
        try original.save(to: folder.url)
        var fromFolder = try BertTokenizer(directory: folder.url)
        var fromJSON = try BertTokenizer(tokenizerJSON: folder.file("tokenizer.json"))
        fromFolder.logger.logLevel = .critical
        fromJSON.logger.logLevel = .critical
        #expect(fromFolder.vocabulary.elementsEqual(original.vocabulary) { $0.unicodeScalars.elementsEqual($1.unicodeScalars) })
        #expect(fromJSON.vocabularySize == original.vocabularySize)
        #expect(fromFolder.options == original.options)
        #expect(fromJSON.options.lowercase == lowercase && fromJSON.options.stripsAccents == lowercase)
        let reference = lowercase ? "tokenizer/reference_uncased.jsonl" : "tokenizer/reference_cased.jsonl"
        let lines = try ReferenceEncoding.load(reference)
        #expect(mismatches(fromFolder, lines).isEmpty)
        #expect(mismatches(fromJSON, lines).isEmpty)
    }

    @Test("save writes HF-style files: vocab.txt in id order, config with do_lower_case, a post-processor adding [CLS]/[SEP]")
    func savedFileContents() throws {
        let tokenizer = try BertTokenizer(directory: Fixtures.url("tokenizer"))
        let folder = try TemporaryDirectory()
        try tokenizer.save(to: folder.url)
        let vocab = try Data(contentsOf: folder.file("vocab.txt"))
        #expect(vocab == (try Data(contentsOf: Fixtures.url("tokenizer/vocab.txt"))))
        let config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: folder.file("tokenizer_config.json"))) as? [String: Any])
        #expect(config["do_lower_case"] as? Bool == false)
        #expect(config["tokenizer_class"] as? String == "BertTokenizer")
        #expect(config["model_max_length"] as? Int == 512)
        let json = try ExactJSON.parse([UInt8](Data(contentsOf: folder.file("tokenizer.json"))))
        #expect(json["post_processor"]?["type"]?.string == "TemplateProcessing")
        guard case .array(let clsIds)? = json["post_processor"]?["special_tokens"]?["[CLS]"]?["ids"] else {
            Issue.record("no [CLS] in the post-processor"); return
        }
        #expect(clsIds.map(\.int) == [2])
        #expect(json["normalizer"]?["lowercase"]?.bool == false)
        guard case .object(let entries)? = json["model"]?["vocab"] else { Issue.record("no model.vocab"); return }
        #expect(entries.count == 8000)
        #expect(entries.enumerated().allSatisfy { $0.element.value.int == $0.offset })
    }

    @Test("ExactJSON writes what it reads, escapes and non-ASCII included")
    func exactJSONRoundTrip() throws {
        let text = #"{"a": [1, -2.5, true, null, "x\"\\\n\u0001ড়\ud83d\ude00"], "ড়": {}, "ড়": []}"#
        let value = try ExactJSON.parse(Array(text.utf8))
        let again = try ExactJSON.parse(Array(value.serialized().utf8))
        #expect(value.serialized() == again.serialized())
        guard case .object(let members) = value else { Issue.record("not an object"); return }
        #expect(members.count == 3)
        guard case .array(let elements)? = value["a"] else { Issue.record("no array"); return }
        #expect(elements.map(\.int) == [1, nil, nil, nil, nil])
        #expect(elements[2].bool == true && elements[3].isNull)
        #expect(elements[4].string == "x\"\\\n\u{01}ড়😀")
        #expect(throws: ExactJSON.SyntaxError.self) { try ExactJSON.parse(Array("[1, 2".utf8)) }
        #expect(throws: ExactJSON.SyntaxError.self) { try ExactJSON.parse(Array("{} x".utf8)) }
    }
}

@Suite("sankshep tokenize")
struct TokenizeCommandTests {
    @Test("JSON lines in, one {input_ids, tokens} JSON line out each, Bangla printed as UTF-8")
    func jsonLines() throws {
        let tokenizer = try BertTokenizer(directory: Fixtures.url("tokenizer"))
        let input = Data("{\"text\": \"দাম ৳৫০০/- মাত্র!?\"}\n\n{\"text\": \"আমি\", \"label\": 1}\n".utf8)
        var out: [String] = []
        try TokenizeCommand.encodeLines(of: input, source: "in.jsonl", plain: false, maxLength: nil, with: tokenizer) {
            out.append(String(decoding: $0, as: UTF8.self))
        }
        #expect(out == [
            #"{"input_ids":[2,1050,1,16,14,2357,5,22,3],"tokens":["[CLS]","দাম","[UNK]","/","-","মাত্র","!","?","[SEP]"]}"# + "\n",
            #"{"input_ids":[2,277,3],"tokens":["[CLS]","আমি","[SEP]"]}"# + "\n",
        ])
    }

    @Test("plain lines are texts as they are, truncated by --max_length")
    func plainLines() throws {
        let tokenizer = try BertTokenizer(directory: Fixtures.url("tokenizer"))
        var out: [String] = []
        try TokenizeCommand.encodeLines(of: Data("ওর পুরা গুষ্টি\r\n\n".utf8), source: "-", plain: true, maxLength: 3,
                                        with: tokenizer) { out.append(String(decoding: $0, as: UTF8.self)) }
        #expect(out == [#"{"input_ids":[2,683,3],"tokens":["[CLS]","ওর","[SEP]"]}"# + "\n",
                        #"{"input_ids":[2,3],"tokens":["[CLS]","[SEP]"]}"# + "\n"])
    }

    @Test("a line that is not JSON, or has no text, is named by file and line number")
    func badLines() throws {
        let tokenizer = try BertTokenizer(directory: Fixtures.url("tokenizer"))
        for (input, problem) in [("{\"text\": \"ok\"}\nplain words\n", "not a JSON object"),
                                 ("{\"text\": \"ok\"}\n{\"comment\": \"x\"}\n", "no string \"text\"")] {
            let error = #expect(throws: TokenizerError.self) {
                try TokenizeCommand.encodeLines(of: Data(input.utf8), source: "in.jsonl", plain: false, maxLength: nil,
                                                with: tokenizer) { _ in }
            }
            #expect(error.map { "\($0)".hasPrefix("in.jsonl:2: ") && "\($0)".contains(problem) } == true)
        }
        #expect(throws: TokenizerError.self) {
            try TokenizeCommand.encodeLines(of: Data([0x61, 0xFF, 0x0A]), source: "in.txt", plain: true, maxLength: nil,
                                            with: tokenizer) { _ in }
        }
    }
}
