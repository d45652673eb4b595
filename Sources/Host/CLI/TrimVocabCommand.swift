import ArgumentParser
import Foundation
import Logging

/// `sankshep trim-vocab`: a model folder with only the embedding rows its comments use
/// (Pipeline/Trimming/VocabularyTrimming.swift), outside a pipeline run.
struct TrimVocabCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trim-vocab",
        abstract: "Keep only the embedding rows of the tokens a set of comments uses (plus the special tokens) and rewrite the tokenizer files with the new ids.",
        discussion: """
            Every text whose tokens were all kept tokenizes as before and gets the same logits. --held_out counts the tokens \
            of other comments that fall outside the kept vocabulary. In a pipeline run, --trim_vocab (or a trim_vocab recipe \
            stage) does the same with the run's training comments.
            """
    )

    @Option(help: "Model folder (float weights: trim before quantizing).")
    var model: String

    @Option(name: .customLong("data_path"), help: "CSV of the comments whose tokens are kept (Comments column).")
    var dataPath: String

    @Option(name: .customLong("held_out"), help: "CSV of comments to count unseen tokens in (default: none).")
    var heldOut: String?

    @Option(name: .customLong("top_k"), help: "Also keep the K most frequent tokens of --corpus.")
    var topK = 0

    @Option(help: "CSV of comments whose --top_k most frequent tokens are kept too.")
    var corpus: String?

    @Option(help: "Folder to write (created if needed; must not be --model).")
    var output: String

    func validate() throws {
        guard URL(fileURLWithPath: model).standardizedFileURL.path != URL(fileURLWithPath: output).standardizedFileURL.path else {
            throw ValidationError("--output must be another folder than --model (\(model))")
        }
        guard topK >= 0 else { throw ValidationError("--top_k must be ≥ 0, got \(topK)") }
        if topK > 0, corpus == nil { throw ValidationError("--top_k needs --corpus, the comments to count tokens in") }
    }

    func run() throws {
        let logger = Logger(label: "sankshep.trim-vocab")
        let classifier = try Classifier.load(from: URL(fileURLWithPath: model), logger: logger)
        let texts = try CommentTexts.load(contentsOf: URL(fileURLWithPath: dataPath)).texts
        let corpusTexts = try corpus.map { try CommentTexts.load(contentsOf: URL(fileURLWithPath: $0)).texts } ?? []
        let heldOutTexts = try heldOut.map { try CommentTexts.load(contentsOf: URL(fileURLWithPath: $0)).texts } ?? []
        let used = VocabularyTrimming.keptIds(tokenizer: classifier.tokenizer, trainingTexts: texts)
        let kept = topK > 0
            ? VocabularyTrimming.keptIds(tokenizer: classifier.tokenizer, trainingTexts: texts, corpus: corpusTexts, topK: topK) : used
        let destination = URL(fileURLWithPath: output)
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("sankshep-trim-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let trimmed = try VocabularyTrimming.trim(classifier, keeping: kept, tokenizerDirectory: scratch)
        try trimmed.save(to: destination, extra: ["stage": "trim_vocab"])
        let report = VocabularyTrimming.report(before: classifier, after: trimmed, kept: kept, trainingTokens: used.count,
                                               heldOutTexts: heldOutTexts)
        let megabytes = { (parameters: Int) in String(format: "%.1f", Double(parameters) * 4 / 1e6) }
        print("vocabulary \(report.vocabularyBefore) → \(report.vocabularyAfter) (the comments use \(report.trainingTokens) distinct tokens)")
        print("parameters \(report.parametersBefore) → \(report.parametersAfter) (FP32 \(megabytes(report.parametersBefore)) MB → \(megabytes(report.parametersAfter)) MB)")
        if !heldOutTexts.isEmpty {
            print("held-out tokens outside the kept vocabulary: \(report.heldOutTokensUnseen) of \(report.heldOutTokens), in \(report.heldOutTextsTouched) of \(report.heldOutTexts) comments")
        }
        print("written to \(destination.path)")
    }
}
