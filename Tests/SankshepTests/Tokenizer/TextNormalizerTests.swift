import Foundation
import Testing
@testable import Host

/// Hugging Face `tokenizers` run on single components (scripts/fixtures/tokenizers_components.py).
enum TokenizersComponents {
    struct Result: Decodable {
        let normalized: [String]?
        let pieces: [[String]]?
        let ids: [[Int]]?
    }

    /// Each component is a JSON object with "normalizer", "pre_tokenizer" and/or "unigram".
    static func run(_ components: [String], texts: [String]) throws -> [Result] {
        let folder = try TemporaryDirectory()
        let textsJSON = String(decoding: try JSONEncoder().encode(texts), as: UTF8.self)
        let input = try folder.write("spec.json", "{\"components\": [\(components.joined(separator: ","))], \"texts\": \(textsJSON)}")
        let result = try PythonEnvironment.run("fixtures/tokenizers_components.py", [input.path])
        guard result.status == 0 else { throw UnigramReference.ReferenceFailure(description: result.standardError) }
        return try JSONDecoder().decode([Result].self, from: Data(result.standardOutput.utf8))
    }

    /// The first `count` bundled comments and awkward strings.
    static func texts(comments count: Int = 1500) throws -> [String] {
        let comments = try CommentTexts.load(contentsOf: Fixtures.bundledData).texts
        return Array(comments.prefix(count)) + [
            "", " ", "  a  b  ", "\t\n x", "café CAFÉ cafe\u{301}", "ＡＢＣ ｈｅｌｌｏ ﬁ ㎏ ① ⅰ", "İstanbul ΣΑΣ σας ß ǅ",
            "ক্ষমা কুকুর ড়াড় ঢ়ো য়ৌ ড\u{9BC}", "অ\u{200C}আ\u{200D}ই", "😀🤣👍🏽 👨‍👩‍👧", "Hello, বাংলা! мир 世界 مرحبا",
            "``quoted''", "a\u{A0}b\u{3000}c", "৳৫০০ ১২৩", "e\u{327}\u{301} \u{1E9E} \u{F900} \u{2F800}", "\u{301}x", "a--b...c!?",
        ]
    }
}

@Suite("Normalizers give what Hugging Face tokenizers gives")
struct TextNormalizerTests {
    static let specs = [
        #"{"type": "NFC"}"#, #"{"type": "NFD"}"#, #"{"type": "NFKC"}"#, #"{"type": "NFKD"}"#, #"{"type": "Lowercase"}"#,
        #"{"type": "StripAccents"}"#, #"{"type": "Strip", "strip_left": true, "strip_right": false}"#,
        #"{"type": "Strip", "strip_left": true, "strip_right": true}"#,
        #"{"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}"#,
        #"{"type": "Replace", "pattern": {"String": "''"}, "content": "\""}"#,
        #"{"type": "Sequence", "normalizers": [{"type": "NFKD"}, {"type": "StripAccents"}, {"type": "Lowercase"}]}"#,
    ]

    @Test("NFC, NFD, NFKC, NFKD, Lowercase, StripAccents, Strip, Replace and Sequence on comments and awkward strings",
          .enabled(if: PythonEnvironment.available))
    func matchesTokenizers() throws {
        let texts = try TokenizersComponents.texts()
        let reference = try TokenizersComponents.run(Self.specs.map { "{\"normalizer\": \($0)}" }, texts: texts)
        for (spec, expected) in zip(Self.specs, reference) {
            let normalizer = try TextNormalizer.read(try ExactJSON.parse(Array(spec.utf8)), source: "test")
            let want = try #require(expected.normalized)
            var wrong: [String] = []
            for (text, wanted) in zip(texts, want) where !normalizer.normalize(text).unicodeScalars.elementsEqual(wanted.unicodeScalars) {
                wrong.append("\(text.debugDescription) → \(normalizer.normalize(text).debugDescription), want \(wanted.debugDescription)")
            }
            #expect(wrong.isEmpty, "\(spec): \(wrong.count) differ, first: \(wrong.prefix(3))")
        }
    }

    @Test("Foundation's Unicode normalization forms agree with Python's unicodedata on every bundled comment",
          .enabled(if: PythonEnvironment.available))
    func foundationAgreesWithUnicodedata() throws {
        let texts = try TokenizersComponents.texts(comments: 20_000)
        let folder = try TemporaryDirectory()
        let input = try folder.write("texts.json", String(decoding: try JSONEncoder().encode(texts), as: UTF8.self))
        let code = "import json, sys, unicodedata; t = json.load(open(sys.argv[1], encoding='utf-8')); print(json.dumps([[unicodedata.normalize(f, x) for f in ('NFC', 'NFD', 'NFKC', 'NFKD')] for x in t], ensure_ascii=False))"
        let result = try PythonEnvironment.run("-c", [code, input.path])
        try #require(result.status == 0, "\(result.standardError)")
        let forms = try JSONDecoder().decode([[String]].self, from: Data(result.standardOutput.utf8))
        var wrong = 0
        for (text, want) in zip(texts, forms) {
            let got = [text.precomposedStringWithCanonicalMapping, text.decomposedStringWithCanonicalMapping,
                       text.precomposedStringWithCompatibilityMapping, text.decomposedStringWithCompatibilityMapping]
            if !zip(got, want).allSatisfy({ $0.unicodeScalars.elementsEqual($1.unicodeScalars) }) { wrong += 1 }
        }
        #expect(forms.count == texts.count && wrong == 0, "\(wrong) texts normalize differently")
    }
}
