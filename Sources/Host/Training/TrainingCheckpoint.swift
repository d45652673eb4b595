import Foundation

/// The per-epoch checkpoint of a training run: a safetensors file with the weights, the optimizer
/// moments and the best weights so far as flat tensors, and the loop state as JSON in the metadata.
/// Written atomically, so a run killed at any moment leaves either the previous or the new checkpoint.
enum TrainingCheckpoint {
    static func write(to url: URL, network: SequenceClassifier, optimizer: AdamW, state: LoopState,
                      bestValues: [Float], bestProbabilities: [Float]) throws {
        let store = network.store
        let optimizerState = optimizer.state()
        let stateJSON = String(decoding: try JSONEncoder().encode(state), as: UTF8.self)
        let tensors: [(name: String, tensor: Tensor)] = [
            ("values", Tensor(shape: [store.count], scalars: Array(UnsafeBufferPointer(start: store.values, count: store.count)))),
            ("adam.first_moment", Tensor(shape: [store.count], scalars: optimizerState.firstMoment)),
            ("adam.second_moment", Tensor(shape: [store.count], scalars: optimizerState.secondMoment)),
            ("best.values", Tensor(shape: [bestValues.count], scalars: bestValues)),
            ("best.probabilities", Tensor(shape: [bestProbabilities.count], scalars: bestProbabilities)),
        ]
        try SafeTensorsWriter.write(tensors, metadata: [
            "loop_state": stateJSON,
            "adam_step": String(optimizerState.step),
            "dropout_step": String(network.dropoutStep),
            "parameters": String(store.count),
        ], to: url)
    }

    static func read(_ url: URL, into network: SequenceClassifier, optimizer: AdamW) throws
        -> (state: LoopState, bestValues: [Float], bestProbabilities: [Float]) {
        try read(file: try SafeTensorsFile(contentsOf: url), url: url, into: network, optimizer: optimizer)
    }

    /// The checkpoint from its bytes (read by another rank of a distributed job); `path` names it in errors.
    static func read(bytes: Data, path: String, into network: SequenceClassifier, optimizer: AdamW) throws
        -> (state: LoopState, bestValues: [Float], bestProbabilities: [Float]) {
        try read(file: try SafeTensorsFile(bytes: bytes, path: path), url: URL(fileURLWithPath: path), into: network, optimizer: optimizer)
    }

    private static func read(file: SafeTensorsFile, url: URL, into network: SequenceClassifier, optimizer: AdamW) throws
        -> (state: LoopState, bestValues: [Float], bestProbabilities: [Float]) {
        let store = network.store
        guard let parameters = file.metadata["parameters"].flatMap(Int.init), parameters == store.count else {
            throw CheckpointError(file: url.path, problem: "checkpoint holds \(file.metadata["parameters"] ?? "an unknown number of") parameters, the model has \(store.count): it belongs to another model")
        }
        guard let stateText = file.metadata["loop_state"],
              let state = try? JSONDecoder().decode(LoopState.self, from: Data(stateText.utf8)),
              let adamStep = file.metadata["adam_step"].flatMap(Int.init),
              let dropoutStep = file.metadata["dropout_step"].flatMap(UInt64.init) else {
            throw CheckpointError(file: url.path, problem: "not a Sankshep training checkpoint (loop state missing)")
        }
        let values = try file.tensor(named: "values").scalars
        values.withUnsafeBufferPointer { store.values.update(from: $0.baseAddress!, count: store.count) }
        try optimizer.restore(AdamW.State(step: adamStep, firstMoment: try file.tensor(named: "adam.first_moment").scalars,
                                          secondMoment: try file.tensor(named: "adam.second_moment").scalars))
        network.dropoutStep = dropoutStep
        return (state, try file.tensor(named: "best.values").scalars, try file.tensor(named: "best.probabilities").scalars)
    }
}
