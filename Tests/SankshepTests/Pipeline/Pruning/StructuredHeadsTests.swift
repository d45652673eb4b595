import Foundation
import Testing
@testable import Host

/// Zeroes the Q/K/V rows and attention-output columns of the heads `keep` drops: the head-masked model.
private func maskHeads(_ classifier: Classifier, keep: [[Bool]]) {
    let network = classifier.network, store = network.store, h = network.shape.hiddenSize, dh = network.shape.headSize
    for (l, names) in network.names.layers.enumerated() {
        let a = network.shape.attentionWidth(layer: l)
        for head in keep[l].indices where !keep[l][head] {
            for f in head * dh ..< (head + 1) * dh {
                for module in [names.query, names.key, names.value] {
                    (store.pointer(module + ".weight") + f * h).update(repeating: 0, count: h)
                    store.pointer(module + ".bias")[f] = 0
                }
                for r in 0..<h { store.pointer(names.attentionOutput + ".weight")[r * a + f] = 0 }
            }
        }
    }
}

@Suite("Structured pruning of attention heads")
struct StructuredHeadsTests {
    @Test("a head-removed model gives the head-masked model's outputs and gradients, a layer keeping only one head")
    func removedEqualsMasked() throws {
        let classifier = try PruningTestSupport.fourHeadClassifier()
        // Layer 0 keeps one head of four, layer 1 three.
        let keep = [[false, false, true, false], [true, false, true, true]]
        maskHeads(classifier, keep: keep)
        let smaller = try StructuredHeads.remove(classifier, keep: keep)
        #expect(smaller.config.prunedHeads == [0: [0, 1, 3], 1: [1]])
        #expect(smaller.network.shape.heads(inLayer: 0) == 1 && smaller.network.shape.heads(inLayer: 1) == 3)
        let names = smaller.network.names.layers
        #expect(smaller.network.store.view(named: names[0].query + ".weight")?.shape == [16, 64])
        #expect(smaller.network.store.view(named: names[0].attentionOutput + ".weight")?.shape == [64, 16])
        #expect(smaller.network.store.view(named: names[1].value + ".bias")?.shape == [48])

        // One padded batch: forward, then backward of the summed logits.
        let sequences = PruningTestSupport.sequences(6)
        let length = sequences.map(\.count).max()!
        let padded = Batching.pad(sequences, batch: Batch(indices: Array(sequences.indices), paddedLength: length), padID: 0)
        func run(_ model: SequenceClassifier) throws -> [Float] {
            model.store.zeroGradients()
            let logits = try model.forward(inputIds: padded.inputIDs.map(Int32.init), attentionMask: padded.attentionMask.map(Int32.init),
                                           batch: padded.batchSize, length: padded.sequenceLength, training: false)
            model.backward(dLogits: [Float](repeating: 1, count: logits.count))
            return logits
        }
        let masked = try run(classifier.network), removed = try run(smaller.network)
        #expect(ModelFixture.maxAbsDifference(masked, removed) < 1e-5, "\(masked) vs \(removed)")
        // Every parameter the smaller model has gets the gradient its place in the masked model gets.
        let dh = 16
        for view in smaller.network.store.views {
            let ours = Array(UnsafeBufferPointer(start: smaller.network.store.gradientPointer(view.name), count: view.count))
            let full = classifier.network.store.view(named: view.name)!
            var theirs = Array(UnsafeBufferPointer(start: classifier.network.store.gradientPointer(view.name), count: full.count))
            if full.shape != view.shape, let layer = names.firstIndex(where: { view.name.hasPrefix($0.query.dropLast("attention.self.query".count)) }) {
                let features = keep[layer].indices.filter { keep[layer][$0] }.flatMap { $0 * dh ..< ($0 + 1) * dh }
                if view.name.hasPrefix(names[layer].attentionOutput) {
                    theirs = (0..<64).flatMap { r in features.map { theirs[r * 64 + $0] } }
                } else if view.shape.count == 2 {
                    theirs = features.flatMap { theirs[($0 * 64)..<(($0 + 1) * 64)] }
                } else {
                    theirs = features.map { theirs[$0] }
                }
            }
            #expect(ModelFixture.maxAbsDifference(ours, theirs) < 1e-5, "\(view.name)")
        }
    }

