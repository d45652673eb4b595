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
        (#"{"model_type": "roberta", "hidden_size": 32}"#, "model_type \"roberta\" is not supported"),
        (#"{"hidden_size": 32}"#, "no model_type"),
        (#"{"model_type": "bert", "hidden_act": "relu"}"#, "hidden_act \"relu\" is not supported"),
        (#"{"model_type": "distilbert", "activation": "gelu_new"}"#, "activation \"gelu_new\" is not supported"),
        (#"{"model_type": "distilbert", "sinusoidal_pos_embds": true}"#, "sinusoidal_pos_embds true is not supported"),
        (#"{"model_type": "bert", "hidden_size": "big"}"#, "hidden_size is \"big\", not an integer"),
        (#"{"model_type": "bert", "hidden_size": 30, "num_attention_heads": 4}"#, "not a multiple of the 4 attention heads"),
        (#"{"model_type": "bert", "hidden_dropout_prob": 1.5}"#, "not a dropout probability"),
        (#"{"model_type": "bert", "#, "not valid JSON"),
    ])
    func refusals(json: String, expected: String) throws {
        let folder = try CheckpointTempFolder()
        let file = folder.file("config.json")
        try Data(json.utf8).write(to: file)
        let message = oneLineCheckpointError(naming: file.path) { _ = try ModelConfig.read(file) }
        #expect(message.contains(expected), "\(message)")
    }

    @Test("missing keys take Hugging Face's defaults")
    func defaults() throws {
        let config = try ModelConfig(json: Data(#"{"model_type": "bert"}"#.utf8), file: "config.json")
        #expect(config.hiddenSize == 768 && config.numLayers == 12 && config.numHeads == 12 && config.intermediateSize == 3072)
        #expect(config.vocabSize == 30522 && config.maxPositionEmbeddings == 512 && config.typeVocabSize == 2 && config.numLabels == 2)
    }
}
