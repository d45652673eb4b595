import Foundation

/// The architecture of a BERT, DistilBERT, RoBERTa (XLM-RoBERTa, CamemBERT) or ALBERT encoder, read
/// from a Hugging Face `config.json`.
///
/// RoBERTa and ALBERT use BERT's key names; DistilBERT and BERT name the same things differently (`hidden_size` / `dim`, `num_hidden_layers` /
/// `n_layers`, ...); this struct has one name for each. Missing keys take Hugging Face's defaults, as
/// `from_pretrained` does. The original JSON is kept in `raw`, so writing the config back preserves
/// every key Sankshep does not know (`label2id`, `transformers_version`, custom fields, ...).
struct ModelConfig: Sendable, Equatable {
    enum ModelType: String, Sendable, CaseIterable {
        case bert, distilbert
        /// The RoBERTa family: one architecture under three names (transformers' XLM-RoBERTa and
        /// CamemBERT classes are RoBERTa's with another prefix-free name).
        case xlmRoberta = "xlm-roberta", roberta, camembert
        case albert

        /// RoBERTa, XLM-RoBERTa and CamemBERT.
        var isRobertaFamily: Bool { self == .xlmRoberta || self == .roberta || self == .camembert }
        /// The `…ForSequenceClassification` class transformers loads this type as.
        var sequenceClassificationClass: String {
            switch self {
            case .bert: "BertForSequenceClassification"
            case .distilbert: "DistilBertForSequenceClassification"
            case .xlmRoberta: "XLMRobertaForSequenceClassification"
            case .roberta: "RobertaForSequenceClassification"
            case .camembert: "CamembertForSequenceClassification"
            case .albert: "AlbertForSequenceClassification"
            }
        }
        static var supportedList: String { allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ") }
    }

    /// The feed-forward activation: GELU in its exact erf form (`gelu`) or its tanh approximation
    /// (`gelu_new`, ALBERT's default; `gelu_pytorch_tanh` and `gelu_fast` are the same formula).
    enum Activation: String, Sendable {
        case gelu
        case geluTanh = "gelu_new"
    }

    var modelType: ModelType
    var vocabSize: Int
    var hiddenSize: Int
    var numLayers: Int
    var numHeads: Int
    var intermediateSize: Int
    var maxPositionEmbeddings: Int
    /// Segment (token type) embeddings; 0 for DistilBERT, which has none.
    var typeVocabSize: Int
    var hiddenDropout: Double
    var attentionDropout: Double
    /// BERT's `classifier_dropout` (nil: use `hiddenDropout`, as Hugging Face does) or DistilBERT's
    /// `seq_classif_dropout`.
    var classifierDropout: Double?
    var layerNormEps: Double
    var initializerRange: Double
    var padTokenId: Int
    /// From `id2label` (Hugging Face's rule); the pipeline uses 1 label with BCE.
    var numLabels: Int
    var architectures: [String]
    /// ALBERT's factorized embedding width (`embedding_size`); the hidden size for every other type.
    var embeddingSize: Int
    var activation: Activation = .gelu
    /// Attention heads removed per layer, as Hugging Face's `pruned_heads` says: layer → the original
    /// indices of its removed heads (`{"0": [1, 3]}` in the JSON). Empty for an unpruned model.
    var prunedHeads: [Int: [Int]] = [:]
    /// The JSON as read (empty for a preset); known keys are overwritten from the fields on write.
    var raw: [String: JSONValue]

    var headDimension: Int { hiddenSize / numHeads }
    /// ALBERT runs one layer `numLayers` times: it holds one layer's parameters.
    var storedLayers: Int { modelType == .albert ? 1 : numLayers }
    /// The dropout the classification head applies.
    var headDropout: Double { classifierDropout ?? hiddenDropout }

