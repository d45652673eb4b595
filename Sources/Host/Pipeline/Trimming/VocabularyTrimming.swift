import Foundation
import Logging

/// Vocabulary trimming: a multilingual model's embedding table is most of its parameters
/// (xlm-roberta-base: 192 M of 278 M; distilbert-base-multilingual-cased: 92 M of 134 M), and a
/// Bangla comment classifier reads a few thousand of its rows. Trimming keeps the rows of the tokens
/// the training comments use, the special tokens, and optionally the `top_k` most frequent tokens
/// of a further corpus, and rewrites the tokenizer with the new ids (Tokenizer/VocabularyTrim.swift):
///
///   ids of the training comments ∪ special ids ∪ top-K of --corpus ─ sorted ─ kept[i] = old id
///   word_embeddings (V, H) ─ rows kept ─ (K, H); tokenizer entry kept[i] ─ id i
///
/// A text whose tokens were all kept gets the same tokens, hence (the same rows) the same logits.
/// A held-out token outside the kept set is the only thing that changes; the report counts them.
enum VocabularyTrimming {
    struct Report: Sendable, Equatable, Codable {
        var vocabularyBefore: Int
        var vocabularyAfter: Int
        /// Distinct ids the training comments use (special tokens included).
        var trainingTokens: Int
        var parametersBefore: Int
        var parametersAfter: Int
        /// Tokens of the held-out comments, and how many of them are outside the kept vocabulary.
        var heldOutTokens: Int
        var heldOutTokensUnseen: Int
        /// Held-out comments with at least one such token.
        var heldOutTextsTouched: Int
        var heldOutTexts: Int
    }

    /// The ids to keep, ascending: every id of `trainingTexts`, the tokenizer's required ids, and the
    /// `topK` most frequent ids of `corpus` (ties broken by the lower id).
    static func keptIds(tokenizer: any Tokenizer, trainingTexts: [String], corpus: [String] = [], topK: Int = 0) -> [Int] {
        var keep = Set(tokenizer.requiredIds)
        for text in trainingTexts { keep.formUnion(tokenizer.encode(text, maxLength: nil)) }
        if topK > 0, !corpus.isEmpty {
            var counts = [Int](repeating: 0, count: tokenizer.vocabularySize)
            for text in corpus { for id in tokenizer.encode(text, maxLength: nil) where counts.indices.contains(id) { counts[id] += 1 } }
            let ranked = counts.indices.filter { counts[$0] > 0 }.sorted { counts[$0] != counts[$1] ? counts[$0] > counts[$1] : $0 < $1 }
            keep.formUnion(ranked.prefix(topK))
        }
        return keep.filter { $0 >= 0 && $0 < tokenizer.vocabularySize }.sorted()
    }

    /// `classifier` with only the embedding rows `kept` (from `keptIds`) and its tokenizer trimmed
    /// to match, saved into `tokenizerDirectory` (the new classifier copies those files on save).
    static func trim(_ classifier: Classifier, keeping kept: [Int], tokenizerDirectory: URL) throws -> Classifier {
        let tokenizer = try classifier.tokenizer.keeping(kept)
        try tokenizer.save(to: tokenizerDirectory)
        let source = classifier.network
        var shape = source.shape
        shape.vocabSize = kept.count
        let network = SequenceClassifier(shape: shape, head: source.head, numLabels: source.numLabels, pooling: source.pooling,
                                         dropoutSeed: source.dropoutSeed)
        let wordEmbeddings = source.names.wordEmbeddings
        for view in network.store.views {
            guard view.name == wordEmbeddings else {
                network.store.setValues(view.name, from: source.store.tensor(view.name))
                continue
            }
            // (V, H) → (K, H): row i is old row kept[i].
            let width = view.shape[1]
            let from = source.store.pointer(wordEmbeddings), to = network.store.pointer(wordEmbeddings)
            for (row, old) in kept.enumerated() { (to + row * width).update(from: from + old * width, count: width) }
        }
        network.store.frozen = source.store.frozen
        var config = classifier.config
        config.vocabSize = kept.count
        config.padTokenId = tokenizer.padId
        // Other token ids a config names (RoBERTa's bos/eos) follow their tokens.
        for key in ["bos_token_id", "eos_token_id", "sep_token_id", "cls_token_id"] {
            if let old = config.raw[key]?.intValue, let new = kept.firstIndex(of: old) { config.raw[key] = .int(new) }
        }
        let trimmed = Classifier(network: network, config: config, tokenizer: tokenizer,
                                 tokenizerFiles: HuggingFaceDirectory.tokenizerFiles(in: tokenizerDirectory), threshold: classifier.threshold)
        trimmed.maxLength = classifier.maxLength
        return trimmed
    }

