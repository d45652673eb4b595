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
    let layers: [EncoderLayerNames]
    /// The seed framework's BERT encoder keeps a pooler it never uses (no gradient, never updated).
    let unusedPooler: String?
    /// First linear layer of the head: `bert.pooler.dense`, `pre_classifier` or `classifier.0`.
    let headHidden: String
    /// Last linear layer of the head: `classifier` or `classifier.3`.
    let headOutput: String

    init(shape: EncoderShape, head: ClassifierHead) {
        let prefix: String
        switch head {
        case .bertPooler, .distilbert: prefix = shape.modelType == .bert ? "bert." : "distilbert."
        case .seedMLP: prefix = "encoder."
        }
        wordEmbeddings = prefix + "embeddings.word_embeddings.weight"
        positionEmbeddings = prefix + "embeddings.position_embeddings.weight"
        tokenTypeEmbeddings = shape.modelType == .bert ? prefix + "embeddings.token_type_embeddings.weight" : nil
        embeddingNorm = prefix + "embeddings.LayerNorm"
        layers = (0..<shape.layers).map { i in
            switch shape.modelType {
            case .bert:
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
            headHidden = "bert.pooler.dense"
            headOutput = "classifier"
        case .distilbert:
            unusedPooler = nil
            headHidden = "pre_classifier"
            headOutput = "classifier"
        case .seedMLP:
            unusedPooler = shape.modelType == .bert ? "encoder.pooler.dense" : nil
            headHidden = "classifier.0"
            headOutput = "classifier.3"
        }
    }

    /// Names of every encoder parameter (embeddings and layers, and the unused pooler): what
    /// `--freeze_base` freezes. The head (including BERT's pooler) stays trainable.
    func encoderParameterNames() -> [String] {
        var names = [wordEmbeddings, positionEmbeddings, embeddingNorm + ".weight", embeddingNorm + ".bias"]
        if let tokenTypeEmbeddings { names.append(tokenTypeEmbeddings) }
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
    let h = shape.hiddenSize, ffn = shape.intermediateSize
    var layout: [(name: String, shape: [Int])] = [
        (names.wordEmbeddings, [shape.vocabSize, h]),
        (names.positionEmbeddings, [shape.maxPositions, h]),
    ]
    if let types = names.tokenTypeEmbeddings { layout.append((types, [shape.typeVocabSize, h])) }
    layout += [(names.embeddingNorm + ".weight", [h]), (names.embeddingNorm + ".bias", [h])]
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
