import Foundation
import Testing
@testable import Host

/// The seed framework's two model folders (Fixtures/heads/seed-*, made by scripts/fixtures/make_head_fixtures.py).
@Suite("Seed framework folders")
struct SeedFolderTests {
    @Test("save_pretrained's folder: encoder/ with the tokenizer, the head from classifier.pt, model_config.json's pooling and dropout")
    func pretrainedLayout() throws {
        let folder = try #require(try SeedFolder.read(Fixtures.url("heads/seed-pretrained-distilbert-mean")))
        #expect(folder.head == .seedMLP(hidden: 256, layers: 1))
        #expect(folder.pooling == .mean && folder.dropout == 0.1)
        #expect(folder.tokenizerDirectory.lastPathComponent == "encoder")
        #expect(folder.weights["encoder.embeddings.word_embeddings.weight"] != nil)
        #expect(folder.weights["classifier.3.weight"]?.shape == [1, 256])
    }

    @Test("use_multi_layers: the head reads the [CLS] vectors of the last 4 hidden states")
    func multiLayerLayout() throws {
        let folder = try #require(try SeedFolder.read(Fixtures.url("heads/seed-pretrained-bert-multi")))
        #expect(folder.head == .seedMLP(hidden: 256, layers: 4))
        #expect(folder.weights["encoder.pooler.dense.weight"] != nil)
    }

    @Test("final_<stages>/: the encoder at the top, no pooling recorded, the head's width and labels from classifier.pt")
    func finalLayout() throws {
        let bert = try #require(try SeedFolder.read(Fixtures.url("heads/seed-final-bert")))
        #expect(bert.head == .seedMLP(hidden: 256, layers: 1) && bert.pooling == nil)
        #expect(bert.tokenizerDirectory.lastPathComponent == "seed-final-bert")
        let student = try #require(try SeedFolder.read(Fixtures.url("heads/seed-final-distilbert-2label")))
        #expect(student.head == .seedMLP(hidden: 64, layers: 1))
        #expect(student.weights["classifier.3.weight"]?.shape == [2, 64])
    }

    @Test("a folder without classifier.pt is not a seed folder")
    func plainFolderIsNotSeed() throws {
        #expect(try SeedFolder.read(Fixtures.url("heads/bert-2label")) == nil)
    }

    @Test("model_config.json saying use_multi_layers over a head that reads H values is refused in one line")
    func multiLayerFlagMustMatchHead() throws {
        let copy = try ClassifierHeadsTests.copy("seed-pretrained-distilbert-mean", replacing: "model_config.json",
                                                 with: #"{"pooling_type": "cls", "use_multi_layers": true, "dropout": 0.1}"#)
        defer { try? FileManager.default.removeItem(at: copy.deletingLastPathComponent()) }
        do {
            _ = try SeedFolder.read(copy)
            Issue.record("a use_multi_layers config over a 32-input head was accepted")
        } catch let error as CheckpointError {
            #expect(error.description.contains("0.weight reads 32 values") && error.description.contains("use_multi_layers"))
            #expect(!error.description.contains("\n"))
        }
    }

    @Test("a pooling_type the seed does not know is refused in one line naming the file")
    func unknownPooling() throws {
        let copy = try ClassifierHeadsTests.copy("seed-pretrained-distilbert-mean", replacing: "model_config.json",
                                                 with: #"{"pooling_type": "attention", "use_multi_layers": false}"#)
        defer { try? FileManager.default.removeItem(at: copy.deletingLastPathComponent()) }
        #expect(throws: CheckpointError.self) { try SeedFolder.read(copy) }
        do { _ = try SeedFolder.read(copy) } catch { #expect("\(error)".contains("model_config.json: pooling_type is")) }
    }
}