    /// A configuration made in code (the built-in presets). Defaults are Hugging Face's.
    init(modelType: ModelType, vocabSize: Int, hiddenSize: Int, numLayers: Int, numHeads: Int,
         intermediateSize: Int, maxPositionEmbeddings: Int = 512, typeVocabSize: Int? = nil,
         hiddenDropout: Double = 0.1, attentionDropout: Double = 0.1, classifierDropout: Double? = nil,
         layerNormEps: Double = 1e-12, initializerRange: Double = 0.02, padTokenId: Int = 0,
         numLabels: Int = 1, architectures: [String]? = nil, embeddingSize: Int? = nil) {
        self.modelType = modelType
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.numLayers = numLayers
        self.numHeads = numHeads
        self.intermediateSize = intermediateSize
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.typeVocabSize = typeVocabSize ?? (modelType == .distilbert ? 0 : modelType.isRobertaFamily ? 1 : 2)
        self.hiddenDropout = hiddenDropout
        self.attentionDropout = attentionDropout
        self.classifierDropout = classifierDropout ?? (modelType == .distilbert ? 0.2 : nil)
        self.layerNormEps = layerNormEps
        self.initializerRange = initializerRange
        self.padTokenId = padTokenId
        self.numLabels = numLabels
        self.architectures = architectures ?? [modelType.sequenceClassificationClass]
        self.embeddingSize = modelType == .albert ? embeddingSize ?? 128 : hiddenSize
        self.activation = modelType == .albert ? .geluTanh : .gelu
        self.raw = [:]
    }

    // MARK: - Reading

    static func read(_ url: URL) throws -> ModelConfig {
        let data: Data
        do { data = try InputFile.read(url) } catch {
            throw CheckpointError(file: url.path, problem: "cannot read the file (\(error.localizedDescription))")
        }
        return try ModelConfig(json: data, file: url.path)
    }

    init(json data: Data, file: String) throws {
        func fail(_ problem: String) -> CheckpointError { CheckpointError(file: file, problem: problem) }
        let object: [String: JSONValue]
        do {
            guard let parsed = try JSONValue.parse(data).objectValue else { throw fail("not a JSON object") }
            object = parsed
        } catch let error as CheckpointError { throw error } catch {
            throw fail("not valid JSON")
        }

        guard let typeValue = object["model_type"] else { throw fail("no model_type (expected one of \(ModelType.supportedList))") }
        guard let typeName = typeValue.stringValue, let modelType = ModelType(rawValue: typeName) else {
            throw fail("model_type \(typeValue.summary) is not supported (only \(ModelType.supportedList))")
        }

        // Each reader takes the first of the key names present (they differ between the model
        // types), or Hugging Face's default when none is.
        func value(_ keys: [String]) -> (key: String, value: JSONValue)? {
            for key in keys { if let value = object[key], !value.isNull { return (key, value) } }
            return nil
        }
        func integer(_ keys: [String], default fallback: Int, minimum: Int = 1) throws -> Int {
            guard let (key, item) = value(keys) else { return fallback }
            guard let number = item.intValue else { throw fail("\(key) is \(item.summary), not an integer") }
            guard number >= minimum else { throw fail("\(key) is \(number), must be at least \(minimum)") }
            return number
        }
        func probability(_ keys: [String], default fallback: Double) throws -> Double {
            guard let (key, item) = value(keys) else { return fallback }
            guard let number = item.doubleValue, number >= 0, number < 1 else { throw fail("\(key) is \(item.summary), not a dropout probability in [0, 1)") }
            return number
        }
        func positive(_ keys: [String], default fallback: Double) throws -> Double {
            guard let (key, item) = value(keys) else { return fallback }
            guard let number = item.doubleValue, number > 0 else { throw fail("\(key) is \(item.summary), not a positive number") }
            return number
        }

        // RoBERTa and ALBERT name everything as BERT does.
        let isBert = modelType != .distilbert
        let activationKey = isBert ? "hidden_act" : "activation"
        if let (key, item) = value([activationKey]) {
            switch item.stringValue {
            case "gelu": self.activation = .gelu
            case "gelu_new", "gelu_pytorch_tanh", "gelu_fast":
                // DistilBERT's activation names only the exact form.
                guard isBert else { throw fail("\(key) \(item.summary) is not supported (only \"gelu\", the exact erf form)") }
                self.activation = .geluTanh
            default:
                throw fail("\(key) \(item.summary) is not supported (only \"gelu\", the exact erf form\(isBert ? ", and its tanh form \"gelu_new\"" : ""))")
            }
        } else {
            // ALBERT's default is the tanh form; BERT's and RoBERTa's the exact one.
            self.activation = modelType == .albert ? .geluTanh : .gelu
        }
        if isBert, let (key, item) = value(["position_embedding_type"]), item.stringValue != "absolute" {
            throw fail("\(key) \(item.summary) is not supported (only \"absolute\")")
        }
        if modelType == .albert {
            for key in ["num_hidden_groups", "inner_group_num"] {
                if let item = object[key], !item.isNull, item.intValue != 1 {
                    throw fail("\(key) \(item.summary) is not supported (only 1: one layer shared by every repeat)")
                }
            }
        }
        if !isBert, let item = object["sinusoidal_pos_embds"], item.boolValue == true {
            throw fail("sinusoidal_pos_embds true is not supported (only learned position embeddings)")
        }

