import Foundation
import Testing
@testable import Host

@Suite("Input files are read only when they are regular files")
struct InputFileTests {
    @Test("a model folder whose weights file is a FIFO is refused in one line instead of blocking forever")
    func fifoWeights() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        for name in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
            try FileManager.default.copyItem(at: Fixtures.url("bert-tiny/\(name)"), to: folder.appendingPathComponent(name))
        }
        let weights = folder.appendingPathComponent("model.safetensors")
        #expect(mkfifo(weights.path, 0o600) == 0)
        let message = oneLineCheckpointError(naming: weights.path) { _ = try Classifier.load(from: folder) }
        #expect(message.contains("not a regular file but a FIFO"), "\(message)")
    }

    @Test("a FIFO named as a torch checkpoint, a CSV or a recipe is refused the same way")
    func fifoElsewhere() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let fifo = folder.appendingPathComponent("pipe")
        #expect(mkfifo(fifo.path, 0o600) == 0)
        #expect(oneLineCheckpointError(naming: fifo.path) { _ = try TorchCheckpoint.read(fifo) }.contains("a FIFO"))
        #expect(throws: (any Error).self) { _ = try CommentDataset.load(contentsOf: fifo, options: CommentCSVOptions()) }
        do {
            _ = try Recipe.load(contentsOf: fifo)
            Issue.record("a FIFO was read as a recipe")
        } catch {
            #expect("\(error)".contains("not a regular file but a FIFO"), "\(error)")
        }
        #expect(throws: InputFile.NotRegular.self) { _ = try InputFile.read(folder) }
    }
}