    @Test("structure=heads masks whole heads, keeps one per layer at any sparsity, and removal matches the masks")
    func maskerRanksWholeHeads() throws {
        let registry = try PluginTestSupport.builtInRegistry()
        let classifier = try PruningTestSupport.fourHeadClassifier()
        let layers = PrunableLayer.select(classifier.network, .attention)
        let plan = try PruningTestSupport.plan("magnitude", registry: registry, options: ["structure": "heads"])
        for (sparsity, kept) in [(0.5, 2), (1.0, 1)] {
            let masks = try Masker(plan: plan, layers: layers, stats: [:]).masks(for: classifier.network, sparsity: sparsity)
            let heads = try #require(StructuredHeads.keptHeads(masks, network: classifier.network))
            #expect(heads.allSatisfy { $0.filter { $0 }.count == kept }, "\(heads)")
            // Every attention weight is masked exactly as its head is.
            let names = classifier.network.names.layers[0]
            let query = masks.mask(names.query)!, output = masks.mask(names.attentionOutput)!
            #expect((0..<query.count).allSatisfy { query[$0] == (heads[0][$0 / 64 / 16] ? 1 : 0) })
            #expect((0..<output.count).allSatisfy { output[$0] == (heads[0][$0 % 64 / 16] ? 1 : 0) })
        }
        // Heads need the attention layers.
        var stage = PruneStage()
        stage.layers = .ffn
        let schema = try #require(registry.methodSchemas.first { $0.name == "magnitude" })
        #expect(throws: PruningError.self) {
            try PruningPlan(stage: stage, method: ResolvedMethod(schema: schema, options: ["structure": "heads", "norm": "l2"]),
                            registry: registry, label: "test")
        }
    }

    @Test("a head-pruned model saved dense (removed heads as zeros) and loaded again has pruned_heads and gives identical outputs")
    func saveAndLoad() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let smaller = try StructuredHeads.remove(try PruningTestSupport.fourHeadClassifier(), keep: [[true, false, false, false], [false, true, true, true]])
        try smaller.save(to: folder)
        let json = try JSONValue.parse(Data(contentsOf: folder.appendingPathComponent("config.json")))
        #expect(json.objectValue?["pruned_heads"] == nil)
        #expect(SankshepSettings.read(from: folder)?.prunedHeads == ["0": [1, 2, 3], "1": [0]])
        let reloaded = try Classifier.load(from: folder)
        #expect(reloaded.config.prunedHeads == smaller.config.prunedHeads)
        for view in smaller.network.store.views {
            #expect(reloaded.network.store.tensor(view.name) == smaller.network.store.tensor(view.name), "\(view.name)")
        }
        let sequences = PruningTestSupport.sequences(10)
        #expect(try PruningTestSupport.logits(reloaded, sequences) == PruningTestSupport.logits(smaller, sequences))
        // Removing more heads of a pruned model names original indices: layer 1's current head 0 is original head 1.
        let again = try StructuredHeads.remove(reloaded, keep: [[true], [false, true, true]])
        #expect(again.config.prunedHeads == [0: [1, 2, 3], 1: [0, 1]])
    }

    @Test("a student made of a head-pruned teacher's layers keeps the heads those layers kept")
    func studentFromPrunedTeacher() throws {
        let teacher = try StructuredHeads.remove(try PruningTestSupport.fourHeadClassifier(), keep: [[true, false, false, false], [true, true, true, false]])
        let student = try StudentFactory.fromTeacherLayers(teacher, layers: [1])
        #expect(student.config.prunedHeads == [0: [3]])
        let query = student.network.names.layers[0].query + ".weight"
        #expect(student.network.store.tensor(query) == teacher.network.store.tensor(teacher.network.names.layers[1].query + ".weight"))
    }

    /// The fixtures' models with heads removed, saved with the logits Sankshep computes on the reference
    /// batch. With SANKSHEP_EXPORT_DIR set the folders are kept for
    /// `scripts/check_transformers_load.py DIR DIR/reference.safetensors` (transformers 4.x applies pruned_heads).
    @Test("the BERT and DistilBERT fixtures lose heads and save a folder with their logits", arguments: ["bert-tiny", "distilbert-tiny"])
    func fixturesExport(source: String) throws {
        let scratch = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let keep = ProcessInfo.processInfo.environment["SANKSHEP_EXPORT_DIR"].map { URL(fileURLWithPath: $0) }
        let output = (keep ?? scratch).appendingPathComponent(source + "-heads")
        let model = try Classifier.load(from: Fixtures.url(source))
        let smaller = try StructuredHeads.remove(model, keep: [[false, true, false, false], [true, false, true, true]])
        try smaller.save(to: output)
        let reference = try SafeTensorsFile(contentsOf: Fixtures.url("\(source)/reference.safetensors"))
        let batch = try ModelFixture.batch(reference)
        let logits = try Classifier.load(from: output).network.forward(inputIds: batch.ids, attentionMask: batch.mask, tokenTypeIds: batch.types,
                                                                     batch: batch.batch, length: batch.length, training: false)
        #expect(logits.count == batch.batch * model.config.numLabels)
        var entries = reference.names.filter { ["input_ids", "attention_mask", "token_type_ids"].contains($0) }.map { name in
            SafeTensorsWriter.Entry(name: name, dtype: reference.entry(named: name)!.dtype, shape: reference.entry(named: name)!.shape,
                                    bytes: reference.rawBytes(of: reference.entry(named: name)!))
        }
        entries.append(SafeTensorsWriter.Entry(name: "logits", tensor: Tensor(shape: [batch.batch, model.config.numLabels], scalars: logits)))
        try SafeTensorsWriter.write(entries: entries, to: output.appendingPathComponent("reference.safetensors"))
    }
}
