import Foundation

/// The text clean-up BERT applies before WordPiece, exactly as Hugging Face `tokenizers` does it
/// (`BertNormalizer` then `BertPreTokenizer`), on Unicode scalars:
///
///   clean text     drop U+0000, U+FFFD and control/format characters; every whitespace → ' '
///   CJK chars      put a space on both sides of each CJK ideograph, so each becomes a word
///   strip accents  NFD, then drop non-spacing marks (Mn) — this also drops Bangla vowel signs ু ূ ৃ,
///                  hasanta ্, candrabindu ঁ and nukta ়
///   lowercase      full Unicode lower-case mapping, one scalar at a time
///   pre-tokenize   split on whitespace, and make every punctuation character a word of its own
///
/// The order (strip before lowercase) is the Rust one, which transformers ≥ 5 uses for BertTokenizer.
struct BertNormalizer: Sendable {
    var cleanText = true
    var handleChineseChars = true
    var stripAccents = false
    var lowercase = false

    /// Normalizes `scalars` (one segment of text, special tokens already cut out) and appends the
    /// result to `output`. Returns true when stripping removed a Bengali-block non-spacing mark.
    @discardableResult
    func normalize(_ scalars: ArraySlice<Unicode.Scalar>, into output: inout [Unicode.Scalar]) -> Bool {
        let start = output.count
        var needsDecomposition = false
        for scalar in scalars {
            var scalar = scalar
            if cleanText {
                // Controls go before whitespace is mapped: U+000B, U+000C and U+0085 are both, and
                // Hugging Face deletes them (joining the words around them) rather than splitting.
                if scalar.value == 0 || scalar.value == 0xFFFD || BertCharacters.isControl(scalar) { continue }
                if BertCharacters.isWhitespace(scalar) { scalar = " " }
            }
            // Nothing below U+00C0 decomposes or is a mark, so pure ASCII text skips the NFD pass.
            if scalar.value >= 0xC0 { needsDecomposition = true }
            if handleChineseChars && BertCharacters.isChinese(scalar) {
                output.append(" "); output.append(scalar); output.append(" ")
            } else {
                output.append(scalar)
            }
        }
        guard stripAccents || lowercase else { return false }

        var strippedBengaliMark = false
        if stripAccents && needsDecomposition {
            // NFD works on the whole segment: canonical reordering of marks crosses scalar boundaries.
            var cleaned = String.UnicodeScalarView()
            cleaned.append(contentsOf: output[start...])
            let decomposed = String(cleaned).decomposedStringWithCanonicalMapping
            output.removeSubrange(start...)
            for scalar in decomposed.unicodeScalars {
                if BertCharacters.isNonspacingMark(scalar) {
                    if (0x0980...0x09FF).contains(scalar.value) { strippedBengaliMark = true }
                    continue
                }
                appendLowercased(scalar, to: &output)
            }
        } else if lowercase {
            // ASCII/Latin-1 only (or no stripping): lowercase in place, growing only for İ-like scalars.
            var i = start
            while i < output.count {
                let scalar = output[i]
                if scalar.value < 0x80 {
                    if scalar.value >= 0x41 && scalar.value <= 0x5A { output[i] = Unicode.Scalar(scalar.value + 32)! }
                    i += 1
                } else if scalar.properties.changesWhenLowercased {
                    let lower = Array(scalar.properties.lowercaseMapping.unicodeScalars)
                    output.replaceSubrange(i...i, with: lower)
                    i += lower.count
                } else {
                    i += 1
                }
            }
        }
        return strippedBengaliMark
    }

    private func appendLowercased(_ scalar: Unicode.Scalar, to output: inout [Unicode.Scalar]) {
        guard lowercase else { output.append(scalar); return }
        if scalar.value < 0x80 {
            let v = scalar.value
            output.append(v >= 0x41 && v <= 0x5A ? Unicode.Scalar(v + 32)! : scalar)
        } else if scalar.properties.changesWhenLowercased {
            output.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
        } else {
            output.append(scalar)
        }
    }

    /// BertPreTokenizer: calls `word` with the range of each word of `text` (whitespace removed,
    /// each punctuation character its own word).
    static func forEachWord(in text: [Unicode.Scalar], _ word: (Range<Int>) -> Void) {
        var wordStart = 0
        for i in text.indices {
            let scalar = text[i]
            if BertCharacters.isWhitespace(scalar) {
                if wordStart < i { word(wordStart..<i) }
                wordStart = i + 1
            } else if BertCharacters.isPunctuation(scalar) {
                if wordStart < i { word(wordStart..<i) }
                word(i..<(i + 1))
                wordStart = i + 1
            }
        }
        if wordStart < text.count { word(wordStart..<text.count) }
    }
}

