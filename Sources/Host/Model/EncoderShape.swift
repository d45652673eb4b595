import Foundation

/// The encoder families Sankshep trains. `roberta` is RoBERTa, XLM-RoBERTa and CamemBERT (BERT's
/// layers, positions counted from the pad id + 1, its own head); `albert` is ALBERT (factorized
/// embeddings, one layer run `layers` times, BERT's head with an `albert.pooler`).
enum EncoderType: String, Sendable, CaseIterable {
    case bert, distilbert, roberta, albert
}

/// The sizes of an encoder: what the model needs from a `config.json`.
///
/// Built from the parsed JSON of a Hugging Face config (every family's key names), or from a preset.
struct EncoderShape: Equatable, Sendable {
    var modelType: EncoderType
    /// The width of the embedding tables: `hiddenSize`, but for ALBERT's `embedding_size`, which
    /// `embedding_hidden_mapping_in` (hiddenSize, embeddingSize) widens to the hidden size.
    var embeddingSize: Int
    /// The feed-forward activation (GELU, or its tanh form for ALBERT's `gelu_new`).
    var activation: ModelConfig.Activation = .gelu
    /// RoBERTa's pad id: positions count from paddingIndex + 1 over the non-pad tokens, pads sit at
    /// position paddingIndex. nil: positions are 0..<T.
    var paddingIndex: Int?
    var vocabSize: Int
    var hiddenSize: Int
    var layers: Int
    var heads: Int
    var intermediateSize: Int
    var maxPositions: Int
    /// Segment (token type) embeddings; 0 for DistilBERT, which has none.
    var typeVocabSize: Int
    var layerNormEps: Float
    /// Dropout after the embeddings, after the attention output projection (BERT only) and after the
    /// feed-forward output.
    var hiddenDropout: Float
    /// Dropout on the attention probabilities.
    var attentionDropout: Float
    /// Dropout in the classification head (BERT: `classifier_dropout` or else `hidden_dropout_prob`;
    /// DistilBERT: `seq_classif_dropout`; the seed framework's head: its `--dropout`).
    var classifierDropout: Float
    /// Attention heads removed from each layer (Hugging Face's `pruned_heads`): layer → the original
    /// indices of its removed heads. A layer keeps `heads(inLayer:)` heads of `headSize` each, so its
    /// query/key/value weights are (kept · headSize, hidden) and its attention output (hidden, kept · headSize).
    var prunedHeads: [Int: [Int]] = [:]

    /// The size of one head: fixed by the unpruned model (`heads` is the config's head count).
    var headSize: Int { hiddenSize / heads }
    /// ALBERT runs one stored layer at every repeat; the others store one layer per repeat.
    var sharesLayers: Bool { modelType == .albert }
    /// The layers whose parameters the model stores: 1 for ALBERT, `layers` otherwise.
    var storedLayers: Int { sharesLayers ? 1 : layers }
    /// The stored layer that repeat `layer` runs (0 for every ALBERT repeat).
    func storedLayer(_ layer: Int) -> Int { sharesLayers ? 0 : layer }
    /// The longest sequence the position table holds (RoBERTa's first paddingIndex + 1 rows are not positions).
    var maxSequenceLength: Int { maxPositions - (paddingIndex.map { $0 + 1 } ?? 0) }
    /// The heads layer `layer` computes (for ALBERT, the shared layer's).
    func heads(inLayer layer: Int) -> Int { heads - (prunedHeads[storedLayer(layer)]?.count ?? 0) }
    /// The width of layer `layer`'s attention: its query/key/value outputs and the context.
    func attentionWidth(layer: Int) -> Int { heads(inLayer: layer) * headSize }
    /// The original indices of the heads layer `layer` keeps, in order.
    func keptHeads(inLayer layer: Int) -> [Int] {
        let removed = Set(prunedHeads[storedLayer(layer)] ?? [])
        return (0..<heads).filter { !removed.contains($0) }
    }

    init(modelType: EncoderType, vocabSize: Int, hiddenSize: Int, layers: Int, heads: Int,
         intermediateSize: Int, maxPositions: Int, typeVocabSize: Int, layerNormEps: Float = 1e-12,
         hiddenDropout: Float = 0.1, attentionDropout: Float = 0.1, classifierDropout: Float = 0.1,
         embeddingSize: Int? = nil, activation: ModelConfig.Activation? = nil, paddingIndex: Int? = nil) {
        self.modelType = modelType
        self.embeddingSize = modelType == .albert ? embeddingSize ?? 128 : hiddenSize
        self.activation = activation ?? (modelType == .albert ? .geluTanh : .gelu)
        self.paddingIndex = modelType == .roberta ? paddingIndex ?? 1 : nil
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.layers = layers
        self.heads = heads
        self.intermediateSize = intermediateSize
        self.maxPositions = maxPositions
        self.typeVocabSize = modelType == .distilbert ? 0 : typeVocabSize
        self.layerNormEps = layerNormEps
        self.hiddenDropout = hiddenDropout
        self.attentionDropout = attentionDropout
        self.classifierDropout = classifierDropout
    }

