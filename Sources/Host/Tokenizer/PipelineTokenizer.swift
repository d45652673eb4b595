import Foundation

/// A tokenizer.json pipeline as Hugging Face `tokenizers` runs it, for the SentencePiece (Unigram)
/// tokenizers of XLM-RoBERTa, CamemBERT and ALBERT:
///
///   text ─ added tokens cut out whole ─ normalizer ─ pre-tokenizer ─ Unigram per word
///        ─ truncation ─ post-processor (<s> … </s>, [CLS] … [SEP])
///
/// Special tokens are named by tokenizer_config.json when it is beside tokenizer.json (as
/// transformers reads them), else found in the post-processor and the added tokens.
struct PipelineTokenizer: Sendable {
    let source: String
    let unigram: Unigram
    let normalizer: TextNormalizer?
    let preTokenizer: PreTokenizer?
    /// Ids the post-processor puts before and after one text.
    let prefix: [Int]
    let suffix: [Int]
    /// tokenizer.json's own truncation (used when `encode` is given no length), and its side.
    let fileMaxLength: Int?
    let truncatesLeft: Bool
    /// Added tokens matched whole in the raw text, longest first: scalars, id, and whether white
    /// space before (lstrip) / after (rstrip) them is swallowed.
    private let addedTokens: [(scalars: [Unicode.Scalar], id: Int, lstrip: Bool, rstrip: Bool)]
    let vocabulary: [String]
    let padId: Int
    let clsId: Int
    let sepId: Int
    let unkId: Int
    let maskId: Int?
    let vocabularyFingerprint: Int
    let configurationKey: String
    /// The files as read, written again by `save` (tokenizer_config.json may be absent).
    let tokenizerJSON: ExactJSON
    let configJSON: ExactJSON?

    var vocabularySize: Int { vocabulary.count }

    /// tokenizer.json (already parsed: `root`, from `file`) with an optional tokenizer_config.json.
    init(tokenizerJSON root: ExactJSON, file: URL, configFile: URL?) throws {
        try self.init(tokenizerJSON: root, config: configFile.map(BertTokenizer.parseJSON), source: file.path)
    }

