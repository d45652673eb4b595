import Foundation
import Testing
@testable import Host

@Suite("Sequence classifier behaviour")
struct SequenceClassifierTests {
    static let shape = GradientCheckTests.tinyBert
    static let ids = GradientCheckTests.ids, mask = GradientCheckTests.mask

    static func model(_ head: ClassifierHead = .bertPooler, seed: UInt64 = 1) -> SequenceClassifier {
        let model = SequenceClassifier(shape: shape, head: head, numLabels: 1)
        model.initializeRandomly(seed: seed)
        return model
    }

    @Test("dropout is seeded: the same seed and step give the same logits, the next step others, eval none")
    func dropoutIsDeterministic() throws {
        let a = Self.model(), b = Self.model()
        let trainA = try a.forward(inputIds: Self.ids, attentionMask: Self.mask, batch: 2, length: 6, training: true)
        let trainB = try b.forward(inputIds: Self.ids, attentionMask: Self.mask, batch: 2, length: 6, training: true)
        #expect(trainA == trainB)
        let nextStep = try a.forward(inputIds: Self.ids, attentionMask: Self.mask, batch: 2, length: 6, training: true)
        #expect(nextStep != trainA)
        let eval1 = try a.forward(inputIds: Self.ids, attentionMask: Self.mask, batch: 2, length: 6, training: false)
        let eval2 = try b.forward(inputIds: Self.ids, attentionMask: Self.mask, batch: 2, length: 6, training: false)
        #expect(eval1 == eval2)
        #expect(eval1 != trainA)
    }

    @Test("padding does not change a sequence's logits")
    func paddingIsMasked() throws {
        let model = Self.model(.seedMLP(hidden: 5))
        for pooling in Pooling.allCases {
            model.pooling = pooling
            let short = try model.forward(inputIds: [2, 11, 22, 3], attentionMask: [1, 1, 1, 1], batch: 1, length: 4, training: false)
            let padded = try model.forward(inputIds: [2, 11, 22, 3, 0, 0, 0], attentionMask: [1, 1, 1, 1, 0, 0, 0], batch: 1, length: 7, training: false)
            #expect(abs(short[0] - padded[0]) <= 1e-5, "\(pooling): \(short) vs \(padded)")
        }
    }

    @Test("a frozen encoder gets no gradient while the head's gradient is unchanged")
    func frozenEncoder() throws {
        let free = Self.model(), frozen = Self.model()
        frozen.frozenEncoder = true
        for model in [free, frozen] {
            let logits = try model.forward(inputIds: Self.ids, attentionMask: Self.mask, batch: 2, length: 6, training: false)
            model.backward(dLogits: logits.map { _ in 1 })
        }
        let encoder = Set(frozen.names.encoderParameterNames())
        #expect(frozen.store.frozen == encoder)
        for view in frozen.store.views {
            let ours = frozen.store.gradientTensor(view.name).scalars
            if encoder.contains(view.name) {
                #expect(ours.allSatisfy { $0 == 0 }, "\(view.name) should get no gradient")
            } else {
                #expect(ours == free.store.gradientTensor(view.name).scalars, "\(view.name)")
            }
        }
        frozen.frozenEncoder = false
        #expect(frozen.store.frozen.isEmpty)
    }

    @Test("hidden-state gradients flow into the encoder")
    func hiddenStateGradients() throws {
        let model = Self.model()
        _ = try model.forward(inputIds: Self.ids, attentionMask: Self.mask, batch: 2, length: 6, training: false)
        model.backward(dLogits: [0, 0], hiddenStateGradients: [1: [Float](repeating: 0.5, count: 2 * 6 * 8)])
        // Layer 0 and the embeddings feed hidden state 1; layer 1 and the head do not.
        #expect(model.store.gradientTensor("bert.encoder.layer.0.intermediate.dense.weight").scalars.contains { $0 != 0 })
        #expect(model.store.gradientTensor("bert.embeddings.LayerNorm.weight").scalars.contains { $0 != 0 })
        #expect(model.store.gradientTensor("bert.encoder.layer.1.intermediate.dense.weight").scalars.allSatisfy { $0 == 0 })
    }

    @Test("a longer batch after a shorter one reuses and grows the buffers, giving the same answers")
    func buffersGrow() throws {
        let model = Self.model()
        let first = try model.forward(inputIds: Self.ids, attentionMask: Self.mask, batch: 2, length: 6, training: false)
        let bytes = model.activationBytes
        _ = try model.forward(inputIds: [Int32](repeating: 5, count: 27), attentionMask: [Int32](repeating: 1, count: 27), batch: 3, length: 9, training: true)
        #expect(model.activationBytes > bytes)
        let grown = model.activationBytes
        let again = try model.forward(inputIds: Self.ids, attentionMask: Self.mask, batch: 2, length: 6, training: false)
        #expect(again == first)
        #expect(model.activationBytes == grown)
    }