    /// Reads a parsed Hugging Face `config.json`. `file` names the file in errors.
    init(json: [String: Any], file: String) throws {
        func fail(_ problem: String) -> CheckpointError { CheckpointError(file: file, problem: problem) }
        guard let typeName = json["model_type"] as? String else { throw fail("no \"model_type\" (expected one of \(ModelConfig.ModelType.supportedList))") }
        guard let type = EncoderType(rawValue: typeName) else {
            // RoBERTa and ALBERT are read once, by ModelConfig.
            guard ModelConfig.ModelType(rawValue: typeName) != nil,
                  let data = try? JSONSerialization.data(withJSONObject: json) else {
                throw fail("unknown model_type \"\(typeName)\" (expected one of \(ModelConfig.ModelType.supportedList))")
            }
            self.init(try ModelConfig(json: data, file: file))
            return
        }
        func integer(_ key: String) throws -> Int {
            guard let int = jsonInteger(json[key]), int > 0 else {
                throw fail("\"\(key)\" is missing or not a positive integer")
            }
            return int
        }
        func real(_ key: String, default fallback: Float) throws -> Float {
            guard let raw = json[key], !(raw is NSNull) else { return fallback }
            guard let value = jsonReal(raw), value >= 0 else {
                throw fail("\"\(key)\" is not a non-negative number")
            }
            return value
        }
        func probability(_ key: String, default fallback: Float) throws -> Float {
            let p = try real(key, default: fallback)
            guard p < 1 else { throw fail("\"\(key)\" is \(p); a dropout probability must be below 1") }
            return p
        }
        switch type {
        case .roberta, .albert:
            // Their model_type names are "xlm-roberta", "roberta", "camembert" and "albert", read above.
            throw fail("model_type \"\(typeName)\" is not a Hugging Face model type")
        case .bert:
            let activation = json["hidden_act"] as? String ?? "gelu"
            guard activation == "gelu" else { throw fail("hidden_act \"\(activation)\" is not supported (only \"gelu\")") }
            if let kind = json["position_embedding_type"] as? String, kind != "absolute" {
                throw fail("position_embedding_type \"\(kind)\" is not supported (only \"absolute\")")
            }
            let hidden = try probability("hidden_dropout_prob", default: 0.1)
            self.init(modelType: .bert, vocabSize: try integer("vocab_size"), hiddenSize: try integer("hidden_size"),
                      layers: try integer("num_hidden_layers"), heads: try integer("num_attention_heads"),
                      intermediateSize: try integer("intermediate_size"),
                      maxPositions: try integer("max_position_embeddings"),
                      typeVocabSize: try integer("type_vocab_size"),
                      layerNormEps: try real("layer_norm_eps", default: 1e-12),
                      hiddenDropout: hidden,
                      attentionDropout: try probability("attention_probs_dropout_prob", default: 0.1),
                      classifierDropout: try probability("classifier_dropout", default: hidden))
        case .distilbert:
            let activation = json["activation"] as? String ?? "gelu"
            guard activation == "gelu" else { throw fail("activation \"\(activation)\" is not supported (only \"gelu\")") }
            if let sinusoidal = json["sinusoidal_pos_embds"] as? Bool, sinusoidal {
                throw fail("sinusoidal_pos_embds is not supported (only learned position embeddings)")
            }
            // DistilBERT's LayerNorms use a fixed eps of 1e-12 whatever the config says.
            self.init(modelType: .distilbert, vocabSize: try integer("vocab_size"), hiddenSize: try integer("dim"),
                      layers: try integer("n_layers"), heads: try integer("n_heads"),
                      intermediateSize: try integer("hidden_dim"),
                      maxPositions: try integer("max_position_embeddings"), typeVocabSize: 0,
                      layerNormEps: 1e-12,
                      hiddenDropout: try probability("dropout", default: 0.1),
                      attentionDropout: try probability("attention_dropout", default: 0.1),
                      classifierDropout: try probability("seq_classif_dropout", default: 0.2))
        }
        guard hiddenSize % heads == 0 else {
            throw fail("hidden size \(hiddenSize) is not a multiple of the \(heads) attention heads")
        }
    }

    // ---------------------------------------------------------------- presets

