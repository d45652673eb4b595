import Foundation
import Logging

/// BERT's WordPiece tokenizer, giving the same ids as Hugging Face (`BertTokenizer` in transformers,
/// `BertNormalizer` + `BertPreTokenizer` + `WordPiece` in tokenizers):
///
///   text ─ special tokens cut out whole ─ normalize ─ split into words ─ WordPiece ─ [CLS] … [SEP]
///
/// Special tokens written in the text ("[SEP]") are matched on the raw text before normalization,
/// as Hugging Face does for its added tokens. Everything works on Unicode scalars (what Rust calls
/// `char`, and what the 100-character word limit counts).
struct BertTokenizer: Sendable {
    /// How text is normalized and which tokens are special; the fields of tokenizer_config.json.
    struct Options: Sendable, Hashable {
        var lowercase = true
        /// nil: strip accents exactly when lower-casing (Hugging Face's `strip_accents: null`).
        var stripAccents: Bool? = nil
        var tokenizeChineseChars = true
        var cleanText = true
        var unkToken = "[UNK]"
        var sepToken = "[SEP]"
        var padToken = "[PAD]"
        var clsToken = "[CLS]"
        var maskToken = "[MASK]"
        var continuingSubwordPrefix = "##"
        var maxInputCharsPerWord = 100
        var modelMaxLength: Int? = nil
        /// Tokens matched whole in the raw text (tokenizer.json's `added_tokens`); nil means the
        /// special tokens above that the vocabulary has.
        var addedTokens: [String]? = nil

        var stripsAccents: Bool { stripAccents ?? lowercase }
    }

    let vocabulary: [String]
    let options: Options
    /// Where the vocabulary came from, for messages.
    let source: String
    /// Receives the one warning about Bangla vowel signs being stripped.
    var logger = Logger(label: "sankshep.tokenizer")

    let padId: Int
    let clsId: Int
    let sepId: Int
    let unkId: Int
    let maskId: Int?

    private let normalizer: BertNormalizer
    private let wordPiece: WordPiece
    /// Added tokens as scalars with their ids, longest first (leftmost-longest matching).
    private let addedTokens: [(scalars: [Unicode.Scalar], id: Int)]
    private let addedTokenFirstScalars: [Unicode.Scalar]
    /// Shared by copies of this tokenizer, so the stripping warning is given once per loaded tokenizer.
    private let strippingWarning = OnceFlag()

    var vocabularySize: Int { vocabulary.count }
    /// A hash of the vocabulary's bytes, entry by entry, made once: what tells two tokenizers' ids
    /// apart cheaply (hashing or comparing the strings themselves normalizes every Bangla entry).
    let vocabularyFingerprint: Int

    /// A tokenizer over `vocabulary` (id i is `vocabulary[i]`) with the standard BERT special tokens.
    /// The vocabulary must contain [UNK], [CLS], [SEP] and [PAD]; use `init(directory:)` for files.
    init(vocabulary: [String], lowercase: Bool, stripAccents: Bool?, tokenizeChineseChars: Bool = true) {
        var options = Options()
        options.lowercase = lowercase
        options.stripAccents = stripAccents
        options.tokenizeChineseChars = tokenizeChineseChars
        do {
            try self.init(vocabulary: vocabulary, options: options, source: "vocabulary")
        } catch {
            preconditionFailure("\(error)")
        }
    }

    /// A tokenizer over `vocabulary`, refusing one that lacks a special token BERT needs.
    /// `source` names the file the vocabulary came from in errors and warnings.
    init(vocabulary: [String], options: Options, source: String) throws {
        guard options.maxInputCharsPerWord > 0 else {
            throw TokenizerError(file: source, problem: "max_input_chars_per_word must be positive, not \(options.maxInputCharsPerWord)")
        }
        // An entry listed twice has two ids, and only one of them can be the one it tokenizes to:
        // refused, byte for byte (entries that differ only by canonical equivalence are distinct).
        var firstLine: [[UInt8]: Int] = [:]
        firstLine.reserveCapacity(vocabulary.count)
        for (index, entry) in vocabulary.enumerated() {
            if let earlier = firstLine.updateValue(index, forKey: Array(entry.utf8)) {
                throw TokenizerError(file: source, problem: "the entry '\(entry.prefix(40))' is listed twice (ids \(earlier) and \(index)); every entry needs one id")
            }
        }
        // The trie, not a [String: Int]: Swift strings compare by canonical equivalence, and a Bangla
        // vocabulary holds entries that differ only by it (ড় U+09DC and ড + ়), each with its own id.
        var wordPiece = WordPiece(tokens: vocabulary,
                                  continuingSubwordPrefix: options.continuingSubwordPrefix,
                                  maxInputCharsPerWord: options.maxInputCharsPerWord)
        let required = [options.unkToken, options.clsToken, options.sepToken, options.padToken]
        let missing = required.filter { wordPiece.id(of: $0) == nil }
        guard missing.isEmpty else {
            throw TokenizerError(file: source, problem: "the vocabulary (\(vocabulary.count) entries) has no "
                + missing.joined(separator: ", ")
                + " — BERT needs [UNK] for unknown words, [CLS]/[SEP] around each text and [PAD] for batches")
        }
        self.vocabulary = vocabulary
        self.options = options
        self.source = source
        var hasher = Hasher()
        for entry in vocabulary {
            hasher.combine(entry.utf8.count)
            for byte in entry.utf8 { hasher.combine(byte) }
        }
        vocabularyFingerprint = hasher.finalize()
        unkId = wordPiece.id(of: options.unkToken)!
        clsId = wordPiece.id(of: options.clsToken)!
        sepId = wordPiece.id(of: options.sepToken)!
        padId = wordPiece.id(of: options.padToken)!
        maskId = wordPiece.id(of: options.maskToken)
        wordPiece.unkId = unkId
        self.wordPiece = wordPiece

        normalizer = BertNormalizer(cleanText: options.cleanText, handleChineseChars: options.tokenizeChineseChars,
                                    stripAccents: options.stripsAccents, lowercase: options.lowercase)

        let specials = options.addedTokens
            ?? [options.padToken, options.unkToken, options.clsToken, options.sepToken, options.maskToken]
        var added: [(scalars: [Unicode.Scalar], id: Int)] = []
        for token in specials where !token.isEmpty {
            guard let id = wordPiece.id(of: token) else { continue }
            if !added.contains(where: { $0.id == id }) { added.append((Array(token.unicodeScalars), id)) }
        }
        addedTokens = added.sorted { $0.scalars.count > $1.scalars.count }
        var firsts: [Unicode.Scalar] = []
        for token in added where !firsts.contains(token.scalars[0]) { firsts.append(token.scalars[0]) }
        addedTokenFirstScalars = firsts
    }

