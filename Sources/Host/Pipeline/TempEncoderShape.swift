
extension EncoderShape {
    /// The sizes the model needs from a parsed `ModelConfig`.
    init(_ config: ModelConfig) {
        self.init(modelType: config.modelType == .bert ? .bert : .distilbert, vocabSize: config.vocabSize,
                  hiddenSize: config.hiddenSize, layers: config.numLayers, heads: config.numHeads,
                  intermediateSize: config.intermediateSize, maxPositions: config.maxPositionEmbeddings,
                  typeVocabSize: config.typeVocabSize,
                  // DistilBERT's LayerNorms use 1e-12 whatever the config says.
                  layerNormEps: config.modelType == .distilbert ? 1e-12 : Float(config.layerNormEps),
                  hiddenDropout: Float(config.hiddenDropout), attentionDropout: Float(config.attentionDropout),
                  classifierDropout: Float(config.headDropout))
    }
}
