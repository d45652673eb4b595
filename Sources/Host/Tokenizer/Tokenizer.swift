import Foundation

/// What the rest of Sankshep asks of a tokenizer, whichever model it runs: BERT's WordPiece
/// (`BertTokenizer`: vocab.txt, or tokenizer.json with a WordPiece model) or a `tokenizers` pipeline
/// from tokenizer.json (`PipelineTokenizer`: the Unigram model of SentencePiece checkpoints such as
/// XLM-RoBERTa and ALBERT). `TokenizerFolder.load` picks the one a model folder holds.
///
/// Ids are the rows of the model's embedding table; `encode` gives them with the model's special
/// tokens around the text ([CLS] … [SEP], <s> … </s>), as transformers' `tokenizer(text)` does.
protocol Tokenizer: Sendable {
    /// The file the tokenizer came from, for messages.
    var source: String { get }
    /// Ids run over 0..<vocabularySize (added tokens included).
    var vocabularySize: Int { get }
    /// A hash of the vocabulary (and for Unigram, the piece scores), made once at load: what tells
    /// two tokenizers' ids apart cheaply.
    var vocabularyFingerprint: Int { get }
    /// Everything besides the vocabulary that decides the ids (normalization, pre-tokenization,
    /// special tokens), as text: with the vocabulary it keys the tokenized-data caches.
    var configurationKey: String { get }
    /// The token of every id, in id order.
    var vocabulary: [String] { get }

    var padId: Int { get }
    var clsId: Int { get }
    var sepId: Int { get }
    var unkId: Int { get }
    var maskId: Int? { get }

    /// The id of a vocabulary entry, if it has one.
    func id(forToken token: String) -> Int?
    /// The tokens of `text`, without special tokens around it.
    func tokenize(_ text: String) -> [String]
    /// The ids of `text` with the model's special tokens; with `maxLength`, the text's tokens are cut
    /// so the whole fits in it (the special tokens are always kept, as `truncation=True` does).
    func encode(_ text: String, maxLength: Int?) -> [Int]
    /// Vocabulary entries of `ids`; an id outside the vocabulary reads as the unknown token.
    func tokens(forIds ids: [Int]) -> [String]
    /// Writes the tokenizer's files (atomically) into `directory`, which transformers'
    /// `AutoTokenizer.from_pretrained` and `TokenizerFolder.load` both load to the same ids.
    func save(to directory: URL) throws

    /// Ids every trimmed vocabulary keeps, whatever the texts use (special and added tokens).
    var requiredIds: [Int] { get }
    /// The same tokenizer with only the entries `ids` (ascending, distinct), numbered 0..<ids.count
    /// in that order (Tokenizer/VocabularyTrim.swift).
    func keeping(_ ids: [Int]) throws -> any Tokenizer
}

extension Tokenizer {
    /// Whether `other` turns every text into the same ids: same kind, same vocabulary byte for
    /// byte, same configuration.
    func producesSameIds(as other: any Tokenizer) -> Bool {
        type(of: self) == type(of: other)
            && vocabularySize == other.vocabularySize
            && vocabularyFingerprint == other.vocabularyFingerprint
            && configurationKey == other.configurationKey
            && vocabulary.elementsEqual(other.vocabulary) { $0.utf8.elementsEqual($1.utf8) }
    }
}

/// Finding the tokenizer in a model folder.
enum TokenizerFolder {
    /// The tokenizer of a Hugging Face model folder, as transformers' `AutoTokenizer` reads it:
    /// - vocab.txt with tokenizer_config.json, or vocab.txt alone: BERT's WordPiece (`BertTokenizer`);
    /// - tokenizer.json: its `model.type` decides — WordPiece (BertNormalizer + BertPreTokenizer) is
    ///   `BertTokenizer`, Unigram is the `tokenizers` pipeline (`PipelineTokenizer`).
    static func load(_ directory: URL) throws -> any Tokenizer {
        let fileManager = FileManager.default
        let vocabFile = directory.appendingPathComponent("vocab.txt")
        let configFile = directory.appendingPathComponent("tokenizer_config.json")
        let jsonFile = directory.appendingPathComponent("tokenizer.json")
        let hasVocab = fileManager.fileExists(atPath: vocabFile.path)
        let hasConfig = fileManager.fileExists(atPath: configFile.path)
        let hasJSON = fileManager.fileExists(atPath: jsonFile.path)
        if hasVocab && (hasConfig || !hasJSON) {
            return try BertTokenizer(vocabFile: vocabFile, configFile: hasConfig ? configFile : nil)
        }
        guard hasJSON else {
            let sentencePiece = ["sentencepiece.bpe.model", "spiece.model", "tokenizer.model"]
                .first { fileManager.fileExists(atPath: directory.appendingPathComponent($0).path) }
            if let sentencePiece {
                throw TokenizerError(file: directory.path, problem: "has \(sentencePiece) but no tokenizer.json; write one with transformers: AutoTokenizer.from_pretrained(folder).save_pretrained(folder)")
            }
            throw TokenizerError(file: directory.path, problem: "neither vocab.txt nor tokenizer.json is here, so there is no tokenizer to load")
        }
        let root = try BertTokenizer.parseJSON(jsonFile)
        let type = root["model"]?["type"]?.string
        switch type {
        case "WordPiece", nil:
            return try BertTokenizer(tokenizerJSON: root, file: jsonFile, configFile: hasConfig ? configFile : nil)
        case "Unigram":
            return try PipelineTokenizer(tokenizerJSON: root, file: jsonFile, configFile: hasConfig ? configFile : nil)
        default:
            throw TokenizerError(file: jsonFile.path, problem: "model \"\(type ?? "?")\" is not supported (WordPiece or Unigram)")
        }
    }
}

extension BertTokenizer: Tokenizer {
    var configurationKey: String { "\(options)" }
}
