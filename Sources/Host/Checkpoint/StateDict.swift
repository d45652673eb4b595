import Foundation

/// Named tensors in file order: what a checkpoint holds, whatever its format.
struct StateDict: Sendable {
    private(set) var names: [String] = []
    private var tensors: [String: Tensor] = [:]

    init() {}

    init(_ tensors: [(name: String, tensor: Tensor)]) {
        for (name, tensor) in tensors { self[name] = tensor }
    }

    /// Setting a new name appends it; setting an existing one replaces the tensor in place;
    /// setting nil removes it.
    subscript(name: String) -> Tensor? {
        get { tensors[name] }
        set {
            if let newValue {
                if tensors.updateValue(newValue, forKey: name) == nil { names.append(name) }
            } else if tensors.removeValue(forKey: name) != nil {
                names.removeAll { $0 == name }
            }
        }
    }

    var count: Int { names.count }

    /// Name and tensor pairs in order, as `SafeTensorsWriter.write` takes them.
    var orderedTensors: [(name: String, tensor: Tensor)] { names.map { ($0, tensors[$0]!) } }

    // MARK: - Reading

    /// Reads a safetensors file or a `torch.save` zip, deciding by content, not by file name
    /// (the seed framework's `.pt` files and `pytorch_model.bin` are the same format), and applies
    /// the legacy key renames Hugging Face applies on load.
    static func read(_ url: URL) throws -> StateDict {
        let path = url.path
        let head: Data
        do {
            try InputFile.checkRegular(url)
            let handle = try FileHandle(forReadingFrom: url)
            defer { try? handle.close() }
            head = try handle.read(upToCount: 9) ?? Data()
        } catch {
            throw CheckpointError(file: path, problem: "cannot read the file (\(error.localizedDescription))")
        }
        let bytes = [UInt8](head)
        var stateDict: StateDict
        if bytes.starts(with: [0x50, 0x4B, 0x03, 0x04]) {                // "PK\3\4": a zip, as torch.save writes
            stateDict = try TorchCheckpoint.read(url)
        } else if bytes.count == 9, bytes[8] == UInt8(ascii: "{") {      // length prefix, then a JSON header
            // Sparse-bitmask and quantized weights (compressed-tensors) come back dense and float.
            let file = try SafeTensorsFile(contentsOf: url)
            stateDict = try SparseBitmask.denseStateDict(file)
            try CompressedTensorsQuantized.dequantize(&stateDict, file: file)
        } else if bytes.first == 0x80 {                                 // a pickle: torch.save's legacy stream
            stateDict = try TorchCheckpoint.read(url)
        } else if bytes.count < 9 {
            throw CheckpointError(file: path, problem: "truncated: \(bytes.count) bytes is too short for any checkpoint format")
        } else {
            throw CheckpointError(file: path, problem: "neither a safetensors file nor a torch.save zip")
        }
        stateDict.applyLegacyRenames()
        return stateDict
    }

    /// Old TensorFlow-converted BERT checkpoints name LayerNorm parameters gamma/beta; Hugging Face
    /// renames them on load, and so do we.
    mutating func applyLegacyRenames() {
        for name in names {
            let renamed: String
            if name.hasSuffix("LayerNorm.gamma") { renamed = String(name.dropLast("gamma".count)) + "weight" }
            else if name.hasSuffix("LayerNorm.beta") { renamed = String(name.dropLast("beta".count)) + "bias" }
            else { continue }
            guard tensors[renamed] == nil, let tensor = tensors.removeValue(forKey: name) else { continue }
            tensors[renamed] = tensor
            names[names.firstIndex(of: name)!] = renamed
        }
    }

    /// The same tensors with `prefix` replaced by `replacement` on every name that starts with it
    /// (e.g. the seed checkpoint's `encoder.` → `bert.`); other names are kept as they are.
    func renamingPrefix(_ prefix: String, to replacement: String) -> StateDict {
        StateDict(orderedTensors.map { item in
            (item.name.hasPrefix(prefix) ? replacement + item.name.dropFirst(prefix.count) : item.name, item.tensor)
        })
    }

    // MARK: - Loading into a model

    /// Copies every parameter of `store` from the tensor of the same name. Everything is checked
    /// before anything is copied, so a failed load leaves the model as it was.
    /// `file` names the checkpoint in errors; `optional` names parameters that may be absent (they
    /// keep their current values, e.g. a freshly initialised classification head).
    func load(into store: ParameterStore, file: String, optional: (String) -> Bool = { _ in false }) throws {
        var copies: [(ParameterStore.View, Tensor)] = []
        for view in store.views {
            guard let tensor = tensors[view.name] else {
                if optional(view.name) { continue }
                throw CheckpointError(file: file, problem: "missing tensor '\(view.name)'")
            }
            guard tensor.shape == view.shape else {
                throw CheckpointError(file: file, problem: "tensor '\(view.name)' has shape \(tensor.shape) but the model expects \(view.shape)")
            }
            // An inf or NaN weight makes every probability 1 (or NaN) without a word: refused by name.
            if let bad = tensor.scalars.first(where: { !$0.isFinite }) {
                throw CheckpointError(file: file, problem: "tensor '\(view.name)' holds \(bad); weights must be finite numbers")
            }
            copies.append((view, tensor))
        }
        for (view, tensor) in copies where view.count > 0 {
            tensor.scalars.withUnsafeBufferPointer { (store.values + view.offset).update(from: $0.baseAddress!, count: view.count) }
        }
    }
}