        self.modelType = modelType
        self.vocabSize = try integer(["vocab_size"], default: 30522)
        self.hiddenSize = try integer(isBert ? ["hidden_size"] : ["dim", "hidden_size"], default: 768)
        self.numLayers = try integer(isBert ? ["num_hidden_layers"] : ["n_layers", "num_hidden_layers"], default: isBert ? 12 : 6)
        self.numHeads = try integer(isBert ? ["num_attention_heads"] : ["n_heads", "num_attention_heads"], default: 12)
        self.intermediateSize = try integer(isBert ? ["intermediate_size"] : ["hidden_dim", "intermediate_size"], default: 3072)
        self.maxPositionEmbeddings = try integer(["max_position_embeddings"], default: 512)
        self.typeVocabSize = isBert ? try integer(["type_vocab_size"], default: 2, minimum: 0) : 0
        self.embeddingSize = modelType == .albert ? try integer(["embedding_size"], default: 128) : hiddenSize
        self.hiddenDropout = try probability(isBert ? ["hidden_dropout_prob"] : ["dropout"], default: modelType == .albert ? 0 : 0.1)
        self.attentionDropout = try probability(isBert ? ["attention_probs_dropout_prob"] : ["attention_dropout"], default: modelType == .albert ? 0 : 0.1)
        self.classifierDropout = modelType == .albert ? try probability(["classifier_dropout_prob"], default: 0.1)
            : isBert ? (value(["classifier_dropout"]) == nil ? nil : try probability(["classifier_dropout"], default: 0.1))
            : try probability(["seq_classif_dropout"], default: 0.2)
        // DistilBERT's LayerNorms are built with eps 1e-12 whatever the config says.
        self.layerNormEps = isBert ? try positive(["layer_norm_eps"], default: 1e-12) : 1e-12
        self.initializerRange = try positive(["initializer_range"], default: 0.02)
        // RoBERTa's pad is 1 (<pad> after <s>), and it counts positions from pad + 1.
        self.padTokenId = try integer(["pad_token_id"], default: modelType.isRobertaFamily ? 1 : 0, minimum: 0)
        if let (key, item) = value(["id2label"]) {
            guard let labels = item.objectValue, !labels.isEmpty else { throw fail("\(key) is \(item.summary), not a non-empty object") }
            self.numLabels = labels.count
        } else {
            self.numLabels = try integer(["num_labels"], default: 2)
        }
        if let (key, item) = value(["architectures"]) {
            guard let names = item.arrayValue?.compactMap(\.stringValue), names.count == item.arrayValue?.count else {
                throw fail("\(key) is \(item.summary), not a list of names")
            }
            self.architectures = names
        } else {
            self.architectures = []
        }
        self.raw = object
        self.prunedHeads = try Self.readPrunedHeads(object["pruned_heads"], layers: numLayers, heads: numHeads, fail: fail)

