import Foundation

/// A trained model in one of the two folders the seed framework writes, read as the seed
/// checkpoint's state dict (`encoder.*`, `classifier.0.*`, `classifier.3.*`):
///
///   final_<stages>/ (`save_model_for_huggingface`): the encoder's `save_pretrained` at the top
///       (`config.json` and weights, an AutoModel without a head), `classifier.pt` (the state dict of
///       `Sequential(Linear(H, hidden), ReLU, Dropout, Linear(hidden, labels))`), `classifier_config.json`
///       (its `num_labels`) and the tokenizer files. Its loader pools [CLS].
///   save_pretrained(dir) (`TransformerBinaryClassifier`, the teacher and student wrappers):
///       `dir/encoder/` (the encoder's `save_pretrained` and the tokenizer), `dir/classifier.pt`, and
///       `dir/model_config.json` with `pooling_type` (cls, mean, max), `use_multi_layers` (the [CLS]
///       vectors of the last 4 hidden states, last first, concatenated: the head reads 4·H) and `dropout`.
///
/// A head whose first linear layer reads 4·H values is the multi-layer head in either folder.
struct SeedFolder {
    /// The encoder's config.
    let config: ModelConfig
    let weights: StateDict
    /// The encoder's weights file, named in errors.
    let weightsFile: URL
    let tokenizerDirectory: URL
    let head: ClassifierHead
    /// `pooling_type`, when the folder records one.
    let pooling: Pooling?
    /// The head's dropout, when the folder records one.
    let dropout: Double?

    static let headFileName = "classifier.pt"
    /// How many hidden states the seed's `use_multi_layers` head reads.
    static let multiLayerCount = 4

    /// The folder's model, or nil when `directory` is neither layout (no `classifier.pt`).
    static func read(_ directory: URL) throws -> SeedFolder? {
        let files = FileManager.default
        let headFile = directory.appendingPathComponent(headFileName)
        guard files.fileExists(atPath: headFile.path) else { return nil }
        let nested = directory.appendingPathComponent("encoder")
        let encoderDirectory = files.fileExists(atPath: nested.appendingPathComponent("config.json").path) ? nested : directory
        let (config, encoderWeights, weightsFile) = try HuggingFaceDirectory.read(encoderDirectory)

        let settings = try ModelSettings(directory: directory)
        let classifier = try StateDict.read(headFile)
        func fail(_ problem: String) -> CheckpointError { CheckpointError(file: headFile.path, problem: problem) }
        var weights = encoderWeights.renamingPrefix("", to: "encoder.")
        for key in ["0.weight", "0.bias", "3.weight", "3.bias"] {
            guard let tensor = classifier[key] else {
                throw fail("no tensor '\(key)': expected the state dict of Sequential(Linear, ReLU, Dropout, Linear) (0.weight, 0.bias, 3.weight, 3.bias)")
            }
            weights["classifier." + key] = tensor
        }
        guard let first = classifier["0.weight"]?.shape, first.count == 2, let last = classifier["3.weight"]?.shape, last.count == 2 else {
            throw fail("0.weight and 3.weight must be matrices")
        }
        let H = config.hiddenSize
        let layers: Int
        switch first[1] {
        case H where settings.multiLayers != true: layers = 1
        case multiLayerCount * H where settings.multiLayers != false: layers = multiLayerCount
        default:
            let expected = settings.multiLayers == true ? "4·\(H) (use_multi_layers)" : settings.multiLayers == false ? "\(H)" : "\(H) or 4·\(H)"
            throw fail("0.weight reads \(first[1]) values, the encoder's hidden size \(H) needs \(expected)")
        }
        guard layers <= config.numLayers + 1 else {
            throw fail("the head reads the last \(layers) hidden states, the encoder has \(config.numLayers + 1)")
        }
        if let declared = settings.numLabels, declared != last[0] {
            throw CheckpointError(file: directory.appendingPathComponent("classifier_config.json").path,
                                  problem: "num_labels is \(declared), but classifier.pt's 3.weight has \(last[0]) rows")
        }
        return SeedFolder(config: config, weights: weights, weightsFile: weightsFile, tokenizerDirectory: encoderDirectory,
                          head: .seedMLP(hidden: first[0], layers: layers), pooling: settings.pooling, dropout: settings.dropout)
    }

    /// What `model_config.json` and `classifier_config.json` say, where they exist.
    private struct ModelSettings {
        var pooling: Pooling?
        var multiLayers: Bool?
        var dropout: Double?
        var numLabels: Int?

        init(directory: URL) throws {
            if let object = try Self.object(directory.appendingPathComponent("model_config.json")) {
                let file = directory.appendingPathComponent("model_config.json").path
                if let value = object["pooling_type"], !value.isNull {
                    guard let name = value.stringValue, let pooling = Pooling(rawValue: name) else {
                        throw CheckpointError(file: file, problem: "pooling_type is \(value.summary), not \"cls\", \"mean\" or \"max\"")
                    }
                    self.pooling = pooling
                }
                if let value = object["use_multi_layers"], !value.isNull {
                    guard let flag = value.boolValue else { throw CheckpointError(file: file, problem: "use_multi_layers is \(value.summary), not true or false") }
                    multiLayers = flag
                }
                if let value = object["dropout"], !value.isNull {
                    guard let p = value.doubleValue, p >= 0, p < 1 else {
                        throw CheckpointError(file: file, problem: "dropout is \(value.summary), not a probability in [0, 1)")
                    }
                    dropout = p
                }
            }
            if let object = try Self.object(directory.appendingPathComponent("classifier_config.json")),
               let value = object["num_labels"], !value.isNull {
                guard let count = value.intValue else {
                    throw CheckpointError(file: directory.appendingPathComponent("classifier_config.json").path,
                                          problem: "num_labels is \(value.summary), not an integer")
                }
                numLabels = count
            }
        }

        /// The JSON object in `url`, nil when there is no such file.
        private static func object(_ url: URL) throws -> [String: JSONValue]? {
            guard FileManager.default.fileExists(atPath: url.path) else { return nil }
            let data: Data
            do { data = try Data(contentsOf: url) } catch {
                throw CheckpointError(file: url.path, problem: "cannot read the file (\(error.localizedDescription))")
            }
            guard let object = (try? JSONValue.parse(data))?.objectValue else {
                throw CheckpointError(file: url.path, problem: "not a JSON object")
            }
            return object
        }
    }
}
