import Foundation

/// tokenizer.json's `normalizer` (other than BertNormalizer, which `BertTokenizer` runs), applied as
/// Hugging Face `tokenizers` applies it to the whole text between added tokens.
indirect enum TextNormalizer: Sendable {
    case precompiled(PrecompiledCharsmap)
    /// Unicode normalization forms (Foundation's, which follow the same Unicode tables as Python's
    /// `unicodedata` for the scripts of the bundled data; a test compares them).
    case nfc, nfd, nfkc, nfkd
    case lowercase
    /// Every match of a literal string or a regular expression replaced by `content`.
    case replace(TextPattern, content: String)
    case strip(left: Bool, right: Bool)
    /// Drops combining marks (general categories Mn, Mc, Me).
    case stripAccents
    case sequence([TextNormalizer])

    func normalize(_ text: String) -> String {
        switch self {
        case .precompiled(let charsmap): return charsmap.normalize(text)
        case .nfc: return text.precomposedStringWithCanonicalMapping
        case .nfd: return text.decomposedStringWithCanonicalMapping
        case .nfkc: return text.precomposedStringWithCompatibilityMapping
        case .nfkd: return text.decomposedStringWithCompatibilityMapping
        case .lowercase:
            // Character by character, without context (no final-sigma rule), as Rust's char::to_lowercase.
            var scalars = String.UnicodeScalarView()
            for scalar in text.unicodeScalars { scalars.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars) }
            return String(scalars)
        case .replace(let pattern, let content):
            var out = ""
            for (range, isMatch) in pattern.pieces(of: text) { out += isMatch ? content : String(text.unicodeScalars[range]) }
            return out
        case .strip(let left, let right):
            var scalars = Substring.UnicodeScalarView(text.unicodeScalars)
            if left { while let first = scalars.first, first.properties.isWhitespace { scalars.removeFirst() } }
            if right { while let last = scalars.last, last.properties.isWhitespace { scalars.removeLast() } }
            return String(String.UnicodeScalarView(scalars))
        case .stripAccents:
            var scalars = String.UnicodeScalarView()
            for scalar in text.unicodeScalars where !Self.isMark(scalar) { scalars.append(scalar) }
            return String(scalars)
        case .sequence(let normalizers):
            return normalizers.reduce(text) { $1.normalize($0) }
        }
    }

    static func isMark(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark: true
        default: false
        }
    }

    /// Reads one normalizer object of tokenizer.json; `source` names the file in errors.
    static func read(_ json: ExactJSON, source: String) throws -> TextNormalizer {
        func failure(_ problem: String) -> TokenizerError { TokenizerError(file: source, problem: "normalizer: \(problem)") }
        let type = json["type"]?.string ?? "?"
        switch type {
        case "Precompiled":
            guard let charsmap = json["precompiled_charsmap"]?.string else {
                // transformers writes null for a model whose charsmap is empty (identity).
                return .sequence([])
            }
            return .precompiled(try PrecompiledCharsmap(base64: charsmap, source: source))
        case "NFC": return .nfc
        case "NFD": return .nfd
        case "NFKC": return .nfkc
        case "NFKD": return .nfkd
        case "Lowercase": return .lowercase
        case "StripAccents": return .stripAccents
        case "Strip":
            return .strip(left: json["strip_left"]?.bool ?? true, right: json["strip_right"]?.bool ?? true)
        case "Replace":
            guard let pattern = json["pattern"], let content = json["content"]?.string else {
                throw failure("Replace needs a \"pattern\" and a string \"content\"")
            }
            return .replace(try TextPattern.read(pattern, source: source), content: content)
        case "Sequence":
            guard case .array(let items)? = json["normalizers"] else { throw failure("Sequence needs a \"normalizers\" array") }
            return .sequence(try items.map { try read($0, source: source) })
        default:
            throw failure("\"\(type)\" is not supported (Precompiled, NFC, NFD, NFKC, NFKD, Lowercase, Replace, Strip, StripAccents, Sequence, or BertNormalizer with a WordPiece model)")
        }
    }
}

/// What Replace and Split look for: a literal string or a regular expression (tokenizers uses
/// Oniguruma; the patterns these checkpoints ship — runs of spaces, quotes, punctuation classes —
/// mean the same in ICU's syntax, which NSRegularExpression reads).
struct TextPattern: Sendable {
    let literal: String?
    private let regex: NSRegularExpressionBox?

    static func read(_ json: ExactJSON, source: String) throws -> TextPattern {
        if let literal = json["String"]?.string { return TextPattern(literal: literal, regex: nil) }
        if let pattern = json["Regex"]?.string {
            do {
                return TextPattern(literal: nil, regex: NSRegularExpressionBox(try NSRegularExpression(pattern: pattern)))
            } catch {
                throw TokenizerError(file: source, problem: "the regular expression \(pattern.debugDescription) does not compile")
            }
        }
        throw TokenizerError(file: source, problem: "a pattern must be {\"String\": …} or {\"Regex\": …}")
    }

    static func character(_ scalar: Unicode.Scalar) -> TextPattern { TextPattern(literal: String(scalar), regex: nil) }

    /// `text` cut into consecutive ranges of its scalars, each a match or the text between two;
    /// empty ranges left out (an empty text is one empty non-match, as tokenizers gives).
    func pieces(of text: String) -> [(Range<String.UnicodeScalarView.Index>, Bool)] {
        var matches: [Range<String.UnicodeScalarView.Index>] = []
        let scalars = text.unicodeScalars
        if let literal, !literal.isEmpty {
            let needle = Array(literal.unicodeScalars)
            var index = scalars.startIndex
            while index != scalars.endIndex {
                var probe = index
                var matched = true
                for scalar in needle {
                    guard probe != scalars.endIndex, scalars[probe] == scalar else { matched = false; break }
                    probe = scalars.index(after: probe)
                }
                if matched {
                    matches.append(index..<probe)
                    index = probe
                } else {
                    index = scalars.index(after: index)
                }
            }
        } else if let regex {
            let whole = NSRange(text.startIndex..<text.endIndex, in: text)
            for result in regex.value.matches(in: text, range: whole) where result.range.length > 0 {
                if let range = Range(result.range, in: text), let lower = range.lowerBound.samePosition(in: scalars),
                   let upper = range.upperBound.samePosition(in: scalars) {
                    matches.append(lower..<upper)
                }
            }
        }
        var pieces: [(Range<String.UnicodeScalarView.Index>, Bool)] = []
        var cursor = scalars.startIndex
        for match in matches {
            if cursor < match.lowerBound { pieces.append((cursor..<match.lowerBound, false)) }
            pieces.append((match, true))
            cursor = match.upperBound
        }
        if cursor < scalars.endIndex || pieces.isEmpty { pieces.append((cursor..<scalars.endIndex, false)) }
        return pieces
    }
}

/// NSRegularExpression is immutable and thread-safe once made.
final class NSRegularExpressionBox: @unchecked Sendable {
    let value: NSRegularExpression
    init(_ value: NSRegularExpression) { self.value = value }
}
