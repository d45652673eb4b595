import Foundation

/// A linear layer the pruning stage may mask: its module name (the weight is `<name>.weight`,
/// (rows = out features, cols = in features) as in PyTorch) and the block it belongs to.
struct PrunableLayer: Sendable, Equatable {
    let name: String
    let kind: LayerKind
    let rows: Int
    let cols: Int

    var weightName: String { name + ".weight" }
    var count: Int { rows * cols }
}

extension PrunableLayer {
    /// The linear layers `selection` names, in layout order:
    /// attention = Q, K, V and the attention output; ffn = the two feed-forward layers;
    /// encoder = both; all = also the head's hidden layer (BERT's pooler, DistilBERT's pre_classifier,
    /// the seed head's first layer). The final classifier row and the embeddings are never pruned:
    /// the first is a handful of weights that decide everything, the second is a lookup, not a product.
    static func select(_ network: SequenceClassifier, _ selection: PruneLayers) -> [PrunableLayer] {
        let names = network.names
        var modules: [(String, LayerKind)] = []
        for layer in names.layers {
            if selection != .ffn {
                modules += [layer.query, layer.key, layer.value, layer.attentionOutput].map { ($0, .attention) }
            }
            if selection != .attention {
                modules += [(layer.ffnIn, .ffn), (layer.ffnOut, .ffn)]
            }
        }
        if selection == .all { modules.append((names.headHidden, .other)) }
        return modules.map { name, kind in
            let shape = network.store.view(named: name + ".weight")!.shape
            return PrunableLayer(name: name, kind: kind, rows: shape[0], cols: shape[1])
        }
    }
}