        guard hiddenSize % numHeads == 0 else {
            throw fail("the hidden size \(hiddenSize) is not a multiple of the \(numHeads) attention heads")
        }
        guard padTokenId < vocabSize else { throw fail("pad_token_id \(padTokenId) is outside the vocabulary of \(vocabSize)") }
        if modelType.isRobertaFamily, maxPositionEmbeddings <= padTokenId + 1 {
            throw fail("max_position_embeddings \(maxPositionEmbeddings) leaves no position: RoBERTa counts positions from pad_token_id + 1 = \(padTokenId + 1)")
        }
        // Every size above is the file's claim: before anything allocates from them, the parameter
        // count must be a number, and the values and gradients must fit in this machine's memory.
        guard let parameters = Self.parameterCount(vocab: vocabSize, positions: maxPositionEmbeddings, types: typeVocabSize,
                                                   hidden: hiddenSize, intermediate: intermediateSize, layers: storedLayers,
                                                   embedding: embeddingSize) else {
            throw fail("the sizes (vocab_size \(vocabSize), hidden_size \(hiddenSize), intermediate_size \(intermediateSize), \(numLayers) layers, max_position_embeddings \(maxPositionEmbeddings)) describe more parameters than can be counted")
        }
        let memory = ProcessInfo.processInfo.physicalMemory
        let (needed, overflow) = UInt64(parameters).multipliedReportingOverflow(by: 8)   // float values + gradients
        guard !overflow, needed <= memory else {
            throw fail(String(format: "the sizes describe %d parameters, %.1f GB with their gradients, more than this machine's %.1f GB of memory",
                              parameters, Double(parameters) * 8 / 1e9, Double(memory) / 1e9))
        }
    }

    /// An encoder's parameters, about (embeddings, layers, head), or nil when the product overflows.
    static func parameterCount(vocab: Int, positions: Int, types: Int, hidden: Int, intermediate: Int, layers: Int,
                               embedding: Int? = nil) -> Int? {
        func product(_ factors: Int...) -> Int? {
            var result = 1
            for factor in factors {
                let (next, overflow) = result.multipliedReportingOverflow(by: factor)
                if overflow { return nil }
                result = next
            }
            return result
        }
        func sum(_ terms: Int?...) -> Int? {
            var result = 0
            for term in terms {
                guard let term else { return nil }
                let (next, overflow) = result.addingReportingOverflow(term)
                if overflow { return nil }
                result = next
            }
            return result
        }
        let width = embedding ?? hidden
        let embeddings = sum(product(vocab, width), product(positions, width), product(types, width),
                             width == hidden ? 0 : product(width, hidden))
        let perLayer = sum(product(4, hidden, hidden), product(2, hidden, intermediate), product(10, hidden), intermediate)
        return sum(embeddings, perLayer.flatMap { product($0, layers) }, product(hidden, hidden), product(2, hidden))
    }

    /// Checks `pruned_heads`: an object whose keys are layer indices and whose values list distinct
    /// head indices of that layer, never all of them (a layer needs a head).
    private static func readPrunedHeads(_ value: JSONValue?, layers: Int, heads: Int,
                                        fail: (String) -> CheckpointError) throws -> [Int: [Int]] {
        guard let value, !value.isNull else { return [:] }
        guard let object = value.objectValue else { throw fail("pruned_heads is \(value.summary), not an object of layer → head indices") }
        var result: [Int: [Int]] = [:]
        for (key, item) in object {
            guard let layer = Int(key), (0..<layers).contains(layer) else {
                throw fail("pruned_heads key \"\(key)\" is not a layer index in 0..<\(layers)")
            }
            guard let list = item.arrayValue, case let indices = list.compactMap(\.intValue), indices.count == list.count else {
                throw fail("pruned_heads[\"\(key)\"] is \(item.summary), not a list of head indices")
            }
            if let bad = indices.first(where: { !(0..<heads).contains($0) }) {
                throw fail("pruned_heads[\"\(key)\"] names head \(bad), outside 0..<\(heads)")
            }
            guard Set(indices).count == indices.count else { throw fail("pruned_heads[\"\(key)\"] names a head twice: \(indices)") }
            guard indices.count < heads else { throw fail("pruned_heads[\"\(key)\"] removes all \(heads) heads of layer \(layer); a layer needs one") }
            if !indices.isEmpty { result[layer] = indices.sorted() }
        }
        return result
    }

