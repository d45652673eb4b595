import Foundation
import Testing
@testable import Host

@Suite("Reading and writing config.json")
struct ModelConfigTests {
    @Test("a BERT config is read with Hugging Face's names")
    func bert() throws {
        let config = try ModelConfig.read(Fixtures.url("bert-tiny/config.json"))
        #expect(config.modelType == .bert)
        #expect(config.vocabSize == 8000 && config.hiddenSize == 32 && config.numLayers == 2 && config.numHeads == 4)
        #expect(config.intermediateSize == 64 && config.maxPositionEmbeddings == 64 && config.typeVocabSize == 2)
        #expect(config.hiddenDropout == 0.1 && config.attentionDropout == 0.1 && config.layerNormEps == 1e-12)
        #expect(config.classifierDropout == nil && config.headDropout == 0.1)
        #expect(config.numLabels == 1 && config.padTokenId == 0 && config.headDimension == 8)
        #expect(config.architectures == ["BertForSequenceClassification"])
    }

    @Test("a DistilBERT config is normalised to the same names")
    func distilbert() throws {
        let config = try ModelConfig.read(Fixtures.url("distilbert-tiny/config.json"))
        #expect(config.modelType == .distilbert)
        #expect(config.vocabSize == 8000 && config.hiddenSize == 32 && config.numLayers == 2 && config.numHeads == 4)
        #expect(config.intermediateSize == 64 && config.typeVocabSize == 0 && config.layerNormEps == 1e-12)
        #expect(config.classifierDropout == 0.2 && config.headDropout == 0.2)
        #expect(config.numLabels == 1)
    }

    @Test("writing a config back keeps the keys Sankshep does not know and changes only what was changed")
    func writeBackPreservesUnknownKeys() throws {
        let folder = try CheckpointTempFolder()
        var config = try ModelConfig.read(Fixtures.url("distilbert-tiny/config.json"))
        config.numLayers = 1
        let file = folder.file("config.json")
        try config.write(to: file)
        let written = try #require(try JSONValue.parse(Data(contentsOf: file)).objectValue)
        let original = try #require(try JSONValue.parse(Data(contentsOf: Fixtures.url("distilbert-tiny/config.json"))).objectValue)
        #expect(written["n_layers"] == .int(1))
        #expect(written["qa_dropout"] == .double(0.1) && written["transformers_version"] == .string("5.24.0"))
        #expect(written["hidden_size"] == nil, "DistilBERT keys keep DistilBERT names")
        var expected = original
        expected["n_layers"] = .int(1)
        #expect(written == expected)
        var reread = try ModelConfig.read(file)
        #expect(reread.raw == expected)
        reread.raw = config.raw
        #expect(reread == config)
    }

    @Test("a preset made in code writes a config that reads back the same")
    func presetRoundTrip() throws {
        let folder = try CheckpointTempFolder()
        let preset = ModelConfig(modelType: .bert, vocabSize: 8000, hiddenSize: 256, numLayers: 4, numHeads: 4,
                                 intermediateSize: 1024, maxPositionEmbeddings: 128)
        try preset.write(to: folder.file("config.json"))
        var reread = try ModelConfig.read(folder.file("config.json"))
        #expect(reread.raw["id2label"] == .object(["0": .string("LABEL_0")]))
        reread.raw = [:]
        #expect(reread == preset)
    }

    @Test("configs Sankshep cannot run are refused in one line naming the file", arguments: [
        (#"{"model_type": "gpt2", "hidden_size": 32}"#, "model_type \"gpt2\" is not supported"),
        (#"{"hidden_size": 32}"#, "no model_type"),
        (#"{"model_type": "bert", "hidden_act": "relu"}"#, "hidden_act \"relu\" is not supported"),
        (#"{"model_type": "distilbert", "activation": "gelu_new"}"#, "activation \"gelu_new\" is not supported"),
        (#"{"model_type": "distilbert", "sinusoidal_pos_embds": true}"#, "sinusoidal_pos_embds true is not supported"),
        (#"{"model_type": "bert", "hidden_size": "big"}"#, "hidden_size is \"big\", not an integer"),
        (#"{"model_type": "bert", "hidden_size": 30, "num_attention_heads": 4}"#, "not a multiple of the 4 attention heads"),
        (#"{"model_type": "bert", "hidden_dropout_prob": 1.5}"#, "not a dropout probability"),
        (#"{"model_type": "bert", "#, "not valid JSON"),
        (#"{"model_type": "bert", "vocab_size": 9223372036854775807}"#, "more parameters than can be counted"),
        (#"{"model_type": "bert", "vocab_size": 2147483648}"#, "more than this machine's"),
    ])
    func refusals(json: String, expected: String) throws {
        let folder = try CheckpointTempFolder()
        let file = folder.file("config.json")
        try Data(json.utf8).write(to: file)
        let message = oneLineCheckpointError(naming: file.path) { _ = try ModelConfig.read(file) }
        #expect(message.contains(expected), "\(message)")
    }

    @Test("a bad pruned_heads is refused in one line naming the file and the key", arguments: [
        (#"{"0": [4]}"#, #"pruned_heads["0"] names head 4, outside 0..<4"#),
        (#"{"2": [0]}"#, #"pruned_heads key "2" is not a layer index in 0..<2"#),
        (#"{"layer": [0]}"#, #"pruned_heads key "layer""#),
        (#"{"1": [0, 1, 2, 3]}"#, #"pruned_heads["1"] removes all 4 heads"#),
        (#"{"1": [2, 2]}"#, #"pruned_heads["1"] names a head twice"#),
        (#"{"1": "all"}"#, #"pruned_heads["1"] is "all", not a list"#),
        (#"[0, 1]"#, "pruned_heads is"),
    ])
    func badPrunedHeads(prunedHeads: String, expected: String) throws {
        let folder = try CheckpointTempFolder()
        let file = folder.file("config.json")
        let json = #"{"model_type": "bert", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "pruned_heads": "#
        try Data((json + prunedHeads + "}").utf8).write(to: file)
        let message = oneLineCheckpointError(naming: file.path) { _ = try ModelConfig.read(file) }
        #expect(message.contains(expected), "\(message)")
    }

    @Test("pruned_heads is read per layer and written back under Hugging Face's string keys")
    func prunedHeadsRoundTrip() throws {
        let folder = try CheckpointTempFolder()
        let file = folder.file("config.json")
        let json = #"{"model_type": "distilbert", "dim": 32, "n_layers": 2, "n_heads": 4, "pruned_heads": {"1": [3, 0], "0": []}}"#
        try Data(json.utf8).write(to: file)
        let config = try ModelConfig.read(file)
        #expect(config.prunedHeads == [1: [0, 3]])
        #expect(EncoderShape(config).heads(inLayer: 0) == 4 && EncoderShape(config).heads(inLayer: 1) == 2)
        try config.write(to: file)
        #expect(try JSONValue.parse(Data(contentsOf: file)).objectValue?["pruned_heads"] == .object(["1": .array([.int(0), .int(3)])]))
    }

    @Test("missing keys take Hugging Face's defaults")
    func defaults() throws {
        let config = try ModelConfig(json: Data(#"{"model_type": "bert"}"#.utf8), file: "config.json")
        #expect(config.hiddenSize == 768 && config.numLayers == 12 && config.numHeads == 12 && config.intermediateSize == 3072)
        #expect(config.vocabSize == 30522 && config.maxPositionEmbeddings == 512 && config.typeVocabSize == 2 && config.numLabels == 2)
    }
}
