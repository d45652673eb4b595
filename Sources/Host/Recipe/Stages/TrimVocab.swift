/// `trim_vocab`: keep only the embedding rows of the tokens the training comments use, and rewrite
/// the tokenizer with the new ids (Pipeline/Trimming/VocabularyTrimming.swift). Recipes only; outside
/// a run, `sankshep trim-vocab` does the same to a model folder.
struct TrimVocabStage: StageDeclaration {
    /// Also keep the `top_k` most frequent tokens of `corpus` (a CSV with a Comments column).
    var topK = 0
    var corpus = ""

    static let name = "trim_vocab"
    static let summary = "keep the embedding rows of the tokens the training comments use; before prune and quantize"
    static let modelWord: ModelWord? = .adjective("trimmed")

    static var options: [StageOption<Self>] {
        [
            .integer("top_k", flag: nil, \.topK, minimum: 0, maximum: OptionKind.largestCount,
                     help: "Also keep the K most frequent tokens of corpus."),
            .name("corpus", flag: nil, \.corpus, help: "A CSV of comments (Comments column) whose top_k most frequent tokens are kept too."),
        ]
    }

    mutating func finish(given: Set<String>, place: OptionPlace) throws {
        if topK > 0, corpus.isEmpty { throw place.fail("top_k", "needs a corpus to count tokens in") }
    }

    /// After the model it trims is made (baseline, distill), before a stage that changes its weights'
    /// storage (quantize).
    static func placementProblem(after earlier: [String]) -> String? {
        earlier.firstIndex(of: QuantizeStage.name).map { "trim_vocab after quantize is impossible: trim the float model (stage \($0 + 1) is quantize)" }
    }

    func validate(_ check: StageCheck) throws -> ResolvedMethod? { nil }

    func implementation() -> CompressionStage? { VocabularyTrimStage(stage: self) }
}
