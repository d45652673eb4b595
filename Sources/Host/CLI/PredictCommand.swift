import ArgumentParser
import Foundation
import Kernels

/// `sankshep predict`: probabilities and labels for new comments from a saved model.
struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Classify comments with a saved model: one JSON line per comment with its probability and label.",
        discussion: "The label uses the threshold saved with the model (sankshep.json), or 0.5 for a plain Hugging Face folder."
    )

    @Option(help: "Model folder (a stage's output, quantized ones included, best_model_<tag>/, or a Hugging Face folder).")
    var model: String

    @Option(help: "A comment to classify (repeatable).")
    var text: [String] = []

    @Option(help: "CSV file of comments to classify (the --text_column column).")
    var input: String?

    @Option(name: .customLong("text_column"), help: "Column of --input holding the comments.")
    var textColumn = "Comments"

    @Option(name: .customLong("on_bad_rows"), help: "Rows of --input without a usable text: fail or skip.")
    var onBadRows: BadRowPolicy = .fail

    @Option(help: "Write the JSON lines to this file (atomically) instead of standard output.")
    var output: String?

    @Option(help: "Override the saved decision threshold.")
    var threshold: Double?

    @Option(name: .customLong("max_length"), help: "Maximum tokens per comment (default: the model's saved max_length, else 128).")
    var maxLength: Int?

    @Option(help: "Comments per forward pass.")
    var batch = 64

    @Option(help: "Threads for the compute kernels (default: all cores).")
    var threads: Int?

    @OptionGroup(title: "Plugins") var plugins: PluginPathOptions

    func validate() throws {
        guard !text.isEmpty || input != nil else { throw ValidationError("give --text or --input") }
        if let threshold, !(0...1).contains(threshold) { throw ValidationError("--threshold must be in [0, 1], got \(threshold)") }
        guard batch > 0 else { throw ValidationError("--batch must be positive, got \(batch)") }
        if let maxLength, maxLength < 3 { throw ValidationError("--max_length must be at least 3, got \(maxLength)") }
    }

    func run() throws {
        let logger = Logging.configure()
        sk_set_threads(Int32(threads ?? ProcessInfo.processInfo.activeProcessorCount))
        let classifier = try loadDeployableModel(from: URL(fileURLWithPath: model), registry: plugins.registry(), logger: logger)
        var texts = text
        var rows: [Int?] = text.map { _ in nil }
        if let input {
            var options = CommentCSVOptions()
            options.textColumn = textColumn
            options.onBadRows = onBadRows
            let loaded = try CommentTexts.load(contentsOf: URL(fileURLWithPath: input), options: options, logger: logger)
            texts += loaded.texts
            rows += loaded.sourceRows.map { Optional($0) }
        }
        let cut = threshold ?? classifier.threshold
        let probabilities = try classifier.probabilities(of: texts, maxLength: maxLength ?? classifier.maxLength ?? DataOptions.defaultMaxLength,
                                                         batchSize: batch)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var lines = Data()
        for (index, probability) in probabilities.enumerated() {
            let prediction = Prediction(row: rows[index], text: texts[index], probability: Double(probability),
                                        label: Double(probability) > cut ? 1 : 0)
            lines.append(try encoder.encode(prediction))
            lines.append(0x0A)
        }
        if let output {
            try AtomicFile.write(lines, to: URL(fileURLWithPath: output))
            logger.info("\(texts.count) predictions written to \(output)")
        } else {
            FileHandle.standardOutput.write(lines)
        }
    }

    struct Prediction: Encodable {
        let row: Int?
        let text: String
        let probability: Double
        let label: Int
    }
}

/// `sankshep eval`: metrics of a saved model on a labelled CSV, with the threshold search.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a saved model on a labelled CSV: metrics at its threshold and the threshold search."
    )

    @Option(help: "Model folder (a stage's output, quantized ones included, best_model_<tag>/, or a Hugging Face folder).")
    var model: String

    @OptionGroup(title: "Data") var data: DataOptions

    @Option(help: "Comments per forward pass.")
    var batch = 64

    @Option(help: "Threads for the compute kernels (default: all cores).")
    var threads: Int?

    @OptionGroup(title: "Plugins") var plugins: PluginPathOptions

    @Option(help: "Write the metrics as JSON to this file (atomically).")
    var output: String?

    @Option(help: "Seed of the --data_fraction subsample (the same rows as `sankshep run` with this seed).")
    var seed = 42

    func run() throws {
        let logger = Logging.configure()
        sk_set_threads(Int32(threads ?? ProcessInfo.processInfo.activeProcessorCount))
        let classifier = try loadDeployableModel(from: URL(fileURLWithPath: model), registry: plugins.registry(), logger: logger)
        let dataURL = try data.dataPath.map { URL(fileURLWithPath: $0) } ?? BundledResources.defaultDataset()
        let dataset = try CommentDataset.load(contentsOf: dataURL, options: data.csvOptions(seed: seed), logger: logger)
        let maxLength = data.givenMaxLength ?? classifier.maxLength ?? DataOptions.defaultMaxLength
        let probabilities = try classifier.probabilities(of: dataset.texts, maxLength: maxLength, batchSize: batch)
        let atThreshold = MetricsRow(ClassificationMetrics(probabilities: probabilities, labels: dataset.labels, threshold: classifier.threshold))
        let search = ThresholdSearch.search(probabilities: probabilities, labels: dataset.labels)
        let report = EvaluationReport(model: model, data: dataURL.path, rows: dataset.count, atSavedThreshold: atThreshold,
                                      sweepBest: MetricsRow(search.bestOfSweep), bestCut: MetricsRow(search.bestCut))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let json = try encoder.encode(report)
        if let output { try AtomicFile.write(json, to: URL(fileURLWithPath: output)) }
        FileHandle.standardOutput.write(json + Data("\n".utf8))
    }

    struct EvaluationReport: Encodable {
        let model: String
        let data: String
        let rows: Int
        let atSavedThreshold: MetricsRow
        let sweepBest: MetricsRow
        let bestCut: MetricsRow
    }
}