    /// What trimming to `kept` does to the held-out comments, and the parameter counts.
    static func report(before: Classifier, after: Classifier, kept: [Int], trainingTokens: Int, heldOutTexts: [String]) -> Report {
        let keptSet = Set(kept)
        var tokens = 0, unseen = 0, touched = 0
        for text in heldOutTexts {
            let ids = before.tokenizer.encode(text, maxLength: nil)
            tokens += ids.count
            let missing = ids.filter { !keptSet.contains($0) }.count
            unseen += missing
            if missing > 0 { touched += 1 }
        }
        return Report(vocabularyBefore: before.tokenizer.vocabularySize, vocabularyAfter: kept.count, trainingTokens: trainingTokens,
                      parametersBefore: before.parameterCount, parametersAfter: after.parameterCount, heldOutTokens: tokens,
                      heldOutTokensUnseen: unseen, heldOutTextsTouched: touched, heldOutTexts: heldOutTexts.count)
    }
}

/// The recipe stage `trim_vocab` (Recipe/Stages/TrimVocab.swift): trims the previous stage's float model to the
/// vocabulary of the training comments of the run (every row but the held-out ones).
struct VocabularyTrimStage: CompressionStage {
    let stage: TrimVocabStage

    func run(_ input: StageInput) throws -> DeployableModel {
        let logger = input.context.logger
        guard let classifier = input.model as? Classifier else {
            throw TrimmingError("\(input.label): vocabulary trimming needs a float model (trim before quantizing), got \(input.model.summary)")
        }
        let context = input.context
        let heldOut = Set(input.baseline.heldOut)
        let texts = context.dataset.texts
        let training = texts.indices.filter { !heldOut.contains($0) }.map { texts[$0] }
        var corpus: [String] = []
        if case let path = stage.corpus, !path.isEmpty {
            corpus = try CommentTexts.load(contentsOf: URL(fileURLWithPath: path)).texts
        }
        let trainingIds = VocabularyTrimming.keptIds(tokenizer: classifier.tokenizer, trainingTexts: training)
        let kept = stage.topK > 0
            ? VocabularyTrimming.keptIds(tokenizer: classifier.tokenizer, trainingTexts: training, corpus: corpus, topK: stage.topK)
            : trainingIds
        let folder = context.outputDirectory.appendingPathComponent("vocabulary_trim_\(context.tag)")
        let trimmed = try VocabularyTrimming.trim(classifier, keeping: kept, tokenizerDirectory: folder.appendingPathComponent("tokenizer"))
        let report = VocabularyTrimming.report(before: classifier, after: trimmed, kept: kept, trainingTokens: trainingIds.count,
                                               heldOutTexts: input.baseline.heldOut.map { texts[$0] })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        try AtomicFile.write(try encoder.encode(report), to: folder.appendingPathComponent("report.json"))
        logger.info("\(input.label): vocabulary \(report.vocabularyBefore) → \(report.vocabularyAfter) tokens (training comments use \(report.trainingTokens)); parameters \(report.parametersBefore) → \(report.parametersAfter); held-out tokens outside it: \(report.heldOutTokensUnseen) of \(report.heldOutTokens), in \(report.heldOutTextsTouched) of \(report.heldOutTexts) comments")
        return trimmed
    }
}

struct TrimmingError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
