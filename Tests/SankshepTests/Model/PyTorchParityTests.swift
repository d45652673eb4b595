import Foundation
import Testing
@testable import Host

/// The Swift model against PyTorch dumps of the same weights and batch (Fixtures/*/reference.safetensors).
@Suite("Model parity with PyTorch")
struct PyTorchParityTests {
    /// Runs forward, loss and backward on the reference batch and checks everything the fixture holds.
    func checkParity(_ model: SequenceClassifier, folder: String) throws {
        let reference = try SafeTensorsFile(contentsOf: Fixtures.url("\(folder)/reference.safetensors"))
        let batch = try ModelFixture.batch(reference)
        let logits = try model.forward(inputIds: batch.ids, attentionMask: batch.mask, tokenTypeIds: batch.types,
                                       batch: batch.batch, length: batch.length, training: false)
        let expectedLogits = try reference.tensor(named: "logits").scalars
        #expect(ModelFixture.maxAbsDifference(logits, expectedLogits) <= 1e-5, "logits \(logits) vs \(expectedLogits)")
        for i in 0...model.shape.layers {
            let ours = model.hiddenState(i)
            let theirs = try reference.tensor(named: "hidden_states.\(i)")
            #expect(ours.shape == theirs.shape)
            let difference = ModelFixture.maxAbsDifference(ours.scalars, theirs.scalars)
            #expect(difference <= 1e-5, "hidden_states.\(i) differs by \(difference)")
        }
        let (loss, dLogits) = ModelFixture.bceWithLogits(logits, labels: batch.labels, posWeight: batch.posWeight)
        let expectedLoss = Double(try reference.tensor(named: "loss").scalars[0])
        #expect(abs(loss - expectedLoss) <= 1e-6, "loss \(loss) vs \(expectedLoss)")

        model.store.zeroGradients()
        model.backward(dLogits: dLogits)
        var compared = 0
        for view in model.store.views {
            let ours = model.store.gradientTensor(view.name).scalars
            if reference.entry(named: "grad." + view.name) != nil {
                let theirs = try reference.tensor(named: "grad." + view.name).scalars
                if ModelFixture.norm(theirs) < 1e-9 || view.name.hasSuffix("key.bias") {
                    // The key bias gradient is zero in exact arithmetic (softmax ignores a shift shared by a
                    // row's scores); both sides hold rounding noise (near 1e-13 for bert-tiny, up to 1e-7 for
                    // the larger weights of the XLM-R and ALBERT fixtures, against gradients of 1e-2 and more),
                    // so compare absolutely.
                    let bound = ModelFixture.norm(theirs) < 1e-9 ? 1e-9 : 1e-6
                    #expect(ModelFixture.norm(theirs) < bound && ModelFixture.norm(ours) < bound,
                            "grad.\(view.name): norm \(ModelFixture.norm(ours)), PyTorch's \(ModelFixture.norm(theirs)) (~0)")
                } else {
                    let error = ModelFixture.relativeError(ours, theirs)
                    #expect(error <= 1e-4, "grad.\(view.name): relative error \(error)")
                }
                compared += 1
            } else {
                // A parameter outside the forward pass (the seed model's pooler) gets no gradient.
                #expect(ours.allSatisfy { $0 == 0 }, "\(view.name) has a gradient but PyTorch gives it none")
            }
        }
        #expect(compared == reference.names.filter { $0.hasPrefix("grad.") }.count)
    }

    @Test("bert-tiny: logits, hidden states, loss and every gradient match PyTorch")
    func bertTiny() throws {
        try checkParity(try ModelFixture.huggingFaceModel("bert-tiny"), folder: "bert-tiny")
    }

    @Test("distilbert-tiny: logits, hidden states, loss and every gradient match PyTorch")
    func distilbertTiny() throws {
        try checkParity(try ModelFixture.huggingFaceModel("distilbert-tiny"), folder: "distilbert-tiny")
    }

    @Test("seed checkpoint (.pt): the MLP head on [CLS] matches PyTorch; the unused pooler gets no gradient")
    func seedCheckpoint() throws {
        let shape = try ModelFixture.shape("seed-checkpoint")
        let model = SequenceClassifier(shape: shape, head: .seedMLP(hidden: 256), numLabels: 1, pooling: .cls)
        let weights = try TorchCheckpoint.read(Fixtures.url("seed-checkpoint/best_model_fold0.pt"))
        for view in model.store.views {
            let tensor = try #require(weights[view.name], "\(view.name) missing from the checkpoint")
            model.store.setValues(view.name, from: tensor)
        }
        try checkParity(model, folder: "seed-checkpoint")
    }

    @Test("a shape from ModelConfig equals the one read from the JSON directly")
    func shapeFromModelConfig() throws {
        for folder in ["bert-tiny", "distilbert-tiny"] {
            let config = try ModelConfig.read(Fixtures.url("\(folder)/config.json"))
            #expect(EncoderShape(config) == (try ModelFixture.shape(folder)))
        }
    }

    @Test("gradients of two backward passes accumulate")
    func gradientsAccumulate() throws {
        let model = try ModelFixture.huggingFaceModel("bert-tiny")
        let reference = try SafeTensorsFile(contentsOf: Fixtures.url("bert-tiny/reference.safetensors"))
        let batch = try ModelFixture.batch(reference)
        model.store.zeroGradients()
        for _ in 0..<2 {
            let logits = try model.forward(inputIds: batch.ids, attentionMask: batch.mask, tokenTypeIds: batch.types,
                                           batch: batch.batch, length: batch.length, training: false)
            model.backward(dLogits: ModelFixture.bceWithLogits(logits, labels: batch.labels, posWeight: batch.posWeight).dLogits)
        }
        let name = "bert.encoder.layer.0.attention.self.query.weight"
        let twice = try reference.tensor(named: "grad." + name).scalars.map { 2 * $0 }
        #expect(ModelFixture.relativeError(model.store.gradientTensor(name).scalars, twice) <= 1e-4)
    }
}
