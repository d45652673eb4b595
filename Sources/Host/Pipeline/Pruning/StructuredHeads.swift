import Foundation

/// Structured pruning of attention heads made permanent: heads whose masks removed them are cut out,
/// and `pruned_heads` in the config records them, as Hugging Face does.
///
/// Head h of a layer is rows h·dh ..< (h+1)·dh of the query, key and value weights (and those
/// entries of their biases) and the same columns of the attention output weight. A head whose output
/// columns are all zero adds nothing to the layer's output whatever its queries, keys and values are,
/// so removing it gives the masked model's outputs (up to the order of float additions). Unlike FFN
/// neurons, layers may keep different numbers of heads: `pruned_heads` is per layer.
enum StructuredHeads {
    /// The rows (one per query/key/value output feature, (A)) that rank heads: row i holds everything
    /// head i / dh owns, [Wq[i, :], Wk[i, :], Wv[i, :], Wo[:, i]], so (A, 4H). A structured pruner
    /// ranking groups of dh rows ranks whole heads by all of their weights.
    static func headRows(_ store: ParameterStore, _ layer: EncoderLayerNames, width a: Int, hidden h: Int) -> [Float] {
        let q = store.pointer(layer.query + ".weight"), k = store.pointer(layer.key + ".weight")
        let v = store.pointer(layer.value + ".weight"), o = store.pointer(layer.attentionOutput + ".weight")
        var rows = [Float](repeating: 0, count: a * 4 * h)   // (A, 4H)
        rows.withUnsafeMutableBufferPointer { out in
            for i in 0..<a {
                let row = out.baseAddress! + i * 4 * h
                row.update(from: q + i * h, count: h)
                (row + h).update(from: k + i * h, count: h)
                (row + 2 * h).update(from: v + i * h, count: h)
                for c in 0..<h { row[3 * h + c] = o[c * a + i] }   // Wo (H, A): column i
            }
        }
        return rows
    }

    /// (kept heads) keep flags of each layer's current heads, read from the attention output's mask,
    /// or nil when a layer's attention output was not pruned.
    static func keptHeads(_ masks: PruningMasks, network: SequenceClassifier) -> [[Bool]]? {
        let shape = network.shape, h = shape.hiddenSize, dh = shape.headSize
        var result: [[Bool]] = []
        for (index, layer) in network.names.layers.enumerated() {
            guard let mask = masks.mask(layer.attentionOutput) else { return nil }
            let a = shape.attentionWidth(layer: index)
            // attention output weight (H, A): head j is kept if any row keeps any of its dh columns.
            result.append((0..<shape.heads(inLayer: index)).map { j in
                (0..<h).contains { r in (j * dh ..< (j + 1) * dh).contains { mask[r * a + $0] != 0 } }
            })
        }
        return result
    }

    /// A classifier of the same weights with only the kept heads; `keep[l][j]` is for layer l's
    /// j-th current head. Heads removed earlier stay removed: `pruned_heads` names original indices.
    static func remove(_ classifier: Classifier, keep: [[Bool]]) throws -> Classifier {
        let network = classifier.network, shape = network.shape
        for (layer, flags) in keep.enumerated() where !flags.contains(true) {
            throw PruningError("structured head pruning removed all \(flags.count) heads of layer \(layer); a layer needs one")
        }
        var config = classifier.config
        for (layer, flags) in keep.enumerated() {
            let current = shape.keptHeads(inLayer: layer)
            let removed = (config.prunedHeads[layer] ?? []) + flags.indices.filter { !flags[$0] }.map { current[$0] }
            config.prunedHeads[layer] = removed.isEmpty ? nil : removed.sorted()
        }
        let smaller = SequenceClassifier(shape: EncoderShape(config), head: network.head, numLabels: network.numLabels,
                                         pooling: network.pooling, dropoutSeed: network.dropoutSeed)
        let h = shape.hiddenSize, dh = shape.headSize
        enum Part { case projectionWeight, projectionBias, outputWeight }
        let parts = Dictionary(uniqueKeysWithValues: network.names.layers.enumerated().flatMap { index, layer in
            [layer.query, layer.key, layer.value].flatMap { [($0 + ".weight", (index, Part.projectionWeight)), ($0 + ".bias", (index, Part.projectionBias))] }
                + [(layer.attentionOutput + ".weight", (index, Part.outputWeight))]
        })
        for view in smaller.store.views {
            let source = network.store.tensor(view.name)
            guard let (layer, part) = parts[view.name] else {
                smaller.store.setValues(view.name, from: source)
                continue
            }
            let a = shape.attentionWidth(layer: layer)
            // The kept output features of Q/K/V (= columns of the attention output), in order.
            let features = keep[layer].indices.filter { keep[layer][$0] }.flatMap { $0 * dh ..< ($0 + 1) * dh }
            var scalars: [Float] = []
            scalars.reserveCapacity(view.count)
            switch part {
            case .projectionBias:
                // (A) -> (kept · dh)
                for f in features { scalars.append(source.scalars[f]) }
            case .projectionWeight:
                // (A, H) -> (kept · dh, H): whole rows
                for f in features { scalars += source.scalars[(f * h)..<((f + 1) * h)] }
            case .outputWeight:
                // (H, A) -> (H, kept · dh): the kept columns of each row
                for r in 0..<h { for f in features { scalars.append(source.scalars[r * a + f]) } }
            }
            smaller.store.setValues(view.name, from: Tensor(shape: view.shape, scalars: scalars))
        }
        return Classifier(network: smaller, config: config, tokenizer: classifier.tokenizer,
                          tokenizerFiles: classifier.tokenizerFiles, threshold: classifier.threshold)
    }
}