    /// The id of a vocabulary entry, if it has one.
    func id(forToken token: String) -> Int? { wordPiece.id(of: token) }

    /// Word pieces of `text`, without [CLS]/[SEP].
    func tokenize(_ text: String) -> [String] {
        var ids: [Int] = []
        appendIds(of: text, to: &ids)
        return tokens(forIds: ids)
    }

    /// `[CLS] pieces… [SEP]`; with `maxLength`, pieces are cut so the whole fits in it (the two
    /// special tokens are always kept, as Hugging Face's `truncation=True` does).
    func encode(_ text: String, maxLength: Int? = nil) -> [Int] {
        var ids = [clsId]
        appendIds(of: text, to: &ids)
        if let maxLength {
            let keptPieces = max(maxLength - 2, 0)
            if ids.count - 1 > keptPieces { ids.removeSubrange((1 + keptPieces)...) }
        }
        ids.append(sepId)
        return ids
    }

    /// Vocabulary entries of `ids`; an id outside the vocabulary reads as the unknown token.
    func tokens(forIds ids: [Int]) -> [String] {
        ids.map { vocabulary.indices.contains($0) ? vocabulary[$0] : options.unkToken }
    }

    /// Appends the ids of `text`'s pieces: added tokens whole, the rest normalized and split.
    private func appendIds(of text: String, to ids: inout [Int]) {
        let raw = Array(text.unicodeScalars)
        var normalized: [Unicode.Scalar] = []
        normalized.reserveCapacity(raw.count + 8)
        var strippedBengaliMark = false

        func appendSegment(_ segment: Range<Int>) {
            guard !segment.isEmpty else { return }
            normalized.removeAll(keepingCapacity: true)
            if normalizer.normalize(raw[segment], into: &normalized) { strippedBengaliMark = true }
            BertNormalizer.forEachWord(in: normalized) { word in
                wordPiece.appendIds(of: normalized[word], to: &ids)
            }
        }

        var segmentStart = 0
        var i = 0
        while i < raw.count {
            if addedTokenFirstScalars.contains(raw[i]), let (length, id) = addedToken(in: raw, at: i) {
                appendSegment(segmentStart..<i)
                ids.append(id)
                i += length
                segmentStart = i
            } else {
                i += 1
            }
        }
        appendSegment(segmentStart..<raw.count)

        if strippedBengaliMark && strippingWarning.claim() {
            logger.warning("\(source): this tokenizer strips accents (lower-case/strip_accents), which deletes Bangla vowel signs (ু ূ ৃ), hasanta (্), candrabindu (ঁ) and nukta (়) before lookup — as Hugging Face does with this configuration; set \"strip_accents\": false in tokenizer_config.json to keep them")
        }
    }

    /// The longest added token starting at `raw[start]`, as (length in scalars, id).
    private func addedToken(in raw: [Unicode.Scalar], at start: Int) -> (Int, Int)? {
        for token in addedTokens where start + token.scalars.count <= raw.count {
            var matches = true
            for (offset, scalar) in token.scalars.enumerated() where raw[start + offset] != scalar {
                matches = false
                break
            }
            if matches { return (token.scalars.count, token.id) }
        }
        return nil
    }
}

/// True for the first caller only, whichever copy of the owner it comes from.
final class OnceFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var claimed = false

    func claim() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if claimed { return false }
        claimed = true
        return true
    }
}

/// A tokenizer file that cannot be used: names the file and the problem in one line.
struct TokenizerError: Error, CustomStringConvertible {
    let file: String
    let problem: String
    var description: String { oneLine("\(file): \(problem)") }
}
