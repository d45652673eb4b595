import Foundation

/// The dense form of a float model, which every model folder Sankshep writes takes, so today's
/// `transformers` loads it with nothing else installed.
///
/// Two things in a compact pruned folder would stand in the way, both measured with transformers 5.24:
///   - sparse-bitmask tensors (`quantization_config` with a sparsity config): compressed-tensors
///     dropped its sparsity compressors after 0.14, so `from_pretrained` leaves those weights
///     unloaded (random), and without compressed-tensors it refuses the folder;
///   - `pruned_heads`: transformers 5 dropped head pruning and refuses the smaller Q/K/V/O tensors.
/// So the folder stores every weight dense and puts every removed head back as zeros. A removed
/// head's attention-output columns are zero, so whatever its query, key and value compute, it adds
/// nothing: the folder gives exactly the pruned model's outputs (the zeros are exact zeros). The
/// compact form is `sankshep export --format compressed-tensors` (Classifier.writeSparseBitmaskExport).
enum TransformersExport {
    /// Whether a model with this config differs from its dense form (sparse-bitmask weights or removed heads).
    static func needed(for config: ModelConfig) -> Bool {
        !config.prunedHeads.isEmpty || SparseBitmask.targets(in: config) != nil
    }

    /// The config and tensors of the dense, full-head model that computes what `tensors` does.
    static func dense(config: ModelConfig, names: ModelParameterNames,
                      tensors: [(name: String, tensor: Tensor)]) -> (config: ModelConfig, tensors: [(name: String, tensor: Tensor)]) {
        var dense = config
        dense.raw["quantization_config"] = nil
        dense.prunedHeads = [:]
        dense.raw["pruned_heads"] = nil
        guard !config.prunedHeads.isEmpty else { return (dense, tensors) }
        let headSize = config.headDimension
        var restored: [String: Tensor] = [:]
        var byName = Dictionary(tensors.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
        for (index, layer) in names.layers.enumerated() {
            guard let removed = config.prunedHeads[index], !removed.isEmpty else { continue }
            // The heads a pruned layer keeps, in their original order (as prune_heads leaves them).
            let kept = (0..<config.numHeads).filter { !removed.contains($0) }
            for module in [layer.query, layer.key, layer.value] {
                if let weight = byName[module + ".weight"] { restored[module + ".weight"] = expandRows(weight, kept: kept, headSize: headSize, heads: config.numHeads) }
                if let bias = byName[module + ".bias"] { restored[module + ".bias"] = expandRows(bias, kept: kept, headSize: headSize, heads: config.numHeads) }
            }
            if let output = byName[layer.attentionOutput + ".weight"] {
                restored[layer.attentionOutput + ".weight"] = expandColumns(output, kept: kept, headSize: headSize, heads: config.numHeads)
            }
        }
        for (name, tensor) in restored { byName[name] = tensor }
        return (dense, tensors.map { ($0.name, byName[$0.name]!) })
    }

    /// (kept · headSize, cols...) → (heads · headSize, cols...): kept head i's rows go to head kept[i]'s
    /// place, removed heads' rows are zero. A bias is the one-column case.
    static func expandRows(_ tensor: Tensor, kept: [Int], headSize: Int, heads: Int) -> Tensor {
        let rowLength = tensor.shape.dropFirst().reduce(1, *)
        var shape = tensor.shape
        shape[0] = heads * headSize
        var out = Tensor(zeros: shape)
        for (position, head) in kept.enumerated() {
            let source = position * headSize * rowLength, destination = head * headSize * rowLength
            out.scalars.replaceSubrange(destination..<(destination + headSize * rowLength),
                                        with: tensor.scalars[source..<(source + headSize * rowLength)])
        }
        return out
    }

    /// (rows, kept · headSize) → (rows, heads · headSize), removed heads' columns zero.
    static func expandColumns(_ tensor: Tensor, kept: [Int], headSize: Int, heads: Int) -> Tensor {
        let rows = tensor.shape[0], columns = tensor.shape[1], wide = heads * headSize
        var out = Tensor(zeros: [rows, wide])
        for row in 0..<rows {
            for (position, head) in kept.enumerated() {
                let source = row * columns + position * headSize, destination = row * wide + head * headSize
                out.scalars.replaceSubrange(destination..<(destination + headSize), with: tensor.scalars[source..<(source + headSize)])
            }
        }
        return out
    }
}
