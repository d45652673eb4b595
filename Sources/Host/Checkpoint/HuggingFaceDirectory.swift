import Foundation

/// A model folder as Hugging Face's `save_pretrained` lays it out: `config.json`, the weights, and
/// the tokenizer files. Sankshep reads the folders people download and writes folders that
/// `AutoModelForSequenceClassification.from_pretrained` loads.
enum HuggingFaceDirectory {
    /// The weights file of a model folder, in Hugging Face's order of preference: `model.safetensors`,
    /// then `pytorch_model.bin`, then the seed framework's single `best_model_*.pt` (or a
    /// `best_model_*.safetensors` that Sankshep's pipeline wrote).
    static func weightsFile(in directory: URL) throws -> URL {
        let path = directory.path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw CheckpointError(file: path, problem: "no such model folder")
        }
        for name in ["model.safetensors", "pytorch_model.bin"] {
            let candidate = directory.appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: candidate.path) { return candidate }
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        let bestModels = names.filter { $0.hasPrefix("best_model_") && ($0.hasSuffix(".pt") || $0.hasSuffix(".safetensors")) }.sorted()
        if bestModels.count == 1 { return directory.appendingPathComponent(bestModels[0]) }
        if bestModels.count > 1 {
            throw CheckpointError(file: path, problem: "several weights files (\(bestModels.joined(separator: ", "))); pass the one to use")
        }
        if names.contains(where: { $0.hasSuffix(".index.json") }) {
            throw CheckpointError(file: path, problem: "sharded checkpoints (*.index.json) are not supported; save the model as one file")
        }
        throw CheckpointError(file: path, problem: "no model.safetensors, pytorch_model.bin or best_model_*.pt in the folder")
    }

    /// The config and weights of a model folder (a weights file path is accepted too: its folder
    /// must then hold `config.json`).
    static func read(_ location: URL) throws -> (config: ModelConfig, weights: StateDict, weightsFile: URL) {
        var isDirectory: ObjCBool = false
        let isFolder = FileManager.default.fileExists(atPath: location.path, isDirectory: &isDirectory) && isDirectory.boolValue
        let weightsFile = isFolder ? try weightsFile(in: location) : location
        let config = try ModelConfig.read(weightsFile.deletingLastPathComponent().appendingPathComponent("config.json"))
        return (config, try StateDict.read(weightsFile), weightsFile)
    }

    /// Writes `config.json`, `model.safetensors` (metadata `format: pt`, which `transformers`
    /// expects) and copies of the tokenizer files into `directory`, creating it if needed. Every file
    /// is written atomically, so a folder interrupted half-way never holds a torn file.
    static func write(config: ModelConfig, tensors: [(name: String, tensor: Tensor)], tokenizerFiles: [URL], to directory: URL) throws {
        // Weights the config announces as sparse-bitmask (a pruned model) are stored compactly.
        let sparseTargets = SparseBitmask.targets(in: config) ?? []
        try write(config: config, entries: SparseBitmask.entries(tensors, targets: sparseTargets), tokenizerFiles: tokenizerFiles, to: directory)
    }

    /// The same with the weights already in their on-disk form (e.g. compressed-tensors quantized
    /// tensors, which the config must announce).
    /// `metadata` is added to the weights file's (`format: pt` is always there).
    static func write(config: ModelConfig, entries: [SafeTensorsWriter.Entry], tokenizerFiles: [URL],
                      metadata: [String: String] = [:], to directory: URL) throws {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw FileWriteError(file: directory.path, problem: "cannot create the folder (\(error.localizedDescription))")
        }
        try SafeTensorsWriter.write(entries: entries, metadata: metadata.merging(["format": "pt"], uniquingKeysWith: { $1 }), to: directory.appendingPathComponent("model.safetensors"))
        try copyTokenizer(tokenizerFiles, to: directory)
        // The config last: a folder with a config.json is a complete model folder.
        try config.write(to: directory.appendingPathComponent("config.json"))
    }

    /// Bytes of every file in a model folder (sub-folders included) but the model card `README.md`
    /// and `provenance.json`: what a user ships to load the model (weights, config, tokenizer files,
    /// `sankshep.json`), the size the pipeline summary reports.
    static func shippedBytes(in directory: URL) throws -> Int {
        let fileManager = FileManager.default
        guard let walker = fileManager.enumerator(at: directory, includingPropertiesForKeys: [.isRegularFileKey, .fileSizeKey]) else {
            throw CheckpointError(file: directory.path, problem: "cannot list the model folder")
        }
        var total = 0
        for case let url as URL in walker {
            let values = try url.resourceValues(forKeys: [.isRegularFileKey, .fileSizeKey])
            guard values.isRegularFile == true else { continue }
            if url.deletingLastPathComponent().standardizedFileURL.path == directory.standardizedFileURL.path,
               notShipped.contains(url.lastPathComponent) { continue }
            total += values.fileSize ?? 0
        }
        return total
    }

    /// The files of a final folder that describe the model rather than load it.
    static let notShipped: Set<String> = ["README.md", "provenance.json"]

    /// Removes what an earlier save of another kind may have left in `directory` and the model now
    /// saved does not use (e.g. the export sub-folders older versions wrote beside the weights), so
    /// the folder holds one copy of the weights.
    static func removeStale(_ names: [String], in directory: URL) {
        for name in names {
            let url = directory.appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: url.path) { try? FileManager.default.removeItem(at: url) }
        }
    }

    /// Makes `destination` the folder `source` is, under another name: its files hard-linked (the same
    /// bytes, written once; copied where the file system cannot link). Built beside and renamed, so an
    /// interrupted run never leaves a half-made folder under the final name.
    static func publish(_ source: URL, as destination: URL) throws {
        let files = FileManager.default
        let staging = destination.deletingLastPathComponent()
            .appendingPathComponent(".\(destination.lastPathComponent).partial-\(UUID().uuidString)")
        do {
            try files.createDirectory(at: staging, withIntermediateDirectories: true)
            for name in try files.contentsOfDirectory(atPath: source.path) where !name.hasPrefix(".") {
                let from = source.appendingPathComponent(name), to = staging.appendingPathComponent(name)
                var isFolder: ObjCBool = false
                _ = files.fileExists(atPath: from.path, isDirectory: &isFolder)
                if isFolder.boolValue { try files.copyItem(at: from, to: to); continue }
                do { try files.linkItem(at: from, to: to) } catch { try files.copyItem(at: from, to: to) }
            }
            if files.fileExists(atPath: destination.path) { try files.removeItem(at: destination) }
            try files.moveItem(at: staging, to: destination)
        } catch {
            try? files.removeItem(at: staging)
            throw FileWriteError(file: destination.path, problem: "cannot be made from \(source.lastPathComponent)/ (\(error.localizedDescription))")
        }
    }

    /// Copies the tokenizer files into `directory`, and removes the other tokenizer files an earlier
    /// save may have left there (a folder holds only those loading needs).
    static func copyTokenizer(_ files: [URL], to directory: URL) throws {
        let intoSource = files.contains { $0.deletingLastPathComponent().standardizedFileURL.path == directory.standardizedFileURL.path }
        for file in files where !intoSource {
            try AtomicFile.copy(from: file, to: directory.appendingPathComponent(file.lastPathComponent))
        }
        if !intoSource {
            removeStale(["tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"]
                .filter { name in !files.contains { $0.lastPathComponent == name } }, in: directory)
        }
    }

    /// The tokenizer files of a model folder that loading needs, each once: `vocab.txt` with
    /// `tokenizer_config.json` when both are there (what Sankshep reads; `transformers` builds the
    /// same tokenizer from them, so a `tokenizer.json` beside them — the same vocabulary again — is
    /// not copied), else whichever of `tokenizer.json`, `tokenizer_config.json`, `vocab.txt` exist.
    static func tokenizerFiles(in directory: URL) -> [URL] {
        let present = ["tokenizer.json", "tokenizer_config.json", "vocab.txt"]
            .filter { FileManager.default.fileExists(atPath: directory.appendingPathComponent($0).path) }
        let needed = present.contains("vocab.txt") && present.contains("tokenizer_config.json")
            ? ["tokenizer_config.json", "vocab.txt"] : present
        return needed.map { directory.appendingPathComponent($0) }
    }
}