    // MARK: - Writing

    /// The config as Hugging Face reads it: the original keys, with the known ones set from the fields
    /// under the model type's own names.
    func json() throws -> Data {
        var object = raw
        let isBert = modelType != .distilbert
        func set(_ key: String, _ value: JSONValue) { object[key] = value }
        set("model_type", .string(modelType.rawValue))
        if !architectures.isEmpty { set("architectures", .array(architectures.map { .string($0) })) }
        set("vocab_size", .int(vocabSize))
        set(isBert ? "hidden_size" : "dim", .int(hiddenSize))
        set(isBert ? "num_hidden_layers" : "n_layers", .int(numLayers))
        set(isBert ? "num_attention_heads" : "n_heads", .int(numHeads))
        set(isBert ? "intermediate_size" : "hidden_dim", .int(intermediateSize))
        // A tanh-form name the file had (gelu_pytorch_tanh, gelu_fast) is kept: the same formula.
        if activation == .gelu || ["gelu_new", "gelu_pytorch_tanh", "gelu_fast"].contains(object["hidden_act"]?.stringValue ?? "") == false {
            set(isBert ? "hidden_act" : "activation", .string(activation.rawValue))
        }
        set(isBert ? "hidden_dropout_prob" : "dropout", .double(hiddenDropout))
        set(isBert ? "attention_probs_dropout_prob" : "attention_dropout", .double(attentionDropout))
        set("max_position_embeddings", .int(maxPositionEmbeddings))
        if isBert {
            set("type_vocab_size", .int(typeVocabSize))
            set("layer_norm_eps", .double(layerNormEps))
            if modelType == .albert {
                set("embedding_size", .int(embeddingSize))
                set("num_hidden_groups", .int(1))
                set("inner_group_num", .int(1))
                set("classifier_dropout_prob", .double(classifierDropout ?? 0.1))
            } else {
                set("classifier_dropout", classifierDropout.map { .double($0) } ?? .null)
            }
        } else {
            set("sinusoidal_pos_embds", .bool(false))
            set("seq_classif_dropout", .double(classifierDropout ?? 0.2))
        }
        set("initializer_range", .double(initializerRange))
        set("pad_token_id", .int(padTokenId))
        // Hugging Face derives num_labels from id2label; keep the names it had if the count still fits.
        if object["id2label"]?.objectValue?.count != numLabels {
            set("id2label", .object(Dictionary(uniqueKeysWithValues: (0..<numLabels).map { ("\($0)", .string("LABEL_\($0)")) })))
            set("label2id", .object(Dictionary(uniqueKeysWithValues: (0..<numLabels).map { ("LABEL_\($0)", .int($0)) })))
        }
        if object["num_labels"] != nil { set("num_labels", .int(numLabels)) }
        // Hugging Face (4.x) removes these heads at init, before it loads the smaller tensors.
        object["pruned_heads"] = prunedHeads.isEmpty ? nil
            : .object(Dictionary(uniqueKeysWithValues: prunedHeads.map { ("\($0.key)", .array($0.value.sorted().map { .int($0) })) }))
        return try JSONValue.object(object).prettyPrinted()
    }

    /// Writes `config.json` atomically.
    func write(to url: URL) throws {
        try AtomicFile.write(try json(), to: url)
    }
}