    /// The benchmark's small shape: 4 layers x 256, 4 heads, FFN 1024, vocab 8000, 128 positions.
    static let small = EncoderShape(modelType: .bert, vocabSize: 8000, hiddenSize: 256, layers: 4, heads: 4,
                                    intermediateSize: 1024, maxPositions: 128, typeVocabSize: 2)
    /// sagorsarker/bangla-bert-base.
    static let banglaBertBase = EncoderShape(modelType: .bert, vocabSize: 102025, hiddenSize: 768, layers: 12, heads: 12,
                                             intermediateSize: 3072, maxPositions: 512, typeVocabSize: 2)
    /// distilbert-base-multilingual-cased.
    static let distilbertMultilingual = EncoderShape(modelType: .distilbert, vocabSize: 119547, hiddenSize: 768, layers: 6,
                                                     heads: 12, intermediateSize: 3072, maxPositions: 512,
                                                     typeVocabSize: 0, classifierDropout: 0.2)
    /// xlm-roberta-base: pad 1, so 514 position rows hold 512 positions; layer_norm_eps 1e-5.
    static let xlmRobertaBase = EncoderShape(modelType: .roberta, vocabSize: 250002, hiddenSize: 768, layers: 12, heads: 12,
                                             intermediateSize: 3072, maxPositions: 514, typeVocabSize: 1, layerNormEps: 1e-5,
                                             paddingIndex: 1)
    /// neuropark/sahajBERT: ALBERT, embeddings 128 wide, one 1024-wide layer run 24 times, gelu_new,
    /// dropout 0 (its config's hidden_dropout_prob and attention_probs_dropout_prob).
    static let sahajBert = EncoderShape(modelType: .albert, vocabSize: 32000, hiddenSize: 1024, layers: 24, heads: 16,
                                        intermediateSize: 4096, maxPositions: 512, typeVocabSize: 2, layerNormEps: 1e-12,
                                        hiddenDropout: 0, attentionDropout: 0, classifierDropout: 0.1,
                                        embeddingSize: 128, activation: .geluTanh)
}

/// The classification head on top of the encoder.
enum ClassifierHead: Equatable, Sendable {
    /// `BertForSequenceClassification`: tanh pooler on [CLS], dropout, linear.
    case bertPooler
    /// `DistilBertForSequenceClassification`: pre_classifier on [CLS], ReLU, dropout, linear.
    case distilbert
    /// The seed framework's head: pooled vector, Linear(layers · H, hidden), ReLU, dropout, Linear(hidden, labels).
    /// `layers` 1 reads the pooled last hidden state; more (the seed's `use_multi_layers`: 4) reads the [CLS]
    /// vectors of the last `layers` hidden states, last first, concatenated, and ignores the pooling.
    case seedMLP(hidden: Int, layers: Int = 1)

    /// The head Hugging Face puts on this encoder type.
    /// `RobertaForSequenceClassification`: dropout, dense, tanh, dropout, out_proj on <s> (no pooler).
    case roberta

    /// The head Hugging Face puts on this encoder type (ALBERT's is BERT's: a tanh pooler, dropout, linear).
    static func huggingFace(for type: EncoderType) -> ClassifierHead {
        switch type {
        case .bert, .albert: .bertPooler
        case .distilbert: .distilbert
        case .roberta: .roberta
        }
    }

    /// The first head layer's activation is tanh (BERT's and ALBERT's pooler, RoBERTa's dense), else ReLU.
    var usesTanh: Bool { self == .bertPooler || self == .roberta }

    /// How many hidden states the head reads (1 but for the seed's `use_multi_layers`).
    var inputLayers: Int {
        if case .seedMLP(_, let layers) = self { return layers }
        return 1
    }
}

/// How the seed head turns the last hidden states (B, T, H) into one vector per sequence.
/// Mean and max run over real tokens only (attention mask 1). The Hugging Face heads always use [CLS].
enum Pooling: String, Sendable, CaseIterable {
    case cls, mean, max
}

/// An integer from a JSON value (JSONSerialization gives NSNumber; hand-built dictionaries give Int).
private func jsonInteger(_ value: Any?) -> Int? {
    switch value {
    case let int as Int: return int
    case let number as NSNumber:
        let double = number.doubleValue
        return double == double.rounded() ? Int(double) : nil
    default: return nil
    }
}

private func jsonReal(_ value: Any?) -> Float? {
    switch value {
    case let double as Double: return Float(double)
    case let float as Float: return float
    case let int as Int: return Float(int)
    case let number as NSNumber: return number.floatValue
    default: return nil
    }
}

extension EncoderShape {
    /// The sizes the model needs from a parsed `ModelConfig`.
    init(_ config: ModelConfig) {
        self.init(modelType: EncoderType(config), vocabSize: config.vocabSize,
                  hiddenSize: config.hiddenSize, layers: config.numLayers, heads: config.numHeads,
                  intermediateSize: config.intermediateSize, maxPositions: config.maxPositionEmbeddings,
                  typeVocabSize: config.typeVocabSize,
                  // DistilBERT's LayerNorms use 1e-12 whatever the config says.
                  layerNormEps: config.modelType == .distilbert ? 1e-12 : Float(config.layerNormEps),
                  hiddenDropout: Float(config.hiddenDropout), attentionDropout: Float(config.attentionDropout),
                  classifierDropout: Float(config.headDropout), embeddingSize: config.embeddingSize,
                  activation: config.activation, paddingIndex: config.padTokenId)
        prunedHeads = config.prunedHeads
    }
}
