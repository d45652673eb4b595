/// The implementation of each kind of recipe stage; nil where this build has none yet.
enum StageCatalog {
    static func implementation(for stage: RecipeStage) -> CompressionStage? {
        switch stage {
        case .baseline: return nil
        case .distill: return nil
        case .prune: return nil
        case .quantize(let quantize): return QuantizationStage(stage: quantize)
        }
    }
}
