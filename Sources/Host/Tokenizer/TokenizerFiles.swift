import Foundation

/// Loading and saving a BERT tokenizer in Hugging Face's formats:
///   vocab.txt              one entry a line, the line number is the id
///   tokenizer_config.json  do_lower_case, strip_accents, tokenize_chinese_chars, special tokens
///   tokenizer.json         the `tokenizers` pipeline: BertNormalizer, BertPreTokenizer, WordPiece + vocab
extension BertTokenizer {
    /// Loads a tokenizer folder the way Hugging Face reads it:
    /// - vocab.txt + tokenizer_config.json: the classic pair;
    /// - tokenizer.json (no config beside vocab.txt): self-describing; a tokenizer_config.json next
    ///   to it overrides its normalizer settings, as transformers' `BertTokenizer` kwargs do;
    /// - vocab.txt alone (sagorsarker/bangla-bert-base): BertTokenizer's defaults, which lower-case
    ///   and strip accents.
    init(directory: URL) throws {
        let fileManager = FileManager.default
        let vocabFile = directory.appendingPathComponent("vocab.txt")
        let configFile = directory.appendingPathComponent("tokenizer_config.json")
        let jsonFile = directory.appendingPathComponent("tokenizer.json")
        let hasVocab = fileManager.fileExists(atPath: vocabFile.path)
        let hasConfig = fileManager.fileExists(atPath: configFile.path)
        let hasJSON = fileManager.fileExists(atPath: jsonFile.path)
        if hasVocab && (hasConfig || !hasJSON) {
            try self.init(vocabFile: vocabFile, configFile: hasConfig ? configFile : nil)
        } else if hasJSON {
            try self.init(tokenizerJSON: jsonFile, configFile: hasConfig ? configFile : nil)
        } else {
            throw TokenizerError(file: directory.path, problem: "neither vocab.txt nor tokenizer.json is here, so there is no WordPiece vocabulary to load")
        }
    }

    /// vocab.txt with the settings of tokenizer_config.json, or BertTokenizer's defaults without one.
    init(vocabFile: URL, configFile: URL?) throws {
        var options = Options()
        if let configFile { try Self.apply(configFile: configFile, to: &options) }
        try self.init(vocabulary: Self.readVocabulary(vocabFile), options: options, source: vocabFile.path)
    }

    /// tokenizer.json alone (its normalizer settings and `model.vocab`), optionally overridden by a
    /// tokenizer_config.json.
    init(tokenizerJSON file: URL, configFile: URL? = nil) throws {
        try self.init(tokenizerJSON: Self.parseJSON(file), file: file, configFile: configFile)
    }

    /// tokenizer.json already parsed (`root`, read from `file`), optionally overridden by a tokenizer_config.json.
    init(tokenizerJSON root: ExactJSON, file: URL, configFile: URL? = nil) throws {
        var (vocabulary, options) = try Self.readTokenizerJSON(root, file: file)
        if let configFile { try Self.apply(configFile: configFile, to: &options) }
        try self.init(vocabulary: vocabulary, options: options, source: file.path)
    }

