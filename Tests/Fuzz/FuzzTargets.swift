import Foundation

// libFuzzer harnesses for every parser of model folders, data and recipes. `scripts/fuzz.sh` compiles
// this file together with Sources/Host (all but the @main command) under -sanitize=fuzzer,address;
// SANKSHEP_FUZZ_TARGET chooses the parser, Tests/Fuzz/corpus/<target>/ holds its seeds.
//
// Beyond "no crash, no hang, no leak of memory", each target checks what a parser promises:
//   - a refusal is one line (the error names the file; a user reads it in a terminal);
//   - what is accepted is usable: token ids inside the vocabulary, probabilities in [0, 1].
// A broken promise aborts, so libFuzzer saves the input as a crash.

/// The parser one run feeds.
enum FuzzTarget: String, CaseIterable {
    case safetensors, torchZip = "torch-zip", torchLegacy = "torch-legacy", config, vocab, tokenizerJSON = "tokenizer-json"
    case settings = "sankshep-json", manifest, csv, recipe
}

/// Files a target writes its input to (the parsers read files by name), in a folder of this process.
let scratch: URL = {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sankshep-fuzz-\(getpid())")
    try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    return folder
}()

let chosenTarget: FuzzTarget = {
    let name = ProcessInfo.processInfo.environment["SANKSHEP_FUZZ_TARGET"] ?? ""
    guard let target = FuzzTarget(rawValue: name) else {
        FileHandle.standardError.write(Data("SANKSHEP_FUZZ_TARGET must be one of \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")), got '\(name)'\n".utf8))
        exit(2)
    }
    return target
}()

/// A broken promise: the message goes to standard error and the process aborts (libFuzzer keeps the input).
func broken(_ message: String) -> Never {
    FileHandle.standardError.write(Data("FUZZ: \(message)\n".utf8))
    abort()
}

/// Runs `body`; an error it throws must be one line.
func refusalIsOneLine<T>(_ body: () throws -> T) -> T? {
    do { return try body() } catch {
        let text = "\(error)"
        if text.contains("\n") { broken("error of more than one line: \(text)") }
        return nil
    }
}

func write(_ data: Data, _ name: String) -> URL {
    let url = scratch.appendingPathComponent(name)
    do { try data.write(to: url) } catch { broken("cannot write the scratch file \(url.path): \(error)") }
    return url
}

/// Texts every accepted tokenizer encodes; each id must be inside its vocabulary.
let sampleTexts = ["আমি বাংলায় গান গাই", "Hello, WORLD! naïve café", "", "  \t\n ", "a" + String(repeating: "ক", count: 300), "[CLS] [SEP] [UNK] ##"]

func checkTokenizer(_ tokenizer: BertTokenizer) {
    for text in sampleTexts {
        for maxLength in [nil, 2, 8] as [Int?] {
            let ids = tokenizer.encode(text, maxLength: maxLength)
            if let bad = ids.first(where: { !(0..<tokenizer.vocabularySize).contains($0) }) {
                broken("token id \(bad) outside the vocabulary of \(tokenizer.vocabularySize) for \"\(text.prefix(20))\"")
            }
            if let maxLength, ids.count > maxLength { broken("\(ids.count) ids for max_length \(maxLength)") }
        }
    }
}

// MARK: - The quantized model a manifest is checked against

/// A tiny quantized classifier's folder, made once: the manifest target replaces its
/// `sankshep.layers` metadata with the input and loads the folder.
struct QuantizedFixture {
    let folder: URL
    let entries: [SafeTensorsWriter.Entry]
    let metadata: [String: String]
    let registry: PluginRegistry
    let sequences: [[Int]]

    static let shared = QuantizedFixture.make()

    static func registry() -> PluginRegistry {
        let plugins = ProcessInfo.processInfo.environment["SANKSHEP_FUZZ_PLUGINS"] ?? ".build/debug"
        do { return try PluginRegistry(searchPath: PluginSearchPath(explicit: [plugins], environment: nil, executableFolder: nil)) }
        catch { broken("the built-in plugins did not load from \(plugins) (set SANKSHEP_FUZZ_PLUGINS): \(error)") }
    }

