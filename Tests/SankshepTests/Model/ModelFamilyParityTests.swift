import Foundation
import Testing
@testable import Host

/// XLM-RoBERTa and ALBERT against PyTorch: tiny random models made by
/// scripts/fixtures/make_model_family_fixtures.py with transformers, their forward, loss and every
/// gradient on one padded batch (PyTorchParityTests.checkParity), and their 2-label forms.
@Suite("XLM-RoBERTa and ALBERT parity with PyTorch")
struct ModelFamilyParityTests {
    /// A classifier of `folder`'s config with the weights of `weightsFile`, through the same reader as `sankshep`.
    static func model(_ folder: String, weightsFile: String = "model.safetensors", labels: Int = 1) throws -> SequenceClassifier {
        let config = try ModelConfig.read(Fixtures.url("\(folder)/config.json"))
        let shape = EncoderShape(config)
        let model = SequenceClassifier(shape: shape, head: .huggingFace(for: shape.modelType), numLabels: labels)
        let weights = try SafeTensorsFile(contentsOf: Fixtures.url("\(folder)/\(weightsFile)"))
        #expect(Set(weights.names) == Set(model.store.views.map(\.name)), "the stored tensors are exactly transformers' state dict")
        for view in model.store.views { model.store.setValues(view.name, from: try weights.tensor(named: view.name)) }
        return model
    }

    @Test("xlm-roberta: positions from pad + 1, type_vocab_size 1, the RoBERTa head: logits, hidden states, every gradient")
    func xlmRoberta() throws {
        let model = try Self.model("xlmr-tiny")
        #expect(model.shape.modelType == .roberta && model.shape.paddingIndex == 1 && model.shape.typeVocabSize == 1)
        #expect(model.names.headHidden == "classifier.dense" && model.names.headOutput == "classifier.out_proj")
        try PyTorchParityTests().checkParity(model, folder: "xlmr-tiny")
    }

    @Test("albert: factorized embeddings, one layer shared by 3 repeats (gradient summed), gelu_new: logits, hidden states, every gradient")
    func albert() throws {
        let model = try Self.model("albert-tiny")
        #expect(model.shape.modelType == .albert && model.shape.layers == 3 && model.names.layers.count == 1)
        #expect(model.shape.embeddingSize == 8 && model.shape.activation == .geluTanh)
        try PyTorchParityTests().checkParity(model, folder: "albert-tiny")
    }

    @Test("the 2-label forms give transformers' two logits", arguments: ["xlmr-tiny", "albert-tiny"])
    func twoLabels(folder: String) throws {
        let model = try Self.model(folder, weightsFile: "model-2label.safetensors", labels: 2)
        let reference = try SafeTensorsFile(contentsOf: Fixtures.url("\(folder)/reference.safetensors"))
        let batch = try ModelFixture.batch(reference)
        let logits = try model.forward(inputIds: batch.ids, attentionMask: batch.mask, batch: batch.batch, length: batch.length, training: false)
        let expected = try reference.tensor(named: "logits_2label").scalars
        #expect(ModelFixture.maxAbsDifference(logits, expected) <= 1e-5, "\(logits) vs \(expected)")
    }

    @Test("the [CLS]-rows-only inference path gives the full forward's logits", arguments: ["xlmr-tiny", "albert-tiny"])
    func headRowsOnly(folder: String) throws {
        let model = try Self.model(folder)
        let reference = try SafeTensorsFile(contentsOf: Fixtures.url("\(folder)/reference.safetensors"))
        let batch = try ModelFixture.batch(reference)
        let full = try model.forward(inputIds: batch.ids, attentionMask: batch.mask, batch: batch.batch, length: batch.length, training: false)
        model.headRowsOnlyInInference = true
        let rows = try model.forward(inputIds: batch.ids, attentionMask: batch.mask, batch: batch.batch, length: batch.length, training: false)
        #expect(ModelFixture.maxAbsDifference(full, rows) <= 1e-5)
    }

    @Test("RoBERTa refuses a sequence longer than its positions after pad + 1")
    func robertaLength() throws {
        let model = try Self.model("xlmr-tiny")
        // max_position_embeddings 11, pad 1: 9 positions.
        #expect(model.shape.maxSequenceLength == 9)
        #expect(throws: ModelInputError.self) {
            try model.forward(inputIds: [Int32](repeating: 5, count: 10), attentionMask: [Int32](repeating: 1, count: 10),
                              batch: 1, length: 10, training: false)
        }
    }

    @Test("position ids count the non-pad tokens from pad + 1, as create_position_ids_from_input_ids")
    func robertaPositions() {
        let ids: [Int32] = [0, 7, 1, 9, 2, 1, 0, 1, 1, 1]
        var out = [Int32](repeating: -1, count: ids.count)
        ids.withUnsafeBufferPointer { i in
            out.withUnsafeMutableBufferPointer { Embeddings.robertaPositions(out: $0.baseAddress!, ids: i.baseAddress!, paddingIndex: 1, batch: 2, length: 5) }
        }
        #expect(out == [2, 3, 1, 4, 5, 1, 2, 1, 1, 1])
    }

    @Test("config.json: ALBERT's grouped layers other than one, and unknown activations, are refused by name")
    func refusals() throws {
        let base = try Data(contentsOf: Fixtures.url("albert-tiny/config.json"))
        var object = try #require(try JSONValue.parse(base).objectValue)
        object["num_hidden_groups"] = .int(2)
        let grouped = try JSONValue.object(object).prettyPrinted()
        #expect(throws: CheckpointError.self) { try ModelConfig(json: grouped, file: "config.json") }
        object["num_hidden_groups"] = .int(1)
        object["hidden_act"] = .string("relu")
        #expect(throws: CheckpointError.self) { try ModelConfig(json: JSONValue.object(object).prettyPrinted(), file: "config.json") }
    }

    @Test("config.json round-trips: the written config reads back to the same shape, with transformers' keys",
          arguments: ["xlmr-tiny", "albert-tiny"])
    func configRoundTrip(folder: String) throws {
        let config = try ModelConfig.read(Fixtures.url("\(folder)/config.json"))
        let again = try ModelConfig(json: try config.json(), file: "written")
        #expect(EncoderShape(again) == EncoderShape(config))
        let written = try #require(try JSONValue.parse(try config.json()).objectValue)
        #expect(written["model_type"]?.stringValue == config.modelType.rawValue)
        if config.modelType == .albert {
            #expect(written["embedding_size"]?.intValue == 8 && written["hidden_act"]?.stringValue == "gelu_new")
        }
    }
}