/// Character classes as Hugging Face `tokenizers` decides them. It takes general categories from the
/// `unicode_categories` crate, whose tables are Unicode 8.0: a control, format, mark or punctuation
/// character assigned later (🥰, the Bengali sandhi mark U+09FE, U+09FD …) is none of those for it, so
/// it is kept as a letter. Whitespace and lower-casing come from Rust's standard library (current Unicode).
enum BertCharacters {
    /// Assigned in Unicode 8.0 or earlier.
    @inline(__always)
    static func knownToUnicode8(_ scalar: Unicode.Scalar) -> Bool {
        guard let age = scalar.properties.age else { return false }
        return age.major < 8 || (age.major == 8 && age.minor == 0)
    }

    // The classes of every Basic Multilingual Plane scalar, looked up once: Unicode property lookups
    // were most of the tokenizer's time, and nearly all text (Bangla included) lives in the BMP.
    private static let controlBit: UInt8 = 1, whitespaceBit: UInt8 = 2, punctuationBit: UInt8 = 4, markBit: UInt8 = 8
    private static let bmpClasses: [UInt8] = (0..<0x10000).map { value in
        guard let scalar = Unicode.Scalar(UInt32(value)) else { return 0 }  // surrogate code points
        var bits: UInt8 = 0
        if computeIsControl(scalar) { bits |= controlBit }
        if computeIsWhitespace(scalar) { bits |= whitespaceBit }
        if computeIsPunctuation(scalar) { bits |= punctuationBit }
        if computeIsNonspacingMark(scalar) { bits |= markBit }
        return bits
    }

    @inline(__always)
    private static func has(_ bit: UInt8, _ scalar: Unicode.Scalar, else compute: (Unicode.Scalar) -> Bool) -> Bool {
        scalar.value < 0x10000 ? bmpClasses.withUnsafeBufferPointer { $0[Int(scalar.value)] & bit != 0 } : compute(scalar)
    }

    /// Dropped by clean-text: Cc, Cf, Co, Cs — except \t \n \r, which count as whitespace.
    @inline(__always)
    static func isControl(_ scalar: Unicode.Scalar) -> Bool { has(controlBit, scalar, else: computeIsControl) }

    /// Rust's `char::is_whitespace`: the Unicode White_Space property.
    @inline(__always)
    static func isWhitespace(_ scalar: Unicode.Scalar) -> Bool { has(whitespaceBit, scalar, else: computeIsWhitespace) }

    /// ASCII symbols `!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~` plus every Unicode P* character.
    @inline(__always)
    static func isPunctuation(_ scalar: Unicode.Scalar) -> Bool { has(punctuationBit, scalar, else: computeIsPunctuation) }

    /// A non-spacing mark (Mn), dropped when stripping accents.
    @inline(__always)
    static func isNonspacingMark(_ scalar: Unicode.Scalar) -> Bool { has(markBit, scalar, else: computeIsNonspacingMark) }

    private static func computeIsControl(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        if v < 0x80 { return (v < 0x20 && v != 0x09 && v != 0x0A && v != 0x0D) || v == 0x7F }
        switch scalar.properties.generalCategory {
        case .control, .privateUse, .surrogate: return true
        case .format: return knownToUnicode8(scalar)
        default: return false
        }
    }

    private static func computeIsWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        if v < 0x80 { return v == 0x20 || (v >= 0x09 && v <= 0x0D) }
        return scalar.properties.isWhitespace
    }

    /// The CJK blocks BERT splits into single characters (not Hangul, Hiragana or Katakana).
    @inline(__always)
    static func isChinese(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F,
             0x2B740...0x2B81F, 0x2B920...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default:
            return false
        }
    }

    private static func computeIsPunctuation(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        if v < 0x80 {
            return (v >= 0x21 && v <= 0x2F) || (v >= 0x3A && v <= 0x40) || (v >= 0x5B && v <= 0x60) || (v >= 0x7B && v <= 0x7E)
        }
        switch scalar.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return knownToUnicode8(scalar)
        default:
            return false
        }
    }

    private static func computeIsNonspacingMark(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value >= 0x300 && scalar.properties.generalCategory == .nonspacingMark && knownToUnicode8(scalar)
    }
}
