import Foundation

/// Keep-masks (1 = keep) of the pruned linear layers of one model, and what enforcing them means:
/// the masked weights are exactly zero.
///
/// While healing, `enforce` runs after every optimizer step (`TrainingHooks.afterStep`) and sets the
/// pruned weights back to exactly zero. The AdamW moments of pruned weights are left alone: they
/// cannot change what a step leaves behind, because every step is followed by re-zeroing, and a
/// weight is never revived (a schedule only raises sparsity, and a zero weight scores lowest under
/// the built-in criteria, so it stays pruned). Zeroing the moments as well would cost a pass over the
/// optimizer state each step for no change in the weights.
final class PruningMasks {
    let layers: [PrunableLayer]
    /// Per module name: (rows * cols) keep-mask, row-major like the weight.
    private(set) var masks: [String: [UInt8]] = [:]

    init(layers: [PrunableLayer]) { self.layers = layers }

    func set(_ mask: [UInt8], for layer: PrunableLayer) {
        precondition(mask.count == layer.count, "\(layer.name): mask of \(mask.count) for \(layer.count) weights")
        masks[layer.name] = mask
    }

    func mask(_ module: String) -> [UInt8]? { masks[module] }

    /// Sets every masked weight of `store` to exactly zero.
    func enforce(on store: ParameterStore) {
        for layer in layers {
            guard let mask = masks[layer.name], let view = store.view(named: layer.weightName) else { continue }
            let weights = store.values + view.offset
            mask.withUnsafeBufferPointer { keep in
                for i in 0..<layer.count where keep[i] == 0 { weights[i] = 0 }
            }
        }
    }

    /// Achieved sparsity of each layer, counted on the weights themselves (exact zeros).
    static func report(_ store: ParameterStore, layers: [PrunableLayer]) -> [LayerSparsity] {
        layers.map { layer in
            let weights = store.values + store.view(named: layer.weightName)!.offset
            var zeros = 0
            for i in 0..<layer.count where weights[i] == 0 { zeros += 1 }
            return LayerSparsity(layer: layer.name, kind: layer.kind, rows: layer.rows, cols: layer.cols, zeros: zeros)
        }
    }
}

/// One row of `sparsity_<tag>.csv`.
struct LayerSparsity: Sendable, Equatable {
    var layer: String
    var kind: LayerKind
    var rows: Int
    var cols: Int
    var zeros: Int
    var total: Int { rows * cols }
    var sparsity: Double { total == 0 ? 0 : Double(zeros) / Double(total) }

    static let csvHeader = ["layer", "kind", "rows", "cols", "weights", "zeros", "sparsity"]

    var csvFields: [String] {
        let kindName = switch kind { case .attention: "attention"; case .ffn: "ffn"; case .embedding: "embedding"; case .other: "head" }
        return [layer, kindName, String(rows), String(cols), String(total), String(zeros), CSVOutput.number(sparsity)]
    }

    /// Writes the layers and a last `total` row.
    static func write(_ rows: [LayerSparsity], to url: URL) throws {
        let zeros = rows.reduce(0) { $0 + $1.zeros }, total = rows.reduce(0) { $0 + $1.total }
        let totalRow = ["total", "", "", "", String(total), String(zeros), CSVOutput.number(total == 0 ? 0 : Double(zeros) / Double(total))]
        try CSVOutput.write(header: csvHeader, rows: rows.map(\.csvFields) + [totalRow], to: url)
    }
}