    /// Writes vocab.txt, tokenizer_config.json and tokenizer.json (each atomically), which
    /// transformers' `AutoTokenizer.from_pretrained` and this type both load to the same ids.
    func save(to directory: URL) throws {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw TokenizerError(file: directory.path, problem: "cannot create the folder (\(error.localizedDescription))")
        }
        try Self.write(Data((vocabulary.joined(separator: "\n") + "\n").utf8),
                       to: directory.appendingPathComponent("vocab.txt"))
        try Self.write(Data(configJSON.serialized().utf8), to: directory.appendingPathComponent("tokenizer_config.json"))
        try Self.write(Data(tokenizerJSON.serialized().utf8), to: directory.appendingPathComponent("tokenizer.json"))
    }

    // MARK: - Reading

    static func readData(_ url: URL) throws -> Data {
        do { return try InputFile.read(url) } catch {
            throw TokenizerError(file: url.path, problem: "cannot read the file (\(error.localizedDescription))")
        }
    }

    /// One entry a line (a final newline ends the last line; a "\r" before it is dropped).
    static func readVocabulary(_ url: URL) throws -> [String] {
        let data = try readData(url)
        var lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }
        var tokens: [String] = []
        tokens.reserveCapacity(lines.count)
        for (index, line) in lines.enumerated() {
            var bytes = line
            if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
            guard let token = String(validating: bytes, as: UTF8.self) else {
                throw TokenizerError(file: url.path, problem: "line \(index + 1) is not valid UTF-8")
            }
            tokens.append(token)
        }
        guard !tokens.isEmpty else { throw TokenizerError(file: url.path, problem: "the vocabulary is empty") }
        return tokens
    }

    /// A JSON file (tokenizer.json) parsed keeping every string's bytes and the order of members.
    static func parseJSON(_ url: URL) throws -> ExactJSON {
        do { return try ExactJSON.parse([UInt8](readData(url))) } catch let error as ExactJSON.SyntaxError {
            throw TokenizerError(file: url.path, problem: "is not valid JSON (\(error.problem) at byte \(error.offset))")
        }
    }

    /// Sets `options` from the keys tokenizer_config.json has; absent keys keep their value.
    static func apply(configFile url: URL, to options: inout Options) throws {
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: readData(url)) } catch let error as TokenizerError {
            throw error
        } catch {
            throw TokenizerError(file: url.path, problem: "is not valid JSON")
        }
        guard let config = object as? [String: Any] else {
            throw TokenizerError(file: url.path, problem: "is not a JSON object")
        }
        func bool(_ key: String) throws -> Bool? {
            guard let value = config[key], !(value is NSNull) else { return nil }
            guard let flag = value as? Bool else {
                throw TokenizerError(file: url.path, problem: "\"\(key)\" must be true or false, not \(value)")
            }
            return flag
        }
        func token(_ key: String) throws -> String? {
            switch config[key] {
            case nil, is NSNull: return nil
            case let text as String: return text
            case let added as [String: Any]:
                if let content = added["content"] as? String { return content }
                fallthrough
            default:
                throw TokenizerError(file: url.path, problem: "\"\(key)\" must be a token string or an object with \"content\"")
            }
        }
        if let lowercase = try bool("do_lower_case") { options.lowercase = lowercase }
        if config.keys.contains("strip_accents") { options.stripAccents = try bool("strip_accents") }
        if let chinese = try bool("tokenize_chinese_chars") { options.tokenizeChineseChars = chinese }
        if let unk = try token("unk_token") { options.unkToken = unk }
        if let sep = try token("sep_token") { options.sepToken = sep }
        if let pad = try token("pad_token") { options.padToken = pad }
        if let cls = try token("cls_token") { options.clsToken = cls }
        if let mask = try token("mask_token") { options.maskToken = mask }
        // Hugging Face writes 1e30 for "no limit".
        if let length = config["model_max_length"] as? NSNumber, length.doubleValue >= 1, length.doubleValue < 1e9 {
            options.modelMaxLength = length.intValue
        }
    }

    /// tokenizer.json: the BertNormalizer settings, BertPreTokenizer, and the WordPiece model's vocab
    /// (ids 0..<n without gaps; `added_tokens` may extend it).
    static func readTokenizerJSON(_ root: ExactJSON, file url: URL) throws -> (vocabulary: [String], options: Options) {
        func failure(_ problem: String) -> TokenizerError { TokenizerError(file: url.path, problem: problem) }

        var options = Options()
        switch root["normalizer"] {
        case nil, .null?:
            // No normalizer: Hugging Face feeds the raw text to the pre-tokenizer.
            options.cleanText = false
            options.tokenizeChineseChars = false
            options.lowercase = false
            options.stripAccents = false
        case let normalizer?:
            let type = normalizer["type"]?.string ?? "?"
            guard type == "BertNormalizer" else {
                throw failure("normalizer \"\(type)\" is not supported (only BertNormalizer)")
            }
            func flag(_ key: String, default value: Bool?) throws -> Bool? {
                guard let field = normalizer[key], !field.isNull else { return value }
                guard let flag = field.bool else { throw failure("normalizer.\(key) must be true, false or null") }
                return flag
            }
            // tokenizers' defaults for fields left out.
            options.cleanText = try flag("clean_text", default: true)!
            options.tokenizeChineseChars = try flag("handle_chinese_chars", default: true)!
            options.lowercase = try flag("lowercase", default: true)!
            options.stripAccents = try flag("strip_accents", default: nil)
        }
        let preTokenizer = root["pre_tokenizer"]?["type"]?.string
        guard preTokenizer == "BertPreTokenizer" else {
            throw failure("pre_tokenizer \"\(preTokenizer ?? "null")\" is not supported (only BertPreTokenizer)")
        }
        guard let model = root["model"] else { throw failure("has no \"model\"") }
        if let type = model["type"]?.string, type != "WordPiece" {
            throw failure("model \"\(type)\" is not supported (only WordPiece)")
        }
        if let unk = model["unk_token"]?.string { options.unkToken = unk }
        if let prefix = model["continuing_subword_prefix"]?.string { options.continuingSubwordPrefix = prefix }
        if let limit = model["max_input_chars_per_word"]?.int { options.maxInputCharsPerWord = limit }

        guard case .object(let entries)? = model["vocab"] else { throw failure("model.vocab is not an object of token: id") }
        var byId: [Int: String] = [:]
        byId.reserveCapacity(entries.count)
        for (token, value) in entries {
            guard let id = value.int else { throw failure("model.vocab entry \(token.debugDescription) has no integer id") }
            byId[id] = token
        }
        if case .array(let added)? = root["added_tokens"] {
            var contents: [String] = []
            for token in added {
                guard let id = token["id"]?.int, let content = token["content"]?.string else {
                    throw failure("an added_tokens entry lacks an integer \"id\" or a \"content\"")
                }
                if byId[id] == nil { byId[id] = content }
                contents.append(content)
            }
            options.addedTokens = contents
        }
        guard !byId.isEmpty else { throw failure("model.vocab is empty") }
        var vocabulary = [String](repeating: "", count: byId.count)
        for (id, token) in byId {
            guard id >= 0 && id < byId.count else {
                throw failure("model.vocab ids have gaps: id \(id) in a vocabulary of \(byId.count) distinct ids")
            }
            vocabulary[id] = token
        }
        return (vocabulary, options)
    }

    // MARK: - Writing

    private var configJSON: ExactJSON {
        var members: [(key: String, value: ExactJSON)] = [
            ("tokenizer_class", .string("BertTokenizer")),
            ("do_lower_case", .bool(options.lowercase)),
            ("strip_accents", options.stripAccents.map(ExactJSON.bool) ?? .null),
            ("tokenize_chinese_chars", .bool(options.tokenizeChineseChars)),
            ("unk_token", .string(options.unkToken)),
            ("sep_token", .string(options.sepToken)),
            ("pad_token", .string(options.padToken)),
            ("cls_token", .string(options.clsToken)),
            // Left out, transformers would add a "[MASK]" the vocabulary does not have.
            ("mask_token", maskId == nil ? .null : .string(options.maskToken)),
            ("clean_up_tokenization_spaces", .bool(true)),
        ]
        if let length = options.modelMaxLength { members.append(("model_max_length", .number(Double(length)))) }
        return .object(members)
    }

    /// The `tokenizers` pipeline, with a post-processor adding [CLS]/[SEP] as `encode` does.
    private var tokenizerJSON: ExactJSON {
        let added = options.addedTokens
            ?? [options.padToken, options.unkToken, options.clsToken, options.sepToken, options.maskToken]
        var addedIds: [Int] = []
        for token in added { if let id = id(forToken: token), !addedIds.contains(id) { addedIds.append(id) } }
        let addedTokens: [ExactJSON] = addedIds.sorted().map { id in
            .object([("id", .number(Double(id))), ("content", .string(vocabulary[id])), ("single_word", .bool(false)),
                     ("lstrip", .bool(false)), ("rstrip", .bool(false)), ("normalized", .bool(false)),
                     ("special", .bool(true))])
        }
        let cls = options.clsToken, sep = options.sepToken
        func special(_ token: String, _ typeId: Int) -> ExactJSON {
            .object([("SpecialToken", .object([("id", .string(token)), ("type_id", .number(Double(typeId)))]))])
        }
        func sequence(_ name: String, _ typeId: Int) -> ExactJSON {
            .object([("Sequence", .object([("id", .string(name)), ("type_id", .number(Double(typeId)))]))])
        }
        func specialEntry(_ token: String, _ id: Int) -> (key: String, value: ExactJSON) {
            (token, .object([("id", .string(token)), ("ids", .array([.number(Double(id))])), ("tokens", .array([.string(token)]))]))
        }
        // In id order, as Hugging Face writes it; a token listed twice keeps its last id.
        var vocab: [(key: String, value: ExactJSON)] = []
        vocab.reserveCapacity(vocabulary.count)
        for (id, token) in vocabulary.enumerated() where self.id(forToken: token) == id {
            vocab.append((token, .number(Double(id))))
        }
        return .object([
            ("version", .string("1.0")),
            ("truncation", .null),
            ("padding", .null),
            ("added_tokens", .array(addedTokens)),
            ("normalizer", .object([
                ("type", .string("BertNormalizer")),
                ("clean_text", .bool(options.cleanText)),
                ("handle_chinese_chars", .bool(options.tokenizeChineseChars)),
                ("strip_accents", options.stripAccents.map(ExactJSON.bool) ?? .null),
                ("lowercase", .bool(options.lowercase)),
            ])),
            ("pre_tokenizer", .object([("type", .string("BertPreTokenizer"))])),
            ("post_processor", .object([
                ("type", .string("TemplateProcessing")),
                ("single", .array([special(cls, 0), sequence("A", 0), special(sep, 0)])),
                ("pair", .array([special(cls, 0), sequence("A", 0), special(sep, 0), sequence("B", 1), special(sep, 1)])),
                ("special_tokens", .object([specialEntry(cls, clsId), specialEntry(sep, sepId)])),
            ])),
            ("decoder", .object([("type", .string("WordPiece")), ("prefix", .string(options.continuingSubwordPrefix)),
                                 ("cleanup", .bool(true))])),
            ("model", .object([
                ("type", .string("WordPiece")),
                ("unk_token", .string(options.unkToken)),
                ("continuing_subword_prefix", .string(options.continuingSubwordPrefix)),
                ("max_input_chars_per_word", .number(Double(options.maxInputCharsPerWord))),
                ("vocab", .object(vocab)),
            ])),
        ])
    }

    static func write(_ data: Data, to url: URL) throws {
        do { try data.write(to: url, options: .atomic) } catch {
            throw TokenizerError(file: url.path, problem: "cannot write the file (\(error.localizedDescription))")
        }
    }
}
