import Foundation
import Testing
@testable import Host

@Suite("AdamW")
struct AdamWTests {
    /// A store with a checkpoint's weights as values and the PyTorch gradients of the reference batch.
    static func storeFromFixture(_ folder: String) throws -> (store: ParameterStore, reference: SafeTensorsFile) {
        let model = try SafeTensorsFile(contentsOf: Fixtures.url("\(folder)/model.safetensors"))
        let reference = try SafeTensorsFile(contentsOf: Fixtures.url("\(folder)/reference.safetensors"))
        let store = ParameterStore(layout: model.entries.map { ($0.name, $0.shape) })
        for entry in model.entries {
            store.setValues(entry.name, from: try model.tensor(named: entry.name))
            let gradient = try reference.tensor(named: "grad.\(entry.name)")
            gradient.scalars.withUnsafeBufferPointer { store.gradientPointer(entry.name).update(from: $0.baseAddress!, count: gradient.count) }
        }
        return (store, reference)
    }

    @Test("one step matches torch.optim.AdamW on every parameter of the fixture models",
          arguments: ["bert-tiny", "distilbert-tiny", "xlmr-tiny", "albert-tiny"])
    func matchesPyTorchOnFixture(folder: String) throws {
        let (store, reference) = try Self.storeFromFixture(folder)
        let optimizer = AdamW(store: store, learningRate: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01)
        optimizer.step()
        var worst: Float = 0
        for view in store.views {
            let expected = try reference.tensor(named: "after_adamw_step.\(view.name)")
            let actual = store.tensor(view.name)
            let difference = zip(actual.scalars, expected.scalars).map { abs($0 - $1) }.max() ?? 0
            #expect(difference <= 1e-6, "\(view.name): max |Δ| \(difference)")
            worst = max(worst, difference)
        }
        // Every tensor of the fixture (ALBERT's shared layer makes its model the smallest: 27).
        #expect(store.views.count >= 27)
        #expect(worst <= 1e-6)
    }

    @Test("several scheduled steps with a no-decay group and a frozen parameter match PyTorch")
    func matchesPyTorchWithGroupsAndSchedule() throws {
        let run = try TrainingReference.load().adamw
        let store = ParameterStore(layout: run.order.map { ($0, run.shapes[$0]!) })
        for name in run.order { store.setValues(name, from: Tensor(shape: run.shapes[name]!, scalars: run.initial[name]!)) }
        store.frozen = Set(run.frozen)
        let optimizer = AdamW(store: store, learningRate: run.lr, weightDecay: run.weight_decay, decayRule: .excludingBiasAndLayerNorm)
        #expect(optimizer.decayedParameterNames == ["encoder.dense.weight", "frozen.weight"])
        let schedule = try LearningRateSchedule(kind: .linear, warmupSteps: 1, totalSteps: 5)
        for (index, step) in run.steps.enumerated() {
            store.zeroGradients()
            for (name, gradient) in step.gradients {
                gradient.withUnsafeBufferPointer { store.gradientPointer(name).update(from: $0.baseAddress!, count: gradient.count) }
            }
            optimizer.learningRate = schedule.learningRate(base: run.lr, atStep: index)
            #expect(abs(optimizer.learningRate - step.lr) <= 1e-15)
            optimizer.step()
            for name in run.order {
                let difference = zip(store.tensor(name).scalars, step.after[name]!).map { abs($0 - $1) }.max()!
                #expect(difference <= 1e-6, "step \(index + 1), \(name): max |Δ| \(difference)")
            }
        }
        #expect(store.tensor("frozen.weight").scalars == run.initial["frozen.weight"]!)
    }

