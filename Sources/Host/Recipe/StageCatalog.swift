/// The implementation of each kind of recipe stage after the baseline (which `BaselineStage` runs).
enum StageCatalog {
    static func implementation(for stage: RecipeStage) -> CompressionStage? {
        switch stage {
        case .baseline: return nil
        case .distill(let distill): return DistillationStage(stage: distill)
        case .prune(let prune): return PruningStage(stage: prune)
        case .quantize(let quantize): return QuantizationStage(stage: quantize)
        case .trimVocab(let trim): return VocabularyTrimStage(stage: trim)
        }
    }
}
