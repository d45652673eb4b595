// `baseline`: k-fold training of the teacher every later stage starts from. Its training options are
// the run's own (`--epochs`, `--lr`, …: CLI/RunOptions.swift), so it declares none here.
struct BaselineSettings: StageDeclaration {
    static let name = "baseline"
    static let summary = "k-fold training of the teacher (its options are the training options above)"
    static var options: [StageOption<Self>] { [] }

    static func placementProblem(after earlier: [String]) -> String? {
        earlier.isEmpty ? nil : "baseline can only be the first stage"
    }

    func validate(_ check: StageCheck) throws -> ResolvedMethod? { nil }

    func implementation() -> CompressionStage? { nil }
}