    @Test("a parameter without a gradient is left untouched, with no weight decay either")
    func skipsParametersWithoutGradient() {
        let store = ParameterStore(layout: [("bert.pooler.dense.weight", [2, 2]), ("classifier.weight", [1, 2])])
        store.setValues("bert.pooler.dense.weight", from: Tensor(shape: [2, 2], scalars: [1, -2, 3, -4]))
        store.setValues("classifier.weight", from: Tensor(shape: [1, 2], scalars: [0.5, 0.5]))
        store.gradientPointer("classifier.weight").update(repeating: 1, count: 2)
        let optimizer = AdamW(store: store, learningRate: 0.1, weightDecay: 0.5)
        optimizer.step(withoutGradient: ["bert.pooler.dense.weight"])
        #expect(store.tensor("bert.pooler.dense.weight").scalars == [1, -2, 3, -4])
        // 0.5·(1 − 0.1·0.5) − 0.1·1/(1 + 1e-8): decay, then a step of size lr against the gradient's sign.
        for value in store.tensor("classifier.weight").scalars {
            #expect(abs(value - (0.5 * 0.95 - 0.1)) <= 1e-6)
        }
        #expect(optimizer.state().firstMoment[0..<4].allSatisfy { $0 == 0 })
    }

    @Test("the Hugging Face rule exempts biases and every kind of LayerNorm from weight decay")
    func decayRuleFollowsTrainerNames() {
        let rule = WeightDecayRule.excludingBiasAndLayerNorm
        #expect(!rule.decays("bert.encoder.layer.0.attention.output.dense.bias"))
        #expect(!rule.decays("bert.encoder.layer.0.attention.output.LayerNorm.weight"))
        #expect(!rule.decays("bert.embeddings.LayerNorm.bias"))
        #expect(!rule.decays("distilbert.transformer.layer.3.sa_layer_norm.weight"))
        #expect(!rule.decays("distilbert.transformer.layer.3.output_layer_norm.weight"))
        #expect(rule.decays("bert.embeddings.word_embeddings.weight"))
        #expect(rule.decays("distilbert.transformer.layer.0.ffn.lin1.weight"))
        #expect(rule.decays("classifier.3.weight"))
        #expect(WeightDecayRule.all.decays("bert.embeddings.LayerNorm.bias"))
    }

    @Test("a run restored from saved state continues bit for bit as the uninterrupted run")
    func resumesExactly() throws {
        let layout: [(name: String, shape: [Int])] = [("a.weight", [3, 5]), ("a.bias", [5]), ("b.LayerNorm.weight", [7])]
        func makeStore() -> ParameterStore {
            let store = ParameterStore(layout: layout)
            var random = SeededRandom(seed: 7)
            random.fillNormal(store.values, count: store.count)
            return store
        }
        func setGradients(_ store: ParameterStore, step: Int) {
            var random = SeededRandom(seed: UInt64(100 + step))
            random.fillNormal(store.gradients, count: store.count)
        }
        let uninterrupted = makeStore()
        let optimizer = AdamW(store: uninterrupted, learningRate: 0.01, weightDecay: 0.1, decayRule: .excludingBiasAndLayerNorm)
        var saved: (values: [Float], state: AdamW.State)?
        for step in 0..<5 {
            if step == 3 { saved = (Array(UnsafeBufferPointer(start: uninterrupted.values, count: uninterrupted.count)), optimizer.state()) }
            setGradients(uninterrupted, step: step)
            optimizer.step()
        }

        let resumed = makeStore()
        saved!.values.withUnsafeBufferPointer { resumed.values.update(from: $0.baseAddress!, count: resumed.count) }
        let second = AdamW(store: resumed, learningRate: 0.01, weightDecay: 0.1, decayRule: .excludingBiasAndLayerNorm)
        try second.restore(saved!.state)
        #expect(second.stepCount == 3)
        for step in 3..<5 {
            setGradients(resumed, step: step)
            second.step()
        }
        #expect(Array(UnsafeBufferPointer(start: resumed.values, count: resumed.count))
                == Array(UnsafeBufferPointer(start: uninterrupted.values, count: uninterrupted.count)))
        #expect(second.state() == optimizer.state())
    }

    @Test("restoring state saved for a different model is refused in one line")
    func refusesMismatchedState() {
        let store = ParameterStore(layout: [("w", [4])])
        let optimizer = AdamW(store: store, learningRate: 0.01)
        let wrong = AdamW.State(step: 2, firstMoment: [0, 0, 0], secondMoment: [0, 0, 0])
        #expect(throws: TrainingError("optimizer state holds 3 first and 3 second moments, but the model has 4 parameters")) {
            try optimizer.restore(wrong)
        }
    }
}