    /// tokenizer.json and tokenizer_config.json as parsed; `source` names them in errors.
    init(tokenizerJSON root: ExactJSON, config: ExactJSON?, source: String) throws {
        func failure(_ problem: String) -> TokenizerError { TokenizerError(file: source, problem: problem) }

        guard let model = root["model"], model["type"]?.string == "Unigram" else { throw failure("model is not Unigram") }
        guard case .array(let entries)? = model["vocab"] else { throw failure("model.vocab is not an array of [piece, score]") }
        var pieces: [String] = []
        var scores: [Double] = []
        pieces.reserveCapacity(entries.count)
        scores.reserveCapacity(entries.count)
        for (index, entry) in entries.enumerated() {
            guard case .array(let pair) = entry, pair.count == 2, let piece = pair[0].string, case .number(let score) = pair[1] else {
                throw failure("model.vocab entry \(index) is not [piece, score]")
            }
            pieces.append(piece)
            scores.append(score)
        }
        guard let unkId = model["unk_id"]?.int else {
            throw failure("model.unk_id is missing: a Unigram model without an unknown piece cannot encode every text")
        }
        let unigram = try Unigram(pieces: pieces, scores: scores, unkId: unkId, byteFallback: model["byte_fallback"]?.bool ?? false,
                                  source: source)
        self.unigram = unigram
        self.unkId = unkId

        switch root["normalizer"] {
        case nil, .null?: normalizer = nil
        case let json?: normalizer = try TextNormalizer.read(json, source: source)
        }
        switch root["pre_tokenizer"] {
        case nil, .null?: preTokenizer = nil
        case let json?: preTokenizer = try PreTokenizer.read(json, source: source)
        }

        // Added tokens: ids past the model's pieces extend the vocabulary.
        var vocabulary = pieces
        var added: [(scalars: [Unicode.Scalar], id: Int, lstrip: Bool, rstrip: Bool)] = []
        if case .array(let tokens)? = root["added_tokens"] {
            for token in tokens {
                guard let id = token["id"]?.int, id >= 0, let content = token["content"]?.string else {
                    throw failure("an added_tokens entry lacks an integer \"id\" or a \"content\"")
                }
                if id >= vocabulary.count {
                    guard id < vocabulary.count + tokens.count else { throw failure("added token \(content.debugDescription) has id \(id), past the vocabulary") }
                    vocabulary += Array(repeating: "", count: id + 1 - vocabulary.count)
                    vocabulary[id] = content
                }
                if !content.isEmpty {
                    added.append((Array(content.unicodeScalars), id, token["lstrip"]?.bool ?? false, token["rstrip"]?.bool ?? false))
                }
            }
        }
        addedTokens = added.sorted { $0.scalars.count > $1.scalars.count }
        self.vocabulary = vocabulary
        let lookUp: (String) -> Int? = { name in
            if let entry = added.first(where: { $0.scalars.elementsEqual(name.unicodeScalars) }) { return entry.id }
            return unigram.id(of: name)
        }

        // The post-processor's ids around one text.
        var prefix: [Int] = [], suffix: [Int] = []
        if let processor = root["post_processor"], !processor.isNull {
            (prefix, suffix) = try Self.readPostProcessor(processor, lookUp: lookUp, failure: failure)
        }
        self.prefix = prefix
        self.suffix = suffix

        if let truncation = root["truncation"], !truncation.isNull {
            fileMaxLength = truncation["max_length"]?.int
            truncatesLeft = truncation["direction"]?.string == "Left"
        } else {
            fileMaxLength = nil
            truncatesLeft = config?["truncation_side"]?.string == "left"
        }

        // Special tokens: tokenizer_config.json names them; else the post-processor and usual names.
        func configured(_ key: String) -> String? {
            guard let value = config?[key] else { return nil }
            return value.string ?? value["content"]?.string
        }
        func special(_ key: String, _ usual: [String]) -> Int? {
            if let name = configured(key) { return lookUp(name) }
            return usual.lazy.compactMap(lookUp).first
        }
        guard let cls = special("cls_token", ["<s>", "[CLS]"]) ?? prefix.first,
              let sep = special("sep_token", ["</s>", "[SEP]"]) ?? suffix.last else {
            throw failure("no classification and separator tokens (cls_token/sep_token in tokenizer_config.json, or a post_processor)")
        }
        guard let pad = special("pad_token", ["<pad>", "[PAD]"]) ?? root["padding"]?["pad_id"]?.int else {
            throw failure("no padding token (pad_token in tokenizer_config.json, padding.pad_id, or a <pad> piece)")
        }
        clsId = cls
        sepId = sep
        padId = pad
        maskId = special("mask_token", ["<mask>", "[MASK]"])

        var hasher = Hasher()
        for (index, entry) in vocabulary.enumerated() {
            hasher.combine(entry.utf8.count)
            for byte in entry.utf8 { hasher.combine(byte) }
            if index < scores.count { hasher.combine(scores[index].bitPattern) }
        }
        vocabularyFingerprint = hasher.finalize()
        // Everything in tokenizer.json but the pieces, plus the special ids.
        var rest = root
        if case .object(var members) = rest, let modelIndex = members.firstIndex(where: { $0.key == "model" }),
           case .object(var modelMembers) = members[modelIndex].value {
            modelMembers.removeAll { $0.key == "vocab" }
            members[modelIndex].value = .object(modelMembers)
            rest = .object(members)
        }
        configurationKey = "unigram \(rest.serialized()) cls \(cls) sep \(sep) pad \(pad) left \(truncatesLeft)"
        tokenizerJSON = root
        configJSON = config
        self.source = source
    }

    /// TemplateProcessing's `single` template, RobertaProcessing's / BertProcessing's `cls` and
    /// `sep`: the ids before and after one sequence.
    private static func readPostProcessor(_ json: ExactJSON, lookUp: (String) -> Int?,
                                          failure: (String) -> TokenizerError) throws -> ([Int], [Int]) {
        let type = json["type"]?.string ?? "?"
        switch type {
        case "TemplateProcessing":
            guard case .array(let single)? = json["single"] else { throw failure("post_processor TemplateProcessing has no \"single\" template") }
            var prefix: [Int] = [], suffix: [Int] = []
            var seenSequence = false
            for piece in single {
                if piece["Sequence"] != nil { seenSequence = true; continue }
                guard let name = piece["SpecialToken"]?["id"]?.string else { throw failure("post_processor: a template piece is neither Sequence nor SpecialToken") }
                var ids: [Int] = []
                if case .array(let listed)? = json["special_tokens"]?[name]?["ids"] {
                    ids = listed.compactMap(\.int)
                } else if let id = lookUp(name) {
                    ids = [id]
                } else {
                    throw failure("post_processor: special token \(name.debugDescription) has no id")
                }
                if seenSequence { suffix += ids } else { prefix += ids }
            }
            return (prefix, suffix)
        case "RobertaProcessing", "BertProcessing":
            guard case .array(let cls)? = json["cls"], cls.count == 2, let clsId = cls[1].int,
                  case .array(let sep)? = json["sep"], sep.count == 2, let sepId = sep[1].int else {
                throw failure("post_processor \(type) needs \"cls\" and \"sep\" as [token, id]")
            }
            return ([clsId], [sepId])
        case "Sequence":
            guard case .array(let steps)? = json["processors"] else { throw failure("post_processor Sequence has no \"processors\"") }
            var prefix: [Int] = [], suffix: [Int] = []
            for step in steps where ["TemplateProcessing", "RobertaProcessing", "BertProcessing"].contains(step["type"]?.string ?? "") {
                let (p, s) = try readPostProcessor(step, lookUp: lookUp, failure: failure)
                prefix = p + prefix
                suffix += s
            }
            return (prefix, suffix)
        case "ByteLevel":
            return ([], [])
        default:
            throw failure("post_processor \"\(type)\" is not supported (TemplateProcessing, RobertaProcessing, BertProcessing, Sequence)")
        }
    }