    static func make() -> QuantizedFixture {
        do {
            let tokenizerFolder = scratch.appendingPathComponent("tokenizer")
            try FileManager.default.createDirectory(at: tokenizerFolder, withIntermediateDirectories: true)
            let vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "আমি", "গান", "##ই", "hello", "world", "a", "##b"]
            try Data((vocabulary.joined(separator: "\n") + "\n").utf8).write(to: tokenizerFolder.appendingPathComponent("vocab.txt"))
            let preset = ModelPreset(name: "fuzz", summary: "fuzz", hiddenSize: 8, layers: 1, heads: 2, intermediateSize: 16,
                                     maxPositions: 16, learningRate: 1e-3, epochs: 1, batchSize: 2)
            let classifier = try Classifier.fromPreset(preset, tokenizerDirectory: tokenizerFolder, dropout: 0, pooling: .cls, seed: 1)
            let sequences = ["আমি গান গাই", "hello world", "ab"].map { classifier.tokenizer.encode($0, maxLength: 16) }
            let registry = registry()
            let method = ProcessInfo.processInfo.environment["SANKSHEP_FUZZ_QUANT_METHOD"] ?? "dynamic"
            let model = try QuantizedClassifier.quantize(classifier, method: registry.quantizer(named: method), options: [:], registry: registry,
                                                         calibration: (sequences, Array(sequences.indices), 2), seed: 1, logger: nil)
            let folder = scratch.appendingPathComponent("quantized")
            try model.save(to: folder, extra: [:])
            let file = try SafeTensorsFile(contentsOf: folder.appendingPathComponent("model.safetensors"))
            let entries = file.entries.map { SafeTensorsWriter.Entry(name: $0.name, dtype: $0.dtype, shape: $0.shape, bytes: file.rawBytes(of: $0)) }
            if ProcessInfo.processInfo.environment["SANKSHEP_FUZZ_PRINT_SEED"] != nil {
                // Unbuffered: libFuzzer ends the process without flushing stdio.
                FileHandle.standardOutput.write(Data((file.metadata["sankshep.layers"] ?? "").utf8))
                _exit(0)
            }
            return QuantizedFixture(folder: folder, entries: entries, metadata: file.metadata, registry: registry, sequences: sequences)
        } catch {
            broken("cannot make the quantized fixture: \(error)")
        }
    }
}

let recipeRegistry: PluginRegistry = QuantizedFixture.registry()

// MARK: - One input

func fuzzOne(_ data: Data) {
    switch chosenTarget {
    case .safetensors:
        guard let file = refusalIsOneLine({ try SafeTensorsFile(bytes: data, path: "fuzz.safetensors") }) else { return }
        for entry in file.entries {
            _ = refusalIsOneLine { try file.tensor(named: entry.name) }
            _ = refusalIsOneLine { try file.integers(named: entry.name) }
        }
    case .torchZip, .torchLegacy:
        let url = write(data, "pytorch_model.bin")
        if let state = refusalIsOneLine({ try TorchCheckpoint.read(url) }) {
            for name in state.names { _ = state[name]?.scalars.count }
        }
    case .config:
        if let config = refusalIsOneLine({ try ModelConfig(json: data, file: "config.json") }) {
            _ = refusalIsOneLine { try config.json() }
        }
    case .vocab:
        let url = write(data, "vocab.txt")
        if let tokenizer = refusalIsOneLine({ try BertTokenizer(vocabFile: url, configFile: nil) }) { checkTokenizer(tokenizer) }
    case .tokenizerJSON:
        let url = write(data, "tokenizer.json")
        if let tokenizer = refusalIsOneLine({ try BertTokenizer(tokenizerJSON: url) }) { checkTokenizer(tokenizer) }
    case .settings:
        let folder = scratch.appendingPathComponent("settings")
        try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        _ = write(data, "settings/sankshep.json")
        if let settings = refusalIsOneLine({ try SankshepSettings.load(from: folder) }), let settings {
            if !(0...1).contains(settings.threshold) { broken("threshold \(settings.threshold) accepted") }
        }
    case .manifest:
        let fixture = QuantizedFixture.shared
        var metadata = fixture.metadata
        metadata["sankshep.layers"] = String(decoding: data, as: UTF8.self)
        do {
            try SafeTensorsWriter.write(entries: fixture.entries, metadata: metadata, to: fixture.folder.appendingPathComponent("model.safetensors"))
        } catch { broken("cannot write the fixture: \(error)") }
        guard let model = refusalIsOneLine({ try loadDeployableModel(from: fixture.folder, registry: fixture.registry) }) else { return }
        if let probabilities = refusalIsOneLine({ try model.probabilities(sequences: fixture.sequences, rows: Array(fixture.sequences.indices), batchSize: 2) }) {
            if let bad = probabilities.first(where: { !(0...1).contains($0) }) { broken("probability \(bad) from an accepted manifest") }
        }
    case .csv:
        var options = CommentCSVOptions()
        options.onBadRows = data.first.map { $0 & 1 == 0 } == true ? .skip : .fail
        if let dataset = refusalIsOneLine({ try CommentDataset.load(bytes: data, file: "data.csv", options: options) }) {
            if dataset.texts.count != dataset.labels.count || dataset.labels.contains(where: { $0 != 0 && $0 != 1 }) {
                broken("a dataset of \(dataset.texts.count) texts and \(dataset.labels.count) labels, labels \(Set(dataset.labels))")
            }
        }
        _ = refusalIsOneLine { try CommentTexts.load(table: try CSVTable(bytes: data, file: "data.csv"), options: options, logger: nil) }
    case .recipe:
        let text = String(decoding: data, as: UTF8.self)
        if let recipe = refusalIsOneLine({ try Recipe.parse(yaml: text, file: "recipe.yaml") }) {
            _ = refusalIsOneLine { try recipe.validate(methods: recipeRegistry) }
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ bytes: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    fuzzOne(Data(bytes: bytes, count: size))
    return 0
}
