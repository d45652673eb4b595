import Crypto
import Foundation

/// Where a final model came from: every stage with its options and plugin method, the seed, and the
/// data it was trained and evaluated on (path, rows, SHA-256), written beside the model.
struct Provenance: Encodable {
    struct Stage: Encodable {
        var label: String
        var kind: String
        var options: [String: String]
        var method: String?
        var plugin: String?
        var pluginVersion: String?
        var macroF1: Double?
        var threshold: Double?
        var sizeMB: Double?
    }

    var sankshepVersion: String
    var recipe: String
    var createdAt: String
    var seed: Int
    /// Who ran the job (`--author_name`).
    var author: String
    var dataPath: String
    var dataRows: Int
    var dataSHA256: String
    var heldOutRows: Int
    var teacherFold: Int
    var stages: [Stage]

    static let fileName = "provenance.json"

    func write(to directory: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(try encoder.encode(self), to: directory.appendingPathComponent(Self.fileName))
    }

    /// SHA-256 of a file, hex.
    static func sha256(of url: URL) throws -> String {
        let data = try Data(contentsOf: url, options: .alwaysMapped)
        return SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    /// The options a recipe stage ran with, as strings: every declared option that has a value, and
    /// the plugin method's options resolved (`option.<name>`).
    static func options(of stage: RecipeStage, method: ResolvedMethod?) -> [String: String] {
        var options = stage.settings.recordedOptions
        for (name, value) in method?.orderedOptions ?? [] { options["option." + name] = value }
        return options
    }
}

/// The README.md of a final model folder: what it is, how well it does, how to load it.
enum ModelCard {
    /// How `transformers` loads the folder.
    enum Loading {
        /// Float (or F16) weights: `transformers` alone.
        case float
        /// A compressed-tensors checkpoint: with the `compressed-tensors` package.
        case compressedTensors
        /// Sankshep's own quantized format (a method without a standard layout): a dequantized
        /// folder from `sankshep export` instead.
        case sankshepOnly

        /// How the folder at `directory` loads.
        init(folder directory: URL) {
            if FileManager.default.fileExists(atPath: directory.appendingPathComponent(QuantizedClassifier.weightsFileName).path) {
                self = .sankshepOnly
            } else if (try? ModelConfig.read(directory.appendingPathComponent("config.json")))?.raw["quantization_config"] != nil {
                self = .compressedTensors
            } else {
                self = .float
            }
        }
    }

    /// `labels` is the head's logits: 1 (sigmoid) or 2 (softmax, hate speech at index 1; `BinaryReadout`).
    /// `maxLength`: the tokens per comment the model was trained with.
    static func markdown(title: String, provenance: Provenance, rows: [StageSummaryRow], final: StageSummaryRow,
                         loading: Loading = .float, labels: Int = 1, maxLength: Int = 128) -> String {
        let exportCommand = "sankshep export --model \(title) --format transformers --output \(title)-transformers"
        let folder = loading == .sankshepOnly ? "\(title)-transformers" : title
        let howToLoad: String = switch loading {
        case .float: "With Hugging Face `transformers` (see `sankshep.json` for the threshold):"
        case .compressedTensors: "With Hugging Face `transformers` and the `compressed-tensors` package installed (the folder is a "
            + "quantized checkpoint; see `sankshep.json` for the threshold; `\(exportCommand)` writes the dequantized float folder):"
        case .sankshepOnly: "The folder is Sankshep's own quantized format, which Sankshep alone loads; for Hugging Face "
            + "`transformers`, `\(exportCommand)` writes the dequantized float folder (see `sankshep.json` for the threshold):"
        }
        func f(_ value: Double?, _ digits: Int = 4) -> String { value.map { String(format: "%.\(digits)f", $0) } ?? "n/a" }
        var lines = [
            "---",
            "language: bn",
            "library_name: transformers",
            "pipeline_tag: text-classification",
            "tags: [hate-speech, bangla, sankshep]",
            "---",
            "",
            "# \(title)",
            "",
            labels == 2 ? "A Bangla hate-speech classifier (two logits; softmax of index 1 > threshold means hate speech) made by Sankshep"
                : "A Bangla hate-speech classifier (one logit; sigmoid > threshold means hate speech) made by Sankshep",
            "with the recipe `\(provenance.recipe)`: \(provenance.stages.map(\.label).joined(separator: " → ")).",
            "",
            "## Data",
            "",
            "`\(provenance.dataPath)`: \(provenance.dataRows) comments (SHA-256 `\(provenance.dataSHA256.prefix(16))…`).",
            "Every stage is evaluated on the same \(provenance.heldOutRows) held-out comments (the validation split of",
            "the baseline's best fold, fold \(provenance.teacherFold)); seed \(provenance.seed).",
            "",
            "## Results on the held-out comments",
            "",
            "| stage | model | macro-F1 | F1 | ROC-AUC | threshold | parameters | non-zero | size MB | ms @1 | ms @32 | ratio |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in rows {
            lines.append("| \(row.stage) | \(row.model) | \(f(row.macroF1)) | \(f(row.f1)) | \(f(row.rocAUC)) | \(f(row.threshold, 2)) | \(row.parameters) | \(row.nonZeroParameters) | \(f(row.sizeMB, 2)) | \(f(row.latencyMsBatch1, 2)) | \(f(row.latencyMsBatch32, 2)) | \(f(row.compressionRatio, 1))× |")
        }
        lines += [
            "",
            "This model: macro-F1 \(f(final.macroF1)) at threshold \(f(final.threshold, 2)), \(f(final.sizeMB, 2)) MB on disk,",
            "\(f(final.latencyMsBatch1, 2)) ms per comment on the CPU it was measured on.",
            "",
            "## Use",
            "",
            "With Sankshep:",
            "",
            "    sankshep predict --model \(title) --text \"…\"",
            "",
            howToLoad,
            "",
            "```python",
            "from transformers import AutoTokenizer, AutoModelForSequenceClassification",
            "import torch",
            "tokenizer = AutoTokenizer.from_pretrained(\"\(folder)\")",
            "model = AutoModelForSequenceClassification.from_pretrained(\"\(folder)\")",
            "batch = tokenizer([\"…\"], return_tensors=\"pt\", truncation=True, max_length=\(maxLength))",
            labels == 2 ? "probability = torch.softmax(model(**batch).logits, dim=-1)[:, 1]" : "probability = torch.sigmoid(model(**batch).logits[:, 0])",
            "is_hate = probability > \(f(final.threshold, 2))",
            "```",
            "",
            "Provenance of every stage (options, plugin methods and versions): `provenance.json`.",
            "",
        ]
        return lines.joined(separator: "\n")
    }
}
