/// tokenizer.json's `pre_tokenizer` (other than BertPreTokenizer, which `BertTokenizer` runs): cuts
/// normalized text into the words the model sees one at a time, as Hugging Face `tokenizers` does.
indirect enum PreTokenizer: Sendable {
    /// SentencePiece's spaces: every " " becomes `replacement` ("▁"), one is put in front
    /// (`always`; `first`: only on the text's first word; `never`), and with `split` the text is
    /// cut before every replacement character.
    case metaspace(replacement: Unicode.Scalar, prepend: PrependScheme, split: Bool)
    /// Cut at Unicode white space, which is dropped.
    case whitespaceSplit
    /// Cut around punctuation (ASCII punctuation and the P* categories).
    case punctuation(SplitBehavior)
    case split(TextPattern, SplitBehavior, invert: Bool)
    case sequence([PreTokenizer])

    enum PrependScheme: String, Sendable { case always, first, never }

    /// What happens to a delimiter when text is cut at it (tokenizers' `SplitDelimiterBehavior`).
    enum SplitBehavior: String, Sendable {
        case removed, isolated, mergedWithPrevious = "merged_with_previous", mergedWithNext = "merged_with_next", contiguous
    }

    /// A piece of text and whether it starts where the original text starts (what `first` asks).
    struct Word: Sendable {
        var text: String
        var atStart: Bool
    }

    func split(_ words: [Word]) -> [Word] {
        switch self {
        case .metaspace(let replacement, let prepend, let split):
            return words.flatMap { word -> [Word] in
                var scalars = String.UnicodeScalarView()
                for scalar in word.text.unicodeScalars { scalars.append(scalar == " " ? replacement : scalar) }
                var text = String(scalars)
                // Prepending to an empty text does nothing in tokenizers.
                let wantsPrefix = prepend == .always || (prepend == .first && word.atStart)
                if wantsPrefix, let first = text.unicodeScalars.first, first != replacement {
                    text = String(replacement) + text
                }
                let piece = Word(text: text, atStart: word.atStart)
                return split ? Self.cut(piece, at: .character(replacement), .mergedWithNext, invert: false) : [piece]
            }
        case .whitespaceSplit:
            return words.flatMap { Self.cut($0, where: { $0.properties.isWhitespace }, .removed) }
        case .punctuation(let behavior):
            return words.flatMap { Self.cut($0, where: Self.isPunctuation, behavior) }
        case .split(let pattern, let behavior, let invert):
            return words.flatMap { Self.cut($0, at: pattern, behavior, invert: invert) }
        case .sequence(let steps):
            return steps.reduce(words) { $1.split($0) }
        }
    }

    static func isPunctuation(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.isASCII { return (0x21...0x2F).contains(scalar.value) || (0x3A...0x40).contains(scalar.value)
            || (0x5B...0x60).contains(scalar.value) || (0x7B...0x7E).contains(scalar.value) }
        switch scalar.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
             .finalPunctuation, .otherPunctuation: return true
        default: return false
        }
    }

    /// Cuts at every scalar for which `isDelimiter` holds (each one a delimiter of its own).
    private static func cut(_ word: Word, where isDelimiter: (Unicode.Scalar) -> Bool, _ behavior: SplitBehavior) -> [Word] {
        let scalars = word.text.unicodeScalars
        var pieces: [(Range<String.UnicodeScalarView.Index>, Bool)] = []
        var cursor = scalars.startIndex
        var index = scalars.startIndex
        while index != scalars.endIndex {
            let next = scalars.index(after: index)
            if isDelimiter(scalars[index]) {
                if cursor < index { pieces.append((cursor..<index, false)) }
                pieces.append((index..<next, true))
                cursor = next
            }
            index = next
        }
        if cursor < scalars.endIndex || pieces.isEmpty { pieces.append((cursor..<scalars.endIndex, false)) }
        return assemble(word, pieces, behavior)
    }

    private static func cut(_ word: Word, at pattern: TextPattern, _ behavior: SplitBehavior, invert: Bool) -> [Word] {
        var pieces = pattern.pieces(of: word.text)
        if invert { pieces = pieces.map { ($0.0, !$0.1) } }
        return assemble(word, pieces, behavior)
    }

    /// tokenizers' `NormalizedString::split`: delimiters kept, dropped or merged into a neighbour,
    /// then empty pieces dropped.
    private static func assemble(_ word: Word, _ pieces: [(Range<String.UnicodeScalarView.Index>, Bool)],
                                 _ behavior: SplitBehavior) -> [Word] {
        typealias Span = (range: Range<String.UnicodeScalarView.Index>, removed: Bool)
        var spans: [Span] = []
        switch behavior {
        case .isolated:
            spans = pieces.map { ($0.0, false) }
        case .removed:
            spans = pieces.map { ($0.0, $0.1) }
        case .contiguous:
            var previous = false
            for (range, isMatch) in pieces {
                if isMatch == previous, let last = spans.last {
                    spans[spans.count - 1].range = last.range.lowerBound..<range.upperBound
                } else {
                    spans.append((range, false))
                }
                previous = isMatch
            }
        case .mergedWithPrevious:
            var previous = false
            for (range, isMatch) in pieces {
                if isMatch && !previous, let last = spans.last {
                    spans[spans.count - 1].range = last.range.lowerBound..<range.upperBound
                } else {
                    spans.append((range, false))
                }
                previous = isMatch
            }
        case .mergedWithNext:
            var previous = false
            for (range, isMatch) in pieces.reversed() {
                if isMatch && !previous, let last = spans.last {
                    spans[spans.count - 1].range = range.lowerBound..<last.range.upperBound
                } else {
                    spans.append((range, false))
                }
                previous = isMatch
            }
            spans.reverse()
        }
        let scalars = word.text.unicodeScalars
        return spans.compactMap { span in
            guard !span.removed, !span.range.isEmpty else { return nil }
            return Word(text: String(scalars[span.range]), atStart: word.atStart && span.range.lowerBound == scalars.startIndex)
        }
    }

    /// Reads one pre_tokenizer object of tokenizer.json; `source` names the file in errors.
    static func read(_ json: ExactJSON, source: String) throws -> PreTokenizer {
        func failure(_ problem: String) -> TokenizerError { TokenizerError(file: source, problem: "pre_tokenizer: \(problem)") }
        func behavior(_ value: ExactJSON?, default fallback: SplitBehavior) throws -> SplitBehavior {
            guard let name = value?.string else { return fallback }
            // tokenizers writes the variant names: "Removed", "MergedWithNext", …
            let snake = name.unicodeScalars.enumerated().map { index, scalar in
                scalar.properties.isUppercase ? (index == 0 ? "" : "_") + scalar.properties.lowercaseMapping : String(scalar)
            }.joined()
            guard let known = SplitBehavior(rawValue: snake) else { throw failure("behavior \"\(name)\" is not one of Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous") }
            return known
        }
        let type = json["type"]?.string ?? "?"
        switch type {
        case "Metaspace":
            let replacementText = json["replacement"]?.string ?? "▁"
            guard let replacement = replacementText.unicodeScalars.first, replacementText.unicodeScalars.count == 1 else {
                throw failure("Metaspace replacement must be one character, not \(replacementText.debugDescription)")
            }
            var scheme = PrependScheme.always
            if let name = json["prepend_scheme"]?.string {
                guard let known = PrependScheme(rawValue: name) else { throw failure("Metaspace prepend_scheme \"\(name)\" is not always, first or never") }
                scheme = known
            } else if json["add_prefix_space"]?.bool == false {
                scheme = .never
            }
            return .metaspace(replacement: replacement, prepend: scheme, split: json["split"]?.bool ?? true)
        case "WhitespaceSplit": return .whitespaceSplit
        case "Punctuation": return .punctuation(try behavior(json["behavior"], default: .isolated))
        case "Split":
            guard let pattern = json["pattern"] else { throw failure("Split needs a \"pattern\"") }
            return .split(try TextPattern.read(pattern, source: source), try behavior(json["behavior"], default: .removed),
                          invert: json["invert"]?.bool ?? false)
        case "Sequence":
            guard case .array(let items)? = json["pretokenizers"] else { throw failure("Sequence needs a \"pretokenizers\" array") }
            return .sequence(try items.map { try read($0, source: source) })
        default:
            throw failure("\"\(type)\" is not supported (Metaspace, WhitespaceSplit, Punctuation, Split, Sequence, or BertPreTokenizer with a WordPiece model)")
        }
    }
}
