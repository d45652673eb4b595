import Foundation
import Testing
@testable import Host

@Suite("SentencePiece's precompiled charsmap normalizes as Hugging Face tokenizers does")
struct PrecompiledCharsmapTests {
    /// The nmt_nfkc and nfkc_cf charsmaps of the fixtures, as transformers wrote them into tokenizer.json.
    static func charsmapSpec(_ fixture: String) throws -> String {
        let root = try ExactJSON.parse([UInt8](Data(contentsOf: Fixtures.url("unigram/\(fixture)/tokenizer.json"))))
        func find(_ json: ExactJSON) -> String? {
            if json["type"]?.string == "Precompiled" { return json["precompiled_charsmap"]?.string }
            if case .array(let items)? = json["normalizers"] { return items.lazy.compactMap(find).first }
            return nil
        }
        let charsmap = try #require(root["normalizer"].flatMap(find))
        return #"{"type": "Precompiled", "precompiled_charsmap": "\#(charsmap)"}"#
    }

    @Test("nmt_nfkc (XLM-R's rules) and nfkc_cf on comments and awkward strings, grapheme by grapheme",
          .enabled(if: PythonEnvironment.available), arguments: ["xlmr-nmt-nfkc-1000", "albert-nfkc-cf-800"])
    func matchesTokenizers(fixture: String) throws {
        let spec = try Self.charsmapSpec(fixture)
        let texts = try TokenizersComponents.texts(comments: 4000)
        let want = try #require(try TokenizersComponents.run(["{\"normalizer\": \(spec)}"], texts: texts).first?.normalized)
        let normalizer = try TextNormalizer.read(try ExactJSON.parse(Array(spec.utf8)), source: "test")
        var wrong: [String] = []
        for (text, wanted) in zip(texts, want) where !normalizer.normalize(text).unicodeScalars.elementsEqual(wanted.unicodeScalars) {
            wrong.append("\(text.debugDescription) → \(normalizer.normalize(text).debugDescription), want \(wanted.debugDescription)")
        }
        #expect(want.count == texts.count && wrong.isEmpty, "\(wrong.count) differ, first: \(wrong.prefix(3))")
    }

    @Test("a charsmap cut short or not base64 is refused in one line")
    func malformed() {
        #expect(throws: TokenizerError.self) { try PrecompiledCharsmap(charsmap: [1, 0], source: "t.json") }
        #expect(throws: TokenizerError.self) { try PrecompiledCharsmap(charsmap: [0xFF, 0, 0, 0, 1, 2, 3, 4], source: "t.json") }
        #expect(throws: TokenizerError.self) { try PrecompiledCharsmap(base64: "***", source: "t.json") }
    }
}