    @Test("bad inputs are refused with one line naming the problem")
    func badInputs() throws {
        let model = Self.model()
        #expect(throws: ModelInputError.self) { try model.forward(inputIds: [2, 99], attentionMask: [1, 1], batch: 1, length: 2, training: false) }
        #expect(throws: ModelInputError.self) { try model.forward(inputIds: [2, 3], attentionMask: [1], batch: 1, length: 2, training: false) }
        #expect(throws: ModelInputError.self) {
            try model.forward(inputIds: [Int32](repeating: 2, count: 10), attentionMask: [Int32](repeating: 1, count: 10), batch: 1, length: 10, training: false)
        }
        do {
            try model.forward(inputIds: [2, 99], attentionMask: [1, 1], batch: 1, length: 2, training: false)
        } catch {
            #expect("\(error)" == "model input: token id 99 at row 0, position 1 is outside the vocabulary of 23")
        }
    }

    @Test("random initialisation follows Hugging Face: seeded, std 0.02, zero biases, unit LayerNorm, zero padding row")
    func initialisation() {
        let a = Self.model(seed: 5), b = Self.model(seed: 5), c = Self.model(seed: 6)
        #expect(Array(UnsafeBufferPointer(start: a.store.values, count: a.store.count)) == Array(UnsafeBufferPointer(start: b.store.values, count: b.store.count)))
        #expect(a.store.tensor("bert.pooler.dense.weight") != c.store.tensor("bert.pooler.dense.weight"))
        let big = SequenceClassifier(shape: .small, head: .bertPooler, numLabels: 1)
        big.initializeRandomly(seed: 1)
        let w = big.store.tensor("bert.encoder.layer.0.intermediate.dense.weight").scalars
        let std = (w.reduce(0) { $0 + Double($1) * Double($1) } / Double(w.count)).squareRoot()
        #expect(abs(std - 0.02) < 0.0005)
        #expect(big.store.tensor("bert.encoder.layer.0.intermediate.dense.bias").scalars.allSatisfy { $0 == 0 })
        #expect(big.store.tensor("bert.embeddings.LayerNorm.weight").scalars.allSatisfy { $0 == 1 })
        #expect(big.store.tensor("bert.embeddings.word_embeddings.weight").scalars[0..<256].allSatisfy { $0 == 0 })
    }
}

@Suite("Encoder shapes and parameter layouts")
struct EncoderShapeTests {
    @Test("bert and distilbert configs read with their own key names")
    func readsConfigs() throws {
        let bert = try ModelFixture.shape("bert-tiny")
        #expect(bert == EncoderShape(modelType: .bert, vocabSize: 8000, hiddenSize: 32, layers: 2, heads: 4, intermediateSize: 64,
                                     maxPositions: 64, typeVocabSize: 2, layerNormEps: 1e-12, hiddenDropout: 0.1,
                                     attentionDropout: 0.1, classifierDropout: 0.1))
        let distil = try ModelFixture.shape("distilbert-tiny")
        #expect(distil.modelType == .distilbert && distil.hiddenSize == 32 && distil.intermediateSize == 64 && distil.typeVocabSize == 0)
        #expect(distil.classifierDropout == 0.2)
    }

    @Test("an unknown model_type is refused, naming the file and the type")
    func unknownType() {
        #expect(throws: CheckpointError.self) { try EncoderShape(json: ["model_type": "gpt2"], file: "x/config.json") }
        do { _ = try EncoderShape(json: ["model_type": "gpt2"], file: "x/config.json") } catch {
            #expect("\(error)" == "x/config.json: unknown model_type \"gpt2\" (expected one of \"bert\", \"distilbert\", \"xlm-roberta\", \"roberta\", \"camembert\", \"albert\")")
        }
        #expect(throws: CheckpointError.self) {
            try EncoderShape(json: ["model_type": "bert", "vocab_size": 10, "hidden_size": 10, "num_hidden_layers": 1,
                                    "num_attention_heads": 3, "intermediate_size": 4, "max_position_embeddings": 8,
                                    "type_vocab_size": 2], file: "c.json")
        }
    }

    @Test("the layout names every tensor exactly as the Hugging Face checkpoints do")
    func layoutMatchesCheckpoints() throws {
        for folder in ["bert-tiny", "distilbert-tiny"] {
            let shape = try ModelFixture.shape(folder)
            let layout = parameterLayout(shape, head: .huggingFace(for: shape.modelType), numLabels: 1)
            let file = try SafeTensorsFile(contentsOf: Fixtures.url("\(folder)/model.safetensors"))
            #expect(Set(layout.map(\.name)) == Set(file.names))
            for (name, dims) in layout { #expect(file.entry(named: name)?.shape == dims, "\(name)") }
        }
        let reference = try SafeTensorsFile(contentsOf: Fixtures.url("seed-checkpoint/reference.safetensors"))
        let seedNames = Set(reference.names.filter { $0.hasPrefix("after_adamw_step.") }.map { String($0.dropFirst("after_adamw_step.".count)) })
        let seedLayout = parameterLayout(try ModelFixture.shape("seed-checkpoint"), head: .seedMLP(hidden: 256), numLabels: 1)
        #expect(Set(seedLayout.map(\.name)) == seedNames)
    }
}
