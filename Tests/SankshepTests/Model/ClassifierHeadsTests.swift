import Foundation
import Testing
@testable import Host

/// The heads and folders users bring (Fixtures/heads, made by scripts/fixtures/make_head_fixtures.py):
/// two-label Hugging Face heads with and without `id2label`, and both folders the seed framework writes.
@Suite("Heads and folders users bring")
struct ClassifierHeadsTests {
    /// A fixture's texts, their padded token ids and the probabilities PyTorch computed for them.
    struct Reference: Decodable {
        let texts: [String]
        let max_length: Int
        let input_ids: [[Int]]
        let attention_mask: [[Int]]
        let probabilities: [Double]

        /// Each row's token ids without the padding.
        var sequences: [[Int]] { zip(input_ids, attention_mask).map { ids, mask in zip(ids, mask).filter { $0.1 == 1 }.map(\.0) } }

        static func read(_ fixture: String) throws -> Reference {
            try JSONDecoder().decode(Reference.self, from: Data(contentsOf: Fixtures.url("heads/\(fixture)/reference.json")))
        }
    }

    static let fixtures = ["bert-2label", "bert-2label-named", "bert-2label-reversed", "distilbert-2label", "distilbert-2label-named",
                           "seed-final-bert", "seed-final-distilbert-2label", "seed-pretrained-distilbert-mean", "seed-pretrained-bert-multi"]

    static func maxDifference(_ ours: [Float], _ theirs: [Double]) -> Double {
        zip(ours, theirs).reduce(0) { max($0, abs(Double($1.0) - $1.1)) }
    }

    @Test("Classifier.load gives the probabilities of transformers' softmax or of the seed's forward within 1e-5", arguments: fixtures)
    func classifierMatchesReference(_ fixture: String) throws {
        let reference = try Reference.read(fixture)
        let classifier = try Classifier.load(from: Fixtures.url("heads/\(fixture)"), requireTrainedHead: true)
        // The padded batch exactly as PyTorch ran it, then the evaluator's own length-bucketed batches.
        let rows = reference.input_ids.count, length = reference.input_ids[0].count
        let logits = try classifier.network.forward(inputIds: reference.input_ids.flatMap { $0.map(Int32.init) },
                                                    attentionMask: reference.attention_mask.flatMap { $0.map(Int32.init) },
                                                    batch: rows, length: length, training: false)
        let padded = BinaryReadout.probabilities(logits, labels: classifier.network.numLabels)
        #expect(Self.maxDifference(padded, reference.probabilities) <= 1e-5, "\(padded) vs \(reference.probabilities)")
        let evaluated = try classifier.probabilities(sequences: reference.sequences, rows: Array(0..<rows), batchSize: 2)
        #expect(Self.maxDifference(evaluated, reference.probabilities) <= 1e-5, "\(evaluated) vs \(reference.probabilities)")
        // Predict tokenizes the texts itself: the same ids as transformers' tokenizer.
        #expect(reference.texts.map { classifier.tokenizer.encode($0, maxLength: reference.max_length) } == reference.sequences)
    }

