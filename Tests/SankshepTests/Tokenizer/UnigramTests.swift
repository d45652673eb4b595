import Foundation
import Testing
@testable import Host

@Suite("The Unigram model gives the ids of Hugging Face tokenizers")
struct UnigramTests {
    /// A small vocabulary whose Viterbi choices are not greedy, with byte pieces for the fallback.
    static let vocabulary: [(String, Double)] = [("<unk>", 0), ("a", -2), ("b", -2.5), ("ab", -3), ("abc", -6.5), ("c", -3),
                                                 ("bc", -3.1), ("ক", -4), ("কা", -4.5), ("া", -5), ("▁", -1), ("▁a", -2.2),
                                                 ("ab", -1)] + (0..<256).filter { $0 % 3 == 0 }.map { (Unigram.bytePiece(UInt8($0)), -9.0) }

    static let texts = ["", "a", "ab", "abc", "abcabc", "bca", "▁a▁ab", "কাকা", "ক\u{9BE}x", "xyz", "a😀b", "😀😀", "ḁ", "\u{10FFFF}",
                        "abzzc", "ab\u{0}c", "ককা"]

    static func model(byteFallback: Bool) throws -> Unigram {
        try Unigram(pieces: vocabulary.map(\.0), scores: vocabulary.map(\.1), unkId: 0, byteFallback: byteFallback, source: "test")
    }

    @Test("Viterbi over piece scores, fused unknown pieces, byte fallback, a repeated piece", .enabled(if: PythonEnvironment.available),
          arguments: [false, true])
    func matchesTokenizers(byteFallback: Bool) throws {
        let vocab = String(decoding: try JSONSerialization.data(withJSONObject: Self.vocabulary.map { [$0.0, $0.1] as [Any] }), as: UTF8.self)
        let spec = "{\"unigram\": {\"vocab\": \(vocab), \"unk_id\": 0, \"byte_fallback\": \(byteFallback)}}"
        let reference = try TokenizersComponents.run([spec], texts: Self.texts)
        let want = try #require(reference.first?.ids)
        let model = try Self.model(byteFallback: byteFallback)
        for (text, wanted) in zip(Self.texts, want) {
            var ids: [Int] = []
            model.appendIds(of: text, to: &ids)
            #expect(ids == wanted, "\(text.debugDescription)")
        }
    }

    @Test("an unknown id outside the vocabulary is refused, naming the file")
    func badUnknownId() {
        #expect(throws: TokenizerError.self) { try Unigram(pieces: ["a"], scores: [0], unkId: 3, byteFallback: false, source: "x.json") }
    }
}
