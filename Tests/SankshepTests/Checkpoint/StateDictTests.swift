import Foundation
import Testing
@testable import Host

@Suite("State dicts: reading any format and loading into a model")
struct StateDictTests {
    /// The embeddings of bert-tiny, laid out as a model would.
    static let embeddingLayout: [(name: String, shape: [Int])] = [
        ("bert.embeddings.word_embeddings.weight", [8000, 32]),
        ("bert.embeddings.position_embeddings.weight", [64, 32]),
        ("bert.embeddings.LayerNorm.weight", [32]),
        ("bert.embeddings.LayerNorm.bias", [32]),
    ]

    @Test("every view of a model is filled from the tensor of the same name")
    func loadsByName() throws {
        let state = try StateDict.read(Fixtures.url("bert-tiny/model.safetensors"))
        let store = ParameterStore(layout: Self.embeddingLayout)
        try state.load(into: store, file: "bert-tiny/model.safetensors")
        for (name, _) in Self.embeddingLayout { #expect(store.tensor(name) == state[name]) }
    }

    @Test("a missing tensor is named, unless the model marks it optional")
    func missingTensor() throws {
        var state = try StateDict.read(Fixtures.url("bert-tiny/model.safetensors"))
        state["bert.embeddings.LayerNorm.bias"] = nil
        #expect(!state.names.contains("bert.embeddings.LayerNorm.bias"))
        let store = ParameterStore(layout: Self.embeddingLayout)
        let message = oneLineCheckpointError(naming: "ckpt.safetensors") { try state.load(into: store, file: "ckpt.safetensors") }
        #expect(message == "ckpt.safetensors: missing tensor 'bert.embeddings.LayerNorm.bias'")
        try state.load(into: store, file: "ckpt.safetensors", optional: { $0.hasSuffix("LayerNorm.bias") })
        #expect(store.tensor("bert.embeddings.LayerNorm.weight") == state["bert.embeddings.LayerNorm.weight"])
    }

    @Test("a tensor whose shape disagrees with the model's layout is refused, and nothing is copied")
    func shapeMismatch() throws {
        let state = try StateDict.read(Fixtures.url("bert-tiny/model.safetensors"))
        var layout = Self.embeddingLayout
        layout[1] = ("bert.embeddings.position_embeddings.weight", [128, 32])   // a config with 128 positions
        let store = ParameterStore(layout: layout)
        let message = oneLineCheckpointError(naming: "model.safetensors") { try state.load(into: store, file: "model.safetensors") }
        #expect(message == "model.safetensors: tensor 'bert.embeddings.position_embeddings.weight' has shape [64, 32] but the model expects [128, 32]")
        #expect(store.tensor("bert.embeddings.word_embeddings.weight").scalars.allSatisfy { $0 == 0 }, "a failed load copies nothing")
    }

    @Test("legacy LayerNorm gamma/beta names are renamed as Hugging Face does on load")
    func legacyRenames() throws {
        let folder = try CheckpointTempFolder()
        let file = folder.file("old.bin.safetensors")
        try SafeTensorsWriter.write([
            ("bert.embeddings.LayerNorm.gamma", Tensor(shape: [2], scalars: [1, 2])),
            ("bert.embeddings.LayerNorm.beta", Tensor(shape: [2], scalars: [3, 4])),
            ("cls.predictions.gamma_scale", Tensor(shape: [1], scalars: [5])),
        ], to: file)
        let state = try StateDict.read(file)
        #expect(state["bert.embeddings.LayerNorm.weight"] == Tensor(shape: [2], scalars: [1, 2]))
        #expect(state["bert.embeddings.LayerNorm.bias"] == Tensor(shape: [2], scalars: [3, 4]))
        #expect(state["cls.predictions.gamma_scale"] != nil, "only LayerNorm parameters are renamed")
        #expect(state.names.count == 3)
    }

    @Test("the format is chosen by content, whatever the file is called")
    func formatByContent() throws {
        let folder = try CheckpointTempFolder()
        let disguised = folder.file("best_model_fold3.pt")
        try FileManager.default.copyItem(at: Fixtures.url("bert-tiny/model.safetensors"), to: disguised)
        #expect(try StateDict.read(disguised).count == 41)
    }

    @Test("integer buffers are read as exact floats")
    func integerBuffers() throws {
        let folder = try CheckpointTempFolder()
        let file = folder.file("ids.safetensors")
        let ids: [Int64] = [0, 1, 2, 511]
        try SafeTensorsWriter.write(entries: [
            .init(name: "bert.embeddings.position_ids", dtype: .i64, shape: [1, 4], bytes: ids.withUnsafeBytes { Data($0) }),
        ], to: file)
        #expect(try StateDict.read(file)["bert.embeddings.position_ids"] == Tensor(shape: [1, 4], scalars: [0, 1, 2, 511]))
    }

    @Test("a prefix can be renamed, e.g. the seed checkpoint's encoder to bert")
    func prefixRename() throws {
        let state = try StateDict.read(Fixtures.url("seed-checkpoint/best_model_fold0.pt")).renamingPrefix("encoder.", to: "bert.")
        #expect(state["bert.embeddings.word_embeddings.weight"]?.shape == [8000, 32])
        #expect(state["classifier.3.bias"] != nil)
        #expect(!state.names.contains { $0.hasPrefix("encoder.") })
    }
}