    /// The ids of `text`'s pieces, without the post-processor's.
    func contentIds(of text: String) -> [Int] {
        let raw = Array(text.unicodeScalars)
        var ids: [Int] = []
        func appendSegment(_ segment: Range<Int>) {
            guard !segment.isEmpty else { return }
            var scalars = String.UnicodeScalarView()
            scalars.append(contentsOf: raw[segment])
            var normalized = String(scalars)
            if let normalizer { normalized = normalizer.normalize(normalized) }
            guard !normalized.isEmpty else { return }
            var words = [PreTokenizer.Word(text: normalized, atStart: segment.lowerBound == 0)]
            if let preTokenizer { words = preTokenizer.split(words) }
            for word in words { unigram.appendIds(of: word.text, to: &ids) }
        }
        var segmentStart = 0
        var i = 0
        while i < raw.count {
            if let (start, end, id) = addedToken(in: raw, at: i, after: segmentStart) {
                appendSegment(segmentStart..<start)
                ids.append(id)
                i = end
                segmentStart = end
            } else {
                i += 1
            }
        }
        appendSegment(segmentStart..<raw.count)
        return ids
    }

    /// The longest added token at `raw[index]`, as (start, end, id) with swallowed white space
    /// (lstrip back to `floor`, rstrip forward) included in start..<end.
    private func addedToken(in raw: [Unicode.Scalar], at index: Int, after floor: Int) -> (Int, Int, Int)? {
        for token in addedTokens where index + token.scalars.count <= raw.count {
            guard raw[index..<(index + token.scalars.count)].elementsEqual(token.scalars) else { continue }
            var start = index, end = index + token.scalars.count
            if token.lstrip { while start > floor, raw[start - 1].properties.isWhitespace { start -= 1 } }
            if token.rstrip { while end < raw.count, raw[end].properties.isWhitespace { end += 1 } }
            return (start, end, token.id)
        }
        return nil
    }
}

extension PipelineTokenizer: Tokenizer {
    func id(forToken token: String) -> Int? {
        if let added = addedTokens.first(where: { $0.scalars.elementsEqual(token.unicodeScalars) }) { return added.id }
        return unigram.id(of: token)
    }

    func tokenize(_ text: String) -> [String] { tokens(forIds: contentIds(of: text)) }

    func encode(_ text: String, maxLength: Int?) -> [Int] {
        var ids = contentIds(of: text)
        if let limit = maxLength ?? fileMaxLength {
            let kept = max(limit - prefix.count - suffix.count, 0)
            if ids.count > kept {
                if truncatesLeft { ids.removeFirst(ids.count - kept) } else { ids.removeLast(ids.count - kept) }
            }
        }
        return prefix + ids + suffix
    }

    func tokens(forIds ids: [Int]) -> [String] {
        ids.map { vocabulary.indices.contains($0) ? vocabulary[$0] : vocabulary[unkId] }
    }

    /// tokenizer.json as read (or as trimming rewrote it) and tokenizer_config.json when there was one.
    func save(to directory: URL) throws {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw TokenizerError(file: directory.path, problem: "cannot create the folder (\(error.localizedDescription))")
        }
        try BertTokenizer.write(Data(tokenizerJSON.serialized().utf8), to: directory.appendingPathComponent("tokenizer.json"))
        if let configJSON {
            try BertTokenizer.write(Data(configJSON.serialized().utf8), to: directory.appendingPathComponent("tokenizer_config.json"))
        }
    }
}
