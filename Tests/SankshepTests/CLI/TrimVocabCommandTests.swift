import Foundation
import Testing
@testable import Host

@Suite("sankshep trim-vocab")
struct TrimVocabCommandTests {
    @Test("writes a folder with the rows the comments use, which loads to the same probabilities on a kept text")
    func trimsAFolder() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let data = folder.appendingPathComponent("comments.csv")
        let texts = Array(try CommentTexts.load(contentsOf: Fixtures.bundledData).texts.prefix(200))
        let quoted = texts.map { "\"" + $0.replacingOccurrences(of: "\"", with: "\"\"") + "\",0" }
        try ("Comments,HateSpeech\n" + quoted.joined(separator: "\n") + "\n").write(to: data, atomically: true, encoding: .utf8)
        let output = folder.appendingPathComponent("trimmed")
        let command = try #require(try TrimVocabCommand.parseAsRoot(["--model", Fixtures.url("bert-tiny").path, "--data_path", data.path,
                                                                       "--held_out", data.path, "--output", output.path]) as? TrimVocabCommand)
        try command.run()
        let original = try Classifier.load(from: Fixtures.url("bert-tiny"))
        let trimmed = try Classifier.load(from: output)
        #expect(trimmed.config.vocabSize < original.config.vocabSize)
        #expect(trimmed.config.vocabSize == VocabularyTrimming.keptIds(tokenizer: original.tokenizer, trainingTexts: texts).count)
        let p = try original.probabilities(sequences: [original.tokenizer.encode(texts[0], maxLength: 64)], rows: [0], batchSize: 1)
        let q = try trimmed.probabilities(sequences: [trimmed.tokenizer.encode(texts[0], maxLength: 64)], rows: [0], batchSize: 1)
        #expect(p == q)
    }

    @Test("--top_k without --corpus, and --output equal to --model, are refused")
    func refusesBadOptions() {
        #expect(throws: (any Error).self) { try TrimVocabCommand.parseAsRoot(["--model", "m", "--data_path", "d.csv", "--output", "o", "--top_k", "5"]) }
        #expect(throws: (any Error).self) { try TrimVocabCommand.parseAsRoot(["--model", "m", "--data_path", "d.csv", "--output", "m"]) }
    }
}
