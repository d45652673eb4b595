import ArgumentParser
import Foundation

/// `sankshep export`: a saved model in another on-disk form. A model folder holds one form (the one
/// `transformers` loads); the others are written here on request.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a saved model in another format: a dense FP32 transformers folder, compressed-tensors, or Sankshep's own quantized format.",
        discussion: """
            transformers: dense FP32 weights (a quantized model's dequantized; a pruned one's zeros and removed heads as zeros), \
            which transformers loads with nothing else. compressed-tensors: a quantized model's integer weights (what its folder \
            already holds), or a pruned float model's sparse-bitmask form (compact; loaded by transformers 4.x with \
            compressed-tensors ≤ 0.14). sankshep: a quantized model's plugin blobs as the plugin serialized them \
            (model.quantized.safetensors), loaded by Sankshep only.
            """
    )

    enum Format: String, CaseIterable, ExpressibleByArgument {
        case transformers
        case compressedTensors = "compressed-tensors"
        case sankshep
    }

    @Option(help: "Model folder (a stage's output, a final folder, best_model_<tag>/, or a Hugging Face folder).")
    var model: String

    @Option(help: "Format to write: \(Format.allCases.map(\.rawValue).joined(separator: ", ")).")
    var format: Format

    @Option(help: "Folder to write (created if needed; must not be --model).")
    var output: String

    @OptionGroup(title: "Plugins") var plugins: PluginPathOptions

    func validate() throws {
        let source = URL(fileURLWithPath: model).standardizedFileURL.path, destination = URL(fileURLWithPath: output).standardizedFileURL.path
        guard source != destination else { throw ValidationError("--output must be another folder than --model (\(model))") }
    }

    func run() throws {
        let logger = Logging.configure()
        let source = URL(fileURLWithPath: model), destination = URL(fileURLWithPath: output)
        let loaded = try loadDeployableModel(from: source, registry: plugins.registry(), logger: logger)
        let extra = SankshepSettings.read(from: source)?.extra ?? [:]
        try Self.export(loaded, format: format, extra: extra, to: destination)
        logger.info("\(model) written as \(format.rawValue) to \(output)")
    }

    /// Writes `model` in `format` into `directory`; a format the model has no form in is a one-line error.
    static func export(_ model: DeployableModel, format: Format, extra: [String: String], to directory: URL) throws {
        var extra = extra
        extra["format"] = format.rawValue
        switch (format, model) {
        case (.transformers, let quantized as QuantizedClassifier):
            if let layer = quantized.weights.first(where: { !$0.layer.canDequantize }) {
                throw ExportError("layer '\(layer.record.name)' (method \(layer.record.method)) cannot give its weights back in float: no transformers export")
            }
            try quantized.float.writeTransformersExport(to: directory, extra: extra.merging(["dequantized_from": quantized.method], uniquingKeysWith: { $1 }))
        case (.transformers, let classifier as Classifier):
            try classifier.save(to: directory, extra: extra)
        case (.compressedTensors, let quantized as QuantizedClassifier):
            let blobs = try quantized.weights.map { try $0.layer.serialize() }
            guard let layout = try QuantizedLayout.contents(float: quantized.float, weights: quantized.weights, blobs: blobs),
                  layout.quantizationConfig != nil else {
                throw ExportError("method '\(quantized.method)' has no compressed-tensors layout (fp16 is stored as F16 safetensors, other plugins' methods in their own format)")
            }
            try quantized.writeHuggingFaceLayout(to: directory, extra: extra, blobs: blobs)
        case (.compressedTensors, let classifier as Classifier):
            try classifier.writeSparseBitmaskExport(to: directory, extra: extra)
        case (.sankshep, let quantized as QuantizedClassifier):
            try quantized.writeSankshepFormat(to: directory, extra: extra)
        case (.sankshep, _):
            throw ExportError("'sankshep' is the format of quantized models; this is a float model (use --format transformers)")
        default:
            throw ExportError("\(model.summary) cannot be written as \(format.rawValue)")
        }
    }
}

struct ExportError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
