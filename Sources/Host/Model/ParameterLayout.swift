import Foundation

/// The Hugging Face state-dict names of one encoder layer's tensors, without `.weight`/`.bias`.
struct EncoderLayerNames: Sendable {
    let query, key, value, attentionOutput, attentionNorm, ffnIn, ffnOut, outputNorm: String
}

/// Every parameter name of a sequence classifier, by role, in Hugging Face's spelling:
/// `bert.` / `distilbert.` prefixes for the HF heads, `encoder.` for the seed framework's model.
struct ModelParameterNames: Sendable {
    let wordEmbeddings: String
    let positionEmbeddings: String
    /// nil for DistilBERT.
    let tokenTypeEmbeddings: String?
    let embeddingNorm: String
    /// ALBERT's `embedding_hidden_mapping_in` (hidden, embedding): the factorized embedding's widening.
    let embeddingProjection: String?
    /// The stored layers: one per repeat, but one for ALBERT, whose every repeat runs it
    /// (`shape.storedLayer(_:)` says which repeat reads which).
    let layers: [EncoderLayerNames]
    /// The seed framework's BERT encoder keeps a pooler it never uses (no gradient, never updated).
    let unusedPooler: String?
    /// First linear layer of the head: `bert.pooler.dense`, `pre_classifier` or `classifier.0`.
    let headHidden: String
    /// Last linear layer of the head: `classifier` or `classifier.3`.
    let headOutput: String

    /// The Hugging Face head models' prefix of the encoder's names.
    static func prefix(of type: EncoderType) -> String {
        switch type {
        case .bert: "bert."
        case .distilbert: "distilbert."
        case .roberta: "roberta."
        case .albert: "albert."
        }
    }

    init(shape: EncoderShape, head: ClassifierHead) {
        let prefix: String
        switch head {
        case .bertPooler, .distilbert, .roberta: prefix = Self.prefix(of: shape.modelType)
        case .seedMLP: prefix = "encoder."
        }
        wordEmbeddings = prefix + "embeddings.word_embeddings.weight"
        positionEmbeddings = prefix + "embeddings.position_embeddings.weight"
        tokenTypeEmbeddings = shape.modelType == .distilbert ? nil : prefix + "embeddings.token_type_embeddings.weight"
        embeddingNorm = prefix + "embeddings.LayerNorm"
        embeddingProjection = shape.modelType == .albert ? prefix + "encoder.embedding_hidden_mapping_in" : nil
        layers = (0..<shape.storedLayers).map { i in
            switch shape.modelType {
            case .albert:
                let p = prefix + "encoder.albert_layer_groups.0.albert_layers.\(i)."
                return EncoderLayerNames(query: p + "attention.query", key: p + "attention.key",
                                         value: p + "attention.value", attentionOutput: p + "attention.dense",
                                         attentionNorm: p + "attention.LayerNorm", ffnIn: p + "ffn",
                                         ffnOut: p + "ffn_output", outputNorm: p + "full_layer_layer_norm")
            case .bert, .roberta:
                let p = prefix + "encoder.layer.\(i)."
                return EncoderLayerNames(query: p + "attention.self.query", key: p + "attention.self.key",
                                         value: p + "attention.self.value", attentionOutput: p + "attention.output.dense",
                                         attentionNorm: p + "attention.output.LayerNorm", ffnIn: p + "intermediate.dense",
                                         ffnOut: p + "output.dense", outputNorm: p + "output.LayerNorm")
            case .distilbert:
                let p = prefix + "transformer.layer.\(i)."
                return EncoderLayerNames(query: p + "attention.q_lin", key: p + "attention.k_lin",
                                         value: p + "attention.v_lin", attentionOutput: p + "attention.out_lin",
                                         attentionNorm: p + "sa_layer_norm", ffnIn: p + "ffn.lin1",
                                         ffnOut: p + "ffn.lin2", outputNorm: p + "output_layer_norm")
            }
        }
        switch head {
        case .bertPooler:
            unusedPooler = nil
            // ALBERT's pooler is a bare Linear.
            headHidden = shape.modelType == .albert ? prefix + "pooler" : prefix + "pooler.dense"
            headOutput = "classifier"
        case .roberta:
            unusedPooler = nil
            headHidden = "classifier.dense"
            headOutput = "classifier.out_proj"
        case .distilbert:
            unusedPooler = nil
            headHidden = "pre_classifier"
            headOutput = "classifier"
        case .seedMLP:
            // The seed's encoder is AutoModel, with the pooler of its type.
            switch shape.modelType {
            case .bert, .roberta: unusedPooler = "encoder.pooler.dense"
            case .albert: unusedPooler = "encoder.pooler"
            case .distilbert: unusedPooler = nil
            }
            headHidden = "classifier.0"
            headOutput = "classifier.3"
        }
    }

    /// Names of every encoder parameter (embeddings and layers, and the unused pooler): what
    /// `--freeze_base` freezes. The head (including BERT's pooler) stays trainable.
    func encoderParameterNames() -> [String] {
        var names = [wordEmbeddings, positionEmbeddings, embeddingNorm + ".weight", embeddingNorm + ".bias"]
        if let tokenTypeEmbeddings { names.append(tokenTypeEmbeddings) }
        if let embeddingProjection { names += [embeddingProjection + ".weight", embeddingProjection + ".bias"] }
        for layer in layers {
            for linear in [layer.query, layer.key, layer.value, layer.attentionOutput, layer.attentionNorm,
                           layer.ffnIn, layer.ffnOut, layer.outputNorm] {
                names += [linear + ".weight", linear + ".bias"]
            }
        }
        if let unusedPooler { names += [unusedPooler + ".weight", unusedPooler + ".bias"] }
        return names
    }
}

