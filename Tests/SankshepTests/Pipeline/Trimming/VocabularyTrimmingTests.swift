import Foundation
import Testing
@testable import Host

@Suite("Vocabulary trimming keeps every text without unseen tokens exactly as it was")
struct VocabularyTrimmingTests {
    /// 3,000 bundled comments: the first 2,400 "train", the rest are held out.
    static func split() throws -> (train: [String], heldOut: [String]) {
        let texts = Array(try CommentTexts.load(contentsOf: Fixtures.bundledData).texts.prefix(3000))
        return (Array(texts.prefix(2400)), Array(texts.dropFirst(2400)))
    }

    /// Held-out texts whose tokens all survive, and how many do not.
    static func survivors(_ texts: [String], _ tokenizer: any Tokenizer, kept: [Int]) -> (kept: [String], unseen: Int) {
        let keptSet = Set(kept)
        let survivors = texts.filter { tokenizer.encode($0, maxLength: nil).allSatisfy(keptSet.contains) }
        return (survivors, texts.count - survivors.count)
    }

    @Test("the kept ids are the training ids, the special tokens and the corpus's top K, ascending")
    func keptIds() throws {
        let tokenizer = try TokenizerFolder.load(Fixtures.bundledTokenizer)
        let (train, heldOut) = try Self.split()
        let kept = VocabularyTrimming.keptIds(tokenizer: tokenizer, trainingTexts: train)
        let used = Set(train.flatMap { tokenizer.encode($0, maxLength: nil) })
        #expect(Set(kept) == used.union(tokenizer.requiredIds))
        #expect(kept == kept.sorted() && kept.count < tokenizer.vocabularySize)
        let wider = VocabularyTrimming.keptIds(tokenizer: tokenizer, trainingTexts: train, corpus: heldOut, topK: 50)
        var counts: [Int: Int] = [:]
        for text in heldOut { for id in tokenizer.encode(text, maxLength: nil) { counts[id, default: 0] += 1 } }
        let top = counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(50).map(\.key)
        #expect(Set(wider) == Set(kept).union(top))
    }

    @Test("WordPiece: held-out texts without unseen tokens get the same tokens and the same probabilities")
    func wordPieceModel() throws {
        let (train, heldOut) = try Self.split()
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = try Classifier.fromPreset(try #require(ModelPreset.named("student-small")), tokenizerDirectory: Fixtures.bundledTokenizer,
                                              dropout: 0, pooling: .cls, seed: 3)
        let kept = VocabularyTrimming.keptIds(tokenizer: model.tokenizer, trainingTexts: train)
        let trimmed = try VocabularyTrimming.trim(model, keeping: kept, tokenizerDirectory: folder.appendingPathComponent("tokenizer"))
        #expect(trimmed.config.vocabSize == kept.count && trimmed.tokenizer.vocabularySize == kept.count)
        #expect(model.parameterCount - trimmed.parameterCount == (model.config.vocabSize - kept.count) * model.config.hiddenSize)
        let (survivors, unseen) = Self.survivors(heldOut, model.tokenizer, kept: kept)
        #expect(unseen > 0 && survivors.count > 100, "\(unseen) held-out texts have unseen tokens")
        let before = survivors.map { model.tokenizer.encode($0, maxLength: 64) }
        let after = survivors.map { trimmed.tokenizer.encode($0, maxLength: 64) }
        #expect(zip(before, after).allSatisfy { model.tokenizer.tokens(forIds: $0) == trimmed.tokenizer.tokens(forIds: $1) })
        #expect(zip(before, after).allSatisfy { $1.map { kept[$0] } == $0 }, "new id i is old id kept[i]")
        let rows = Array(survivors.indices)
        let p = try model.probabilities(sequences: before, rows: rows, batchSize: 32)
        let q = try trimmed.probabilities(sequences: after, rows: rows, batchSize: 32)
        #expect(p == q, "the same embedding rows give bit-identical probabilities")
        // The trimmed folder loads again to the same ids.
        let reloaded = try TokenizerFolder.load(folder.appendingPathComponent("tokenizer"))
        #expect(reloaded.producesSameIds(as: trimmed.tokenizer))
        let report = VocabularyTrimming.report(before: model, after: trimmed, kept: kept, trainingTokens: kept.count, heldOutTexts: heldOut)
        #expect(report.heldOutTextsTouched == unseen && report.heldOutTokensUnseen >= unseen)
    }

