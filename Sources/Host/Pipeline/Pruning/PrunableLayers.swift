import Foundation

/// A weight the pruning stage may mask: its module name (the weight is `<name>.weight`), the block it
/// belongs to, and its stored shape (rows, cols): (out features, in features) for a linear layer as in
/// PyTorch, (vocab, hidden) for the word embeddings.
///
/// Pruners see every weight as a linear layer's (out, in). The word-embedding table is the one weight
/// stored the other way round: a lookup E[token] is E^T applied to a one-hot token vector, so it is
/// handed over transposed (`presentedTransposed`), rows = hidden and cols = vocab, and its "input
/// features" are tokens. Masks are always kept in the stored (row-major) order.
struct PrunableLayer: Sendable, Equatable {
    let name: String
    let kind: LayerKind
    let rows: Int
    let cols: Int
    /// The pruner sees the transpose of the stored weight (the word embeddings).
    var presentedTransposed = false

    var weightName: String { name + ".weight" }
    var count: Int { rows * cols }
    /// The (rows, cols) the pruner sees.
    var presentedRows: Int { presentedTransposed ? cols : rows }
    var presentedCols: Int { presentedTransposed ? rows : cols }
}

extension PrunableLayer {
    /// The weights `selection` names, in layout order:
    /// attention = Q, K, V and the attention output; ffn = the two feed-forward layers; encoder = both;
    /// linear = also the head's hidden layer (BERT's pooler, DistilBERT's pre_classifier, the seed head's
    /// first layer); all = also the word embeddings; embeddings = the word embeddings alone.
    /// The final classifier row is never pruned: a handful of weights that decide everything. The
    /// position and token-type embeddings are not either: they are small and every token reads them.
    static func select(_ network: SequenceClassifier, _ selection: PruneLayers) -> [PrunableLayer] {
        let names = network.names
        var result: [PrunableLayer] = []
        if selection == .all || selection == .embeddings {
            let shape = network.store.view(named: names.wordEmbeddings)!.shape
            result.append(PrunableLayer(name: String(names.wordEmbeddings.dropLast(".weight".count)), kind: .embedding,
                                        rows: shape[0], cols: shape[1], presentedTransposed: true))
        }
        var modules: [(String, LayerKind)] = []
        let encoder: Set<PruneLayers> = [.all, .linear, .encoder, .attention, .ffn]
        for layer in names.layers where encoder.contains(selection) {
            if selection != .ffn {
                modules += [layer.query, layer.key, layer.value, layer.attentionOutput].map { ($0, .attention) }
            }
            if selection != .attention {
                modules += [(layer.ffnIn, .ffn), (layer.ffnOut, .ffn)]
            }
        }
        if selection == .all || selection == .linear { modules.append((names.headHidden, .other)) }
        return result + modules.map { name, kind in
            let shape = network.store.view(named: name + ".weight")!.shape
            return PrunableLayer(name: name, kind: kind, rows: shape[0], cols: shape[1])
        }
    }
}
