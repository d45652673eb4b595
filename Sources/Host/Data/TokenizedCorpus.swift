import Foundation

/// The comments of a run, tokenized once per tokenizer: the teacher, a student with its own
/// vocabulary, and every stage after them each read the token ids of their own tokenizer.
///
/// Token ids are only meaningful to the model whose tokenizer made them — a student with an
/// 8,000-entry vocabulary cannot read a 30,522-entry teacher's ids — so nothing in the pipeline
/// keeps "the" sequences; it asks this corpus for a model's.
final class TokenizedCorpus: @unchecked Sendable {
    let texts: [String]
    /// The run's `--max_length`; a model with fewer positions gets its own, shorter limit.
    let maxLength: Int
    /// Makes the ids of one tokenizer (the tokenized-data cache plugs in here); the default encodes.
    private let tokenize: (any Tokenizer, Int) throws -> [[Int]]
    private var byTokenizer: [Key: [[Int]]] = [:]
    private let lock = NSLock()

    /// A tokenizer by its vocabulary's fingerprint (64 bits of its bytes) and size, and its configuration.
    private struct Key: Hashable {
        let vocabularyFingerprint: Int
        let vocabularySize: Int
        let configuration: String
        let maxLength: Int
    }

    init(texts: [String], maxLength: Int, tokenize: ((any Tokenizer, Int) throws -> [[Int]])? = nil) {
        self.texts = texts
        self.maxLength = maxLength
        self.tokenize = tokenize ?? { tokenizer, maxLength in texts.map { tokenizer.encode($0, maxLength: maxLength) } }
    }

    /// The ids of a few texts for one model, without keeping them (predict, serve): cut to
    /// `maxLength` or the model's positions, whichever is fewer.
    static func encode(_ texts: [String], for model: DeployableModel, maxLength: Int) -> [[Int]] {
        let length = min(maxLength, model.maxPositions)
        return texts.map { model.tokenizer.encode($0, maxLength: length) }
    }

    /// Every row's ids ([CLS] … [SEP]) under `tokenizer`, at most `min(maxLength, maxPositions)` long,
    /// made once per tokenizer.
    func sequences(for tokenizer: any Tokenizer, maxPositions: Int) throws -> [[Int]] {
        let length = min(maxLength, maxPositions)
        let key = Key(vocabularyFingerprint: tokenizer.vocabularyFingerprint, vocabularySize: tokenizer.vocabularySize,
                      configuration: tokenizer.configurationKey, maxLength: length)
        lock.lock()
        defer { lock.unlock() }
        if let known = byTokenizer[key] { return known }
        let made = try tokenize(tokenizer, length)
        byTokenizer[key] = made
        return made
    }

    /// Every row's ids under `model`'s own tokenizer, within its positions.
    func sequences(for model: DeployableModel) throws -> [[Int]] {
        try sequences(for: model.tokenizer, maxPositions: model.maxPositions)
    }
}