    @Test("sankshep predict on each fixture folder prints the reference probabilities within 1e-5", arguments: fixtures)
    func predictMatchesReference(_ fixture: String) throws {
        let reference = try Reference.read(fixture)
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let output = folder.appendingPathComponent("predictions.jsonl")
        let command = try PredictCommand.parseAsRoot(["--model", Fixtures.url("heads/\(fixture)").path, "--output", output.path,
                                                      "--max_length", String(reference.max_length), "--threads", "1"]
                                                     + reference.texts.flatMap { ["--text", $0] }) as! PredictCommand
        try command.run()
        let lines = try String(contentsOf: output, encoding: .utf8).split(separator: "\n")
        let probabilities = try lines.map { line in
            (try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["probability"] as? Double ?? -1
        }
        #expect(probabilities.count == reference.texts.count)
        #expect(Self.maxDifference(probabilities.map(Float.init), reference.probabilities) <= 1e-5, "\(probabilities)")
    }

    @Test("a head whose id2label puts the positive class at 0 is saved with it at 1, and reloads to the same probabilities")
    func reversedHeadSavesNormalised() throws {
        let reference = try Reference.read("bert-2label-reversed")
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let classifier = try Classifier.load(from: Fixtures.url("heads/bert-2label-reversed"))
        try classifier.save(to: folder)
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("config.json"))) as! [String: Any]
        #expect(config["id2label"] as? [String: String] == ["0": "not hate", "1": "hate"])
        let reloaded = try Classifier.load(from: folder, requireTrainedHead: true)
        let probabilities = try reloaded.probabilities(sequences: reference.sequences, rows: Array(reference.sequences.indices), batchSize: 8)
        #expect(Self.maxDifference(probabilities, reference.probabilities) <= 1e-5)
    }

    @Test("a multi-layer seed head saved by Sankshep reloads as the same multi-layer head")
    func multiLayerHeadRoundTrips() throws {
        let reference = try Reference.read("seed-pretrained-bert-multi")
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let classifier = try Classifier.load(from: Fixtures.url("heads/seed-pretrained-bert-multi"))
        #expect(classifier.network.head == .seedMLP(hidden: 256, layers: 4))
        try classifier.save(to: folder)
        let reloaded = try Classifier.load(from: folder, requireTrainedHead: true)
        #expect(reloaded.network.head == .seedMLP(hidden: 256, layers: 4))
        let probabilities = try reloaded.probabilities(sequences: reference.sequences, rows: Array(reference.sequences.indices), batchSize: 8)
        #expect(Self.maxDifference(probabilities, reference.probabilities) <= 1e-5)
    }

    /// A copy of a fixture folder whose config.json (or another file) is replaced.
    static func copy(_ fixture: String, replacing file: String, with text: String) throws -> URL {
        let folder = try Fixtures.temporaryFolder(fixture)
        let copy = folder.appendingPathComponent(fixture)
        try FileManager.default.copyItem(at: Fixtures.url("heads/\(fixture)"), to: copy)
        try Data(text.utf8).write(to: copy.appendingPathComponent(file))
        return copy
    }

    @Test("an id2label that names more labels than the classifier has rows is refused in one line")
    func id2labelCountMustMatch() throws {
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: Fixtures.url("heads/bert-2label/config.json"))) as! [String: Any]
        config["id2label"] = ["0": "not hate", "1": "hate", "2": "spam"]
        let copy = try Self.copy("bert-2label", replacing: "config.json",
                                 with: String(decoding: try JSONSerialization.data(withJSONObject: config), as: UTF8.self))
        defer { try? FileManager.default.removeItem(at: copy.deletingLastPathComponent()) }
        do {
            _ = try Classifier.load(from: copy)
            Issue.record("a 3-name id2label on a 2-row head was accepted")
        } catch let error as CheckpointError {
            #expect(error.description.contains("id2label names 3 labels") && error.description.contains("2 rows"))
            #expect(!error.description.contains("\n"))
        }
    }

    @Test("a seed folder whose classifier_config.json disagrees with classifier.pt is refused in one line")
    func seedNumLabelsMustMatch() throws {
        let copy = try Self.copy("seed-final-bert", replacing: "classifier_config.json", with: #"{"type": "sequential", "num_labels": 2, "hidden_size": 32}"#)
        defer { try? FileManager.default.removeItem(at: copy.deletingLastPathComponent()) }
        #expect(throws: CheckpointError.self) { try Classifier.load(from: copy) }
        do { _ = try Classifier.load(from: copy) } catch {
            #expect("\(error)".contains("num_labels is 2, but classifier.pt's 3.weight has 1 rows"))
        }
    }

    @Test("predict and eval refuse a folder without a trained head in one line; training may still start from it")
    func headlessFolderIsRefusedForPrediction() throws {
        let encoder = Fixtures.url("heads/seed-pretrained-distilbert-mean/encoder")
        let predict = try PredictCommand.parseAsRoot(["--model", encoder.path, "--text", "ভালো"]) as! PredictCommand
        do {
            try predict.run()
            Issue.record("predict answered with a random head")
        } catch let error as CheckpointError {
            #expect(error.description.contains("no trained classification head") && !error.description.contains("\n"))
        }
        let eval = try EvalCommand.parseAsRoot(["--model", encoder.path]) as! EvalCommand
        #expect(throws: CheckpointError.self) { try eval.run() }
        let trainable = try Classifier.load(from: encoder)
        #expect(trainable.network.numLabels == 1 && trainable.network.head == .distilbert)
    }
}

/// Seed folders and two-label heads as `--model_path`: the baseline trains them as the teacher.
@Suite("Heads users bring, trained as the teacher", .serialized)
struct BroughtTeacherTests {
    @Test("sankshep run --model_path <folder> trains the folder's own head and pooling, and saves a teacher that reloads with them",
          arguments: ["seed-final-distilbert-2label", "seed-pretrained-distilbert-mean", "seed-pretrained-bert-multi", "bert-2label-reversed"])
    func baselineTrainsBroughtModel(_ fixture: String) throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let brought = try Classifier.load(from: Fixtures.url("heads/\(fixture)"))
        let command = try RunCommand.parseAsRoot(["--model_path", Fixtures.url("heads/\(fixture)").path, "--data_path", Fixtures.bundledData.path,
                                                  "--data_fraction", "0.03", "--num_folds", "2", "--epochs", "1", "--max_length", "32",
                                                  "--output_dir", folder.path, "--threads", "1"]) as! RunCommand
        try command.run()
        let teacher = try Classifier.load(from: folder.appendingPathComponent("best_model_baseline"), requireTrainedHead: true)
        #expect(teacher.network.head == brought.network.head)
        #expect(teacher.network.numLabels == brought.network.numLabels)
        #expect(teacher.network.effectivePooling == brought.network.effectivePooling)
        #expect(teacher.network.store.tensor(teacher.network.names.headOutput + ".weight").scalars
                != brought.network.store.tensor(brought.network.names.headOutput + ".weight").scalars)
    }
}
