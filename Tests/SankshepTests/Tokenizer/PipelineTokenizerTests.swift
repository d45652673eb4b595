import Foundation
import Testing
@testable import Host

/// The SentencePiece Unigram fixtures (scripts/fixtures/make_unigram_tokenizers.py): two XLM-R-style
/// and two ALBERT-style tokenizer.json folders written by transformers' converter.
let unigramFixtures = ["xlmr-nmt-nfkc-1000", "xlmr-identity-bytes-600", "albert-nfkc-cf-800", "albert-identity-keep-1200"]

/// transformers' ids of every bundled comment and the script's edge texts, per fixture folder.
struct UnigramReference: Decodable {
    let folder: String
    let text: String
    let ids: [Int]
    let ids16: [Int]

    /// One run of scripts/fixtures/unigram_reference_ids.py over the given folders.
    static func load(_ folders: [URL]) throws -> [UnigramReference] {
        let result = try PythonEnvironment.run("fixtures/unigram_reference_ids.py", folders.map(\.path))
        guard result.status == 0 else { throw ReferenceFailure(description: result.standardError) }
        return try result.standardOutput.split(separator: "\n").map { try JSONDecoder().decode(Self.self, from: Data($0.utf8)) }
    }

    struct ReferenceFailure: Error, CustomStringConvertible { let description: String }
}

@Suite("tokenizer.json Unigram pipelines give transformers' ids")
struct PipelineTokenizerTests {
    @Test("every bundled comment and edge text, whole and cut to 16, under four SentencePiece settings",
          .enabled(if: PythonEnvironment.available))
    func everyCommentMatchesTransformers() throws {
        let folders = unigramFixtures.map { Fixtures.url("unigram/\($0)") }
        let reference = try UnigramReference.load(folders)
        let comments = try String(contentsOf: Fixtures.bundledData, encoding: .utf8).split(separator: "\n").count - 1
        for (name, folder) in zip(unigramFixtures, folders) {
            let tokenizer = try TokenizerFolder.load(folder)
            #expect(tokenizer is PipelineTokenizer, "\(name) loads as the tokenizer.json pipeline")
            let lines = reference.filter { $0.folder == name }
            #expect(lines.count >= comments, "\(name): transformers encoded \(lines.count) texts")
            var wrong: [String] = []
            for line in lines {
                let ids = tokenizer.encode(line.text, maxLength: nil)
                let cut = tokenizer.encode(line.text, maxLength: 16)
                if ids != line.ids { wrong.append("\(line.text.debugDescription): got \(ids), want \(line.ids)") }
                if cut != line.ids16 { wrong.append("\(line.text.debugDescription) cut to 16: got \(cut), want \(line.ids16)") }
            }
            #expect(wrong.isEmpty, "\(name): \(wrong.count) differ, first: \(wrong.prefix(3))")
        }
    }

    @Test("special tokens come from tokenizer_config.json: XLM-R <s> </s> <pad> <unk> <mask>, ALBERT [CLS] [SEP] <pad> <unk> [MASK]")
    func specialTokens() throws {
        let xlmr = try TokenizerFolder.load(Fixtures.url("unigram/xlmr-nmt-nfkc-1000"))
        #expect(xlmr.tokens(forIds: [xlmr.clsId, xlmr.sepId, xlmr.padId, xlmr.unkId]) == ["<s>", "</s>", "<pad>", "<unk>"])
        #expect(xlmr.maskId.map { xlmr.tokens(forIds: [$0]) } == ["<mask>"])
        #expect(xlmr.padId == 1, "RoBERTa counts positions from padding_idx + 1")
        #expect(xlmr.vocabularySize == 1002)
        let albert = try TokenizerFolder.load(Fixtures.url("unigram/albert-nfkc-cf-800"))
        #expect(albert.tokens(forIds: [albert.clsId, albert.sepId, albert.padId, albert.unkId]) == ["[CLS]", "[SEP]", "<pad>", "<unk>"])
        #expect(albert.maskId.map { albert.tokens(forIds: [$0]) } == ["[MASK]"])
    }

    @Test("saved files load again to the same ids, in Sankshep and in transformers", .enabled(if: PythonEnvironment.available))
    func saveRoundTrip() throws {
        let folder = try TemporaryDirectory()
        let original = try TokenizerFolder.load(Fixtures.url("unigram/albert-nfkc-cf-800"))
        try original.save(to: folder.url)
        let again = try TokenizerFolder.load(folder.url)
        #expect(again.producesSameIds(as: original))
        let reference = try UnigramReference.load([folder.url])
        let wrong = reference.filter { again.encode($0.text, maxLength: nil) != $0.ids }
        #expect(!reference.isEmpty && wrong.isEmpty, "\(wrong.count) differ")
    }

    @Test("a different tokenizer is told apart: other pieces, other normalization")
    func identity() throws {
        let a = try TokenizerFolder.load(Fixtures.url("unigram/xlmr-nmt-nfkc-1000"))
        let b = try TokenizerFolder.load(Fixtures.url("unigram/xlmr-identity-bytes-600"))
        let bert = try TokenizerFolder.load(Fixtures.bundledTokenizer)
        #expect(a.producesSameIds(as: try TokenizerFolder.load(Fixtures.url("unigram/xlmr-nmt-nfkc-1000"))))
        #expect(!a.producesSameIds(as: b))
        #expect(!a.producesSameIds(as: bert))
        #expect(a.configurationKey != b.configurationKey)
    }

    @Test("a folder with only a SentencePiece .model says how to make tokenizer.json")
    func sentencePieceModelOnly() throws {
        let folder = try TemporaryDirectory()
        try folder.write("sentencepiece.bpe.model", "not read")
        let message = failureMessage { try TokenizerFolder.load(folder.url) } ?? ""
        #expect(message.contains("sentencepiece.bpe.model") && message.contains("tokenizer.json"))
    }

    @Test("an unsupported model type or component is refused in one line naming the file")
    func unsupported() throws {
        let text = try String(contentsOf: Fixtures.url("unigram/xlmr-identity-bytes-600/tokenizer.json"), encoding: .utf8)
        for (from, to, expected) in [("\"type\": \"Unigram\"", "\"type\": \"BPE\"", "model \"BPE\""),
                                     ("\"type\": \"Metaspace\"", "\"type\": \"ByteLevel\"", "pre_tokenizer: \"ByteLevel\"")] {
            let folder = try TemporaryDirectory()
            #expect(text.contains(from))
            try folder.write("tokenizer.json", text.replacingOccurrences(of: from, with: to))
            let message = failureMessage { try TokenizerFolder.load(folder.url) } ?? ""
            #expect(message.contains("tokenizer.json") && message.contains(expected), "\(message)")
        }
    }
}

/// The one-line error `load` throws, or nil.
private func failureMessage(_ load: () throws -> Any) -> String? {
    do { _ = try load(); return nil } catch { return "\(error)" }
}
