import Foundation

/// Structured pruning made permanent: feed-forward neurons whose masks removed them are cut out of
/// the model, so `intermediate_size` shrinks and every FFN product is smaller.
///
/// Neuron i of a layer is row i of the FFN input weight (and entry i of its bias) and column i of
/// the FFN output weight. A neuron whose output column is all zero adds nothing to the layer's
/// output whatever its input row computes, so removing it gives the masked model's outputs (up to
/// the order of float additions). Hugging Face has one `intermediate_size` for all layers, so every
/// layer must keep the same number of neurons.
enum StructuredFFN {
    /// (intermediate) keep flags of each layer's neurons, read from the FFN output weight's mask.
    static func keptNeurons(_ masks: PruningMasks, network: SequenceClassifier) -> [[Bool]]? {
        let ffn = network.shape.intermediateSize, h = network.shape.hiddenSize
        var result: [[Bool]] = []
        for layer in network.names.layers {
            guard let mask = masks.mask(layer.ffnOut) else { return nil }
            // ffnOut weight (H, ffn): neuron c is kept if any row keeps column c.
            result.append((0..<ffn).map { c in (0..<h).contains { mask[$0 * ffn + c] != 0 } })
        }
        return result
    }

    /// A classifier of the same weights with only the kept neurons.
    static func remove(_ classifier: Classifier, keep: [[Bool]]) throws -> Classifier {
        let network = classifier.network
        let counts = Set(keep.map { $0.filter { $0 }.count })
        guard counts.count == 1, let kept = counts.first, kept > 0 else {
            throw PruningError("structured FFN pruning kept \(keep.map { $0.filter { $0 }.count }) neurons per layer; Hugging Face needs the same non-zero count in every layer")
        }
        var config = classifier.config
        config.intermediateSize = kept
        let smaller = SequenceClassifier(shape: EncoderShape(config), head: network.head, numLabels: network.numLabels,
                                         pooling: network.pooling, dropoutSeed: network.dropoutSeed)
        let ffn = network.shape.intermediateSize, h = network.shape.hiddenSize
        enum Part { case inWeight, inBias, outWeight }
        let parts = Dictionary(uniqueKeysWithValues: network.names.layers.enumerated().flatMap { index, layer in
            [(layer.ffnIn + ".weight", (index, Part.inWeight)), (layer.ffnIn + ".bias", (index, Part.inBias)),
             (layer.ffnOut + ".weight", (index, Part.outWeight))]
        })
        for view in smaller.store.views {
            let source = network.store.tensor(view.name)
            guard let (layerIndex, part) = parts[view.name] else {
                smaller.store.setValues(view.name, from: source)
                continue
            }
            let neurons = keep[layerIndex].indices.filter { keep[layerIndex][$0] }
            var scalars: [Float] = []
            scalars.reserveCapacity(view.count)
            switch part {
            case .inBias:
                // (ffn) -> (kept)
                for n in neurons { scalars.append(source.scalars[n]) }
            case .inWeight:
                // (ffn, H) -> (kept, H): whole rows
                for n in neurons { scalars += source.scalars[(n * h)..<((n + 1) * h)] }
            case .outWeight:
                // (H, ffn) -> (H, kept): the kept columns of each row
                for r in 0..<h { for n in neurons { scalars.append(source.scalars[r * ffn + n]) } }
            }
            smaller.store.setValues(view.name, from: Tensor(shape: view.shape, scalars: scalars))
        }
        return Classifier(network: smaller, config: config, tokenizer: classifier.tokenizer,
                          tokenizerFiles: classifier.tokenizerFiles, threshold: classifier.threshold)
    }
}

struct PruningError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
