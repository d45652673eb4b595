/// The implementation of each kind of recipe stage; nil where this build has none yet.
enum StageCatalog {
    static func implementation(for stage: RecipeStage) -> CompressionStage? {
        switch stage {
        case .baseline: return nil
        case .distill(let stage): return DistillationStage(stage: stage)
        case .prune: return nil
        case .quantize: return nil
        }
    }
}
