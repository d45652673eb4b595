import Foundation
import Testing
@testable import Host

/// What a model folder may hold, checked where it is loaded: each bad file is refused in one line
/// naming the file and what is wrong, instead of loading with a wrong threshold, pooling or weights.
@Suite("Loading a model folder validates what it holds")
struct ClassifierTests {
    /// A copy of the tiny BERT fixture in a fresh folder.
    func tinyFolder(_ name: String = #function) throws -> URL {
        let folder = try Fixtures.temporaryFolder(name)
        for file in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"] {
            try FileManager.default.copyItem(at: Fixtures.url("bert-tiny/\(file)"), to: folder.appendingPathComponent(file))
        }
        return folder
    }

    @Test("a sankshep.json holding what it may not is refused in one line naming the file", arguments: [
        (#"{"threshold": 1e999, "pooling": "cls"}"#, "is not valid JSON"),
        (#"{"threshold": -1e999, "pooling": "cls"}"#, "is not valid JSON"),
        (#"{"threshold": NaN, "pooling": "cls"}"#, "is not valid JSON"),
        (#"{"threshold": 1.5, "pooling": "cls"}"#, "not a probability"),
        (#"{"threshold": "0.5", "pooling": "cls"}"#, "threshold is \"0.5\", not a number"),
        (#"{"pooling": "cls"}"#, "threshold is absent"),
        (#"{"threshold": 0.5, "pooling": "foo"}"#, "pooling is \"foo\", not one of cls, mean, max"),
        (#"[{"threshold": 0.5, "pooling": "cls"}]"#, "is a list, not a JSON object"),
        (#"{"threshold": 0.5, "pooling": "cls", "max_length": 1}"#, "max_length is 1"),
        (#"{"threshold": 0.5, "pooling": "cls", "max_length": 9223372036854775807}"#, "max_length"),
        (#"{"threshold": 0.5, "pooling": "cls", "pruned_heads": {"0": [-1]}}"#, "pruned_heads of layer 0"),
        (#"{"threshold": 0.5, "pooling": "cls", "pruned_heads": [1]}"#, "pruned_heads is a list"),
        (#"{"threshold": 0.5, "pooling": "cls", "extra": {"stage": 3}}"#, "extra.stage is 3, not a string"),
        (#"{"threshold": 0.5, "pooling": "cls", "treshold": 0.2}"#, "unknown key 'treshold'"),
        (#"{"threshold": 0.5, "#, "is not valid JSON"),
    ])
    func badSettings(json: String, expected: String) throws {
        let folder = try tinyFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent(SankshepSettings.fileName)
        try Data(json.utf8).write(to: file)
        let message = oneLineCheckpointError(naming: file.path) { _ = try Classifier.load(from: folder) }
        #expect(message.contains(expected), "\(message)")
    }

    @Test("a valid sankshep.json is read with every key, and a folder without one takes the defaults")
    func goodSettings() throws {
        let folder = try tinyFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(try Classifier.load(from: folder).threshold == 0.5)
        try Data(#"{"threshold": 0.25, "pooling": "mean", "max_length": 32, "extra": {"stage": "baseline"}}"#.utf8)
            .write(to: folder.appendingPathComponent(SankshepSettings.fileName))
        let loaded = try Classifier.load(from: folder)
        #expect(loaded.threshold == 0.25 && loaded.network.pooling == .mean && loaded.maxLength == 32)
        #expect(try SankshepSettings.load(from: folder)?.extra == ["stage": "baseline"])
    }

    @Test("an inf or NaN weight is refused when the folder loads, naming the tensor", arguments: [Float.infinity, -.infinity, .nan])
    func nonFiniteWeight(value: Float) throws {
        let folder = try tinyFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("model.safetensors")
        let file = try SafeTensorsFile(contentsOf: url)
        var entries = file.entries.map { SafeTensorsWriter.Entry(name: $0.name, dtype: $0.dtype, shape: $0.shape, bytes: file.rawBytes(of: $0)) }
        let name = "bert.encoder.layer.1.output.dense.weight"
        let index = try #require(entries.firstIndex { $0.name == name })
        var tensor = try file.tensor(named: name)
        tensor.scalars[7] = value
        entries[index] = SafeTensorsWriter.Entry(name: name, tensor: tensor)
        try SafeTensorsWriter.write(entries: entries, metadata: file.metadata, to: url)
        let message = oneLineCheckpointError(naming: url.path) { _ = try Classifier.load(from: folder) }
        #expect(message.contains("'\(name)'") && message.contains("must be finite"), "\(message)")
    }

    @Test("a vocabulary listing an entry twice is refused in one line naming the file and both ids", arguments: ["[UNK]", "আমি"])
    func duplicateVocabularyEntry(entry: String) throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        for file in ["vocab.txt", "tokenizer_config.json"] {
            try FileManager.default.copyItem(at: Fixtures.bundledTokenizer.appendingPathComponent(file), to: folder.appendingPathComponent(file))
        }
        let vocabFile = folder.appendingPathComponent("vocab.txt")
        var lines = try String(contentsOf: vocabFile, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        let first = lines.firstIndex(of: entry)
        if first == nil { lines.insert(entry, at: 10) }
        lines.append(entry)
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: vocabFile)
        let earlier = first ?? 10
        do {
            _ = try BertTokenizer(directory: folder)
            Issue.record("a vocabulary with '\(entry)' twice was accepted")
        } catch {
            let message = "\(error)"
            #expect(!message.contains("\n") && message.contains(vocabFile.path), "\(message)")
            #expect(message.contains("'\(entry)' is listed twice (ids \(earlier) and \(lines.count - 1))"), "\(message)")
        }
    }

    @Test("entries that differ only by canonical equivalence are not duplicates")
    func canonicalEquivalentsAreDistinct() throws {
        let tokenizer = try BertTokenizer(vocabulary: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "\u{09DC}", "\u{09A1}\u{09BC}"],
                                          options: BertTokenizer.Options(), source: "vocabulary")
        #expect(tokenizer.vocabularySize == 6)
    }

    @Test("a dataset with one class only is refused in one line before any training", arguments: ["0", "1"])
    func oneClassDataset(label: String) throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let csv = folder.appendingPathComponent("one_class.csv")
        let rows = (0..<40).map { "\"comment number \($0)\",\(label)" }
        try Data((["Comments,HateSpeech"] + rows).joined(separator: "\n").utf8).write(to: csv)
        let command = try RunCommand.parseAsRoot(["--data_path", csv.path, "--num_folds", "2", "--epochs", "1",
                                                  "--output_dir", folder.appendingPathComponent("out").path, "--threads", "1",
                                                  "--cache_dir", folder.appendingPathComponent("cache").path]) as! RunCommand
        do {
            try command.run()
            Issue.record("a one-class dataset trained")
        } catch {
            let message = "\(error)"
            #expect(!message.contains("\n") && message.contains(csv.path) && message.contains("a classifier needs both classes"), "\(message)")
        }
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("out/best_model_baseline").path))
    }
}