/// The width of the head's hidden layer.
func headHiddenSize(_ shape: EncoderShape, _ head: ClassifierHead) -> Int {
    if case .seedMLP(let hidden, _) = head { return hidden }
    return shape.hiddenSize
}

/// Every parameter of a classifier with its shape, named as Hugging Face (or the seed framework)
/// names it. Linear weights are (out, in) as in PyTorch.
///
/// Order matters only for speed: each layer's query, key and value weights come one after another
/// (then their three biases), so the three projections run as one GEMM against a (3A, H) matrix
/// (A = the layer's attention width: H, or less when heads were removed).
func parameterLayout(_ shape: EncoderShape, head: ClassifierHead, numLabels: Int) -> [(name: String, shape: [Int])] {
    precondition(numLabels >= 1, "a classifier needs at least one label")
    let names = ModelParameterNames(shape: shape, head: head)
    let h = shape.hiddenSize, ffn = shape.intermediateSize, e = shape.embeddingSize
    var layout: [(name: String, shape: [Int])] = [
        (names.wordEmbeddings, [shape.vocabSize, e]),
        (names.positionEmbeddings, [shape.maxPositions, e]),
    ]
    if let types = names.tokenTypeEmbeddings { layout.append((types, [shape.typeVocabSize, e])) }
    layout += [(names.embeddingNorm + ".weight", [e]), (names.embeddingNorm + ".bias", [e])]
    if let projection = names.embeddingProjection { layout += [(projection + ".weight", [h, e]), (projection + ".bias", [h])] }
    for (index, layer) in names.layers.enumerated() {
        // a: the layer's attention width, h unless heads were removed (pruned_heads).
        let a = shape.attentionWidth(layer: index)
        layout += [(layer.query + ".weight", [a, h]), (layer.key + ".weight", [a, h]), (layer.value + ".weight", [a, h]),
                   (layer.query + ".bias", [a]), (layer.key + ".bias", [a]), (layer.value + ".bias", [a]),
                   (layer.attentionOutput + ".weight", [h, a]), (layer.attentionOutput + ".bias", [h]),
                   (layer.attentionNorm + ".weight", [h]), (layer.attentionNorm + ".bias", [h]),
                   (layer.ffnIn + ".weight", [ffn, h]), (layer.ffnIn + ".bias", [ffn]),
                   (layer.ffnOut + ".weight", [h, ffn]), (layer.ffnOut + ".bias", [h]),
                   (layer.outputNorm + ".weight", [h]), (layer.outputNorm + ".bias", [h])]
    }
    if let pooler = names.unusedPooler { layout += [(pooler + ".weight", [h, h]), (pooler + ".bias", [h])] }
    let hidden = headHiddenSize(shape, head)
    layout += [(names.headHidden + ".weight", [hidden, head.inputLayers * h]), (names.headHidden + ".bias", [hidden]),
               (names.headOutput + ".weight", [numLabels, hidden]), (names.headOutput + ".bias", [numLabels])]
    return layout
}

/// Fills a store as Hugging Face initialises a fresh model (`_init_weights`): weights and embeddings
/// from normal(0, initializerRange), biases 0, LayerNorm weight 1 and bias 0, the padding token's
/// embedding row 0. The seed framework's MLP head is a plain `torch.nn.Linear` pair, so it gets
/// PyTorch's default uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases.
func initializeParameters(_ store: ParameterStore, names: ModelParameterNames, head: ClassifierHead,
                          seed: UInt64, initializerRange: Float = 0.02, paddingTokenId: Int = 0) {
    // SplitMix64 with the seed as it is (stream 0): the same seed gives the same model on every machine.
    var random = SplitMix64(seed: seed)
    let seedHead: Set<String> = {
        guard case .seedMLP = head else { return [] }
        return [names.headHidden + ".weight", names.headHidden + ".bias", names.headOutput + ".weight", names.headOutput + ".bias"]
    }()
    for view in store.views {
        let values = store.values + view.offset
        if seedHead.contains(view.name) {
            let fanIn = view.name.hasSuffix(".weight") ? view.shape[1] : (store.view(named: view.name.replacingOccurrences(of: ".bias", with: ".weight"))?.shape[1] ?? 1)
            let bound = 1 / Float(fanIn).squareRoot()
            for i in 0..<view.count { values[i] = (random.nextUnit() * 2 - 1) * bound }
        } else if view.name.hasSuffix("LayerNorm.weight") || view.name.hasSuffix("layer_norm.weight") {
            values.update(repeating: 1, count: view.count)
        } else if view.name.hasSuffix(".bias") {
            values.update(repeating: 0, count: view.count)
        } else {
            var i = 0
            while i < view.count {
                let (a, b) = random.nextNormalPair()
                values[i] = a * initializerRange
                if i + 1 < view.count { values[i + 1] = b * initializerRange }
                i += 2
            }
        }
    }
    if paddingTokenId >= 0, let words = store.view(named: names.wordEmbeddings), paddingTokenId < words.shape[0] {
        (store.values + words.offset + paddingTokenId * words.shape[1]).update(repeating: 0, count: words.shape[1])
    }
}