    @Test("WordPiece and DistilBERT: transformers loads the trimmed folder, same tokens and logits within 1e-5",
          .enabled(if: PythonEnvironment.available), arguments: ["bert-tiny", "distilbert-tiny"])
    func transformersLoadsTrimmedFolder(fixture: String) throws {
        let (train, heldOut) = try Self.split()
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = try Classifier.load(from: Fixtures.url(fixture))
        let kept = VocabularyTrimming.keptIds(tokenizer: model.tokenizer, trainingTexts: train)
        let trimmed = try VocabularyTrimming.trim(model, keeping: kept, tokenizerDirectory: folder.appendingPathComponent("tokenizer"))
        try model.save(to: folder.appendingPathComponent("original"))
        try trimmed.save(to: folder.appendingPathComponent("trimmed"))
        let texts = folder.appendingPathComponent("texts.json")
        try JSONEncoder().encode(Array(heldOut.prefix(300))).write(to: texts)
        let result = try PythonEnvironment.run("check_trimmed_vocabulary.py", [folder.appendingPathComponent("original").path,
                                                                               folder.appendingPathComponent("trimmed").path, texts.path])
        #expect(result.status == 0, "\(result.standardOutput) \(result.standardError)")
        let summary = try JSONDecoder().decode([String: Double].self, from: Data(result.standardOutput.utf8))
        #expect(summary["vocab_after"] == Double(kept.count) && (summary["compared"] ?? 0) > 100)
    }

    /// A small random XLM-R or ALBERT classifier made by transformers around a Unigram fixture tokenizer.
    static let makeModel = """
        import shutil, sys, torch
        from transformers import AlbertConfig, AlbertForSequenceClassification, XLMRobertaConfig, XLMRobertaForSequenceClassification
        kind, tokenizer, out = sys.argv[1:4]
        torch.manual_seed(0)
        if kind == "xlmr":
            model = XLMRobertaForSequenceClassification(XLMRobertaConfig(vocab_size=1002, hidden_size=32, num_hidden_layers=2,
                num_attention_heads=2, intermediate_size=64, max_position_embeddings=130, type_vocab_size=1, num_labels=1,
                pad_token_id=1, bos_token_id=0, eos_token_id=2))
        else:
            model = AlbertForSequenceClassification(AlbertConfig(vocab_size=800, embedding_size=16, hidden_size=32,
                num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, max_position_embeddings=130, num_labels=1,
                pad_token_id=0))
        model.save_pretrained(out)
        for name in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(f"{tokenizer}/{name}", out)
        """

    @Test("XLM-R and ALBERT: transformers loads the trimmed folder, same tokens and logits within 1e-5",
          .enabled(if: PythonEnvironment.available), arguments: [("xlmr", "xlmr-nmt-nfkc-1000"), ("albert", "albert-nfkc-cf-800")])
    func sentencePieceModels(kind: String, fixture: String) throws {
        let (train, heldOut) = try Self.split()
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let original = folder.appendingPathComponent("original")
        let made = try PythonEnvironment.run("-c", [Self.makeModel, kind, Fixtures.url("unigram/\(fixture)").path, original.path])
        try #require(made.status == 0, "\(made.standardError)")
        let model = try Classifier.load(from: original)
        let kept = VocabularyTrimming.keptIds(tokenizer: model.tokenizer, trainingTexts: Array(train.prefix(600)))
        let trimmed = try VocabularyTrimming.trim(model, keeping: kept, tokenizerDirectory: folder.appendingPathComponent("tokenizer"))
        try trimmed.save(to: folder.appendingPathComponent("trimmed"))
        let texts = folder.appendingPathComponent("texts.json")
        try JSONEncoder().encode(Array(heldOut.prefix(300))).write(to: texts)
        let result = try PythonEnvironment.run("check_trimmed_vocabulary.py", [original.path, folder.appendingPathComponent("trimmed").path, texts.path])
        #expect(result.status == 0, "\(result.standardOutput) \(result.standardError)")
        let summary = try JSONDecoder().decode([String: Double].self, from: Data(result.standardOutput.utf8))
        #expect(summary["vocab_after"] == Double(kept.count) && (summary["compared"] ?? 0) > 20)
    }

    @Test("Unigram: the trimmed piece table gives the same tokens on every held-out text without unseen pieces, in Sankshep and in transformers",
          .enabled(if: PythonEnvironment.available), arguments: unigramFixtures)
    func unigramTokenizer(fixture: String) throws {
        let (train, heldOut) = try Self.split()
        let tokenizer = try TokenizerFolder.load(Fixtures.url("unigram/\(fixture)"))
        let kept = VocabularyTrimming.keptIds(tokenizer: tokenizer, trainingTexts: Array(train.prefix(600)))
        let trimmed = try tokenizer.keeping(kept)
        let folder = try TemporaryDirectory()
        try trimmed.save(to: folder.url)
        let (survivors, unseen) = Self.survivors(heldOut, tokenizer, kept: kept)
        #expect(unseen > 0 && !survivors.isEmpty)
        for text in survivors {
            #expect(tokenizer.tokens(forIds: tokenizer.encode(text, maxLength: nil)) == trimmed.tokens(forIds: trimmed.encode(text, maxLength: nil)),
                    "\(text.debugDescription)")
        }
        // transformers reads the rewritten tokenizer.json to the ids Sankshep gives, unseen pieces or not.
        let reference = try UnigramReference.load([folder.url], comments: 3000)
        let wrong = reference.filter { trimmed.encode($0.text, maxLength: nil) != $0.ids }
        #expect(!reference.isEmpty && wrong.isEmpty, "\(wrong.count) differ, first: \(wrong.prefix(2).map(\.text))")
        #expect(trimmed.vocabularySize == kept.count)
    }
}
