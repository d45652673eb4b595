import Foundation
import Testing
@testable import Host

@Suite("Pre-tokenizers cut text as Hugging Face tokenizers does")
struct PreTokenizerTests {
    static let specs = [
        #"{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true}"#,
        #"{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": true}"#,
        #"{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "never", "split": true}"#,
        #"{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": false}"#,
        #"{"type": "WhitespaceSplit"}"#,
        #"{"type": "Punctuation", "behavior": "Isolated"}"#,
        #"{"type": "Punctuation", "behavior": "MergedWithPrevious"}"#,
        #"{"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithNext", "invert": false}"#,
        #"{"type": "Split", "pattern": {"Regex": "[।!?]+"}, "behavior": "Contiguous", "invert": false}"#,
        #"{"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Removed", "invert": false}"#,
        #"{"type": "Split", "pattern": {"Regex": "\\p{L}+"}, "behavior": "Removed", "invert": true}"#,
        #"{"type": "Sequence", "pretokenizers": [{"type": "WhitespaceSplit"}, {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true}]}"#,
    ]

    @Test("Metaspace (always, first, never; split or not), WhitespaceSplit, Punctuation, Split and Sequence",
          .enabled(if: PythonEnvironment.available))
    func matchesTokenizers() throws {
        let texts = try TokenizersComponents.texts()
        let reference = try TokenizersComponents.run(Self.specs.map { "{\"pre_tokenizer\": \($0)}" }, texts: texts)
        for (spec, expected) in zip(Self.specs, reference) {
            let preTokenizer = try PreTokenizer.read(try ExactJSON.parse(Array(spec.utf8)), source: "test")
            let want = try #require(expected.pieces)
            var wrong: [String] = []
            for (text, wanted) in zip(texts, want) {
                let got = preTokenizer.split([PreTokenizer.Word(text: text, atStart: true)]).map(\.text)
                if !got.elementsEqual(wanted, by: { $0.unicodeScalars.elementsEqual($1.unicodeScalars) }) {
                    wrong.append("\(text.debugDescription) → \(got), want \(wanted)")
                }
            }
            #expect(wrong.isEmpty, "\(spec): \(wrong.count) differ, first: \(wrong.prefix(3))")
        }
    }

    @Test("Metaspace's first scheme puts ▁ only before the text's first word, not after an added token")
    func firstSchemeAfterAddedToken() throws {
        let metaspace = PreTokenizer.metaspace(replacement: "▁", prepend: .first, split: true)
        #expect(metaspace.split([.init(text: "a b", atStart: true)]).map(\.text) == ["▁a", "▁b"])
        #expect(metaspace.split([.init(text: "a b", atStart: false)]).map(\.text) == ["a", "▁b"])
        #expect(metaspace.split([.init(text: "", atStart: true)]).isEmpty)
    }
}
