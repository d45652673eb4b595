import Foundation
import Testing
@testable import Host

@Suite("Hugging Face model folders")
struct HuggingFaceDirectoryTests {
    @Test("the weights file is found in Hugging Face's order of preference")
    func locatesWeights() throws {
        #expect(try HuggingFaceDirectory.weightsFile(in: Fixtures.url("bert-tiny")).lastPathComponent == "model.safetensors")
        #expect(try HuggingFaceDirectory.weightsFile(in: Fixtures.url("bert-tiny-bin")).lastPathComponent == "pytorch_model.bin")
        #expect(try HuggingFaceDirectory.weightsFile(in: Fixtures.url("seed-checkpoint")).lastPathComponent == "best_model_fold0.pt")
    }

    @Test("a folder without weights, or with several candidates, is refused in one line")
    func refusesAmbiguousFolders() throws {
        let folder = try CheckpointTempFolder()
        #expect(oneLineCheckpointError(naming: folder.url.path) { _ = try HuggingFaceDirectory.weightsFile(in: folder.url) }.contains("no model.safetensors"))
        try Data().write(to: folder.file("best_model_fold0.pt"))
        try Data().write(to: folder.file("best_model_fold1.pt"))
        #expect(oneLineCheckpointError(naming: folder.url.path) { _ = try HuggingFaceDirectory.weightsFile(in: folder.url) }.contains("several weights files"))
    }

    /// Reads a model folder and writes it back with `HuggingFaceDirectory.write`, then checks the
    /// written folder reads back to the same config and bit-identical tensors. Set
    /// SANKSHEP_EXPORT_DIR to keep the written folders for `scripts/check_transformers_load.py`.
    @Test("a model read and written back as a Hugging Face folder reads back exactly", arguments: ["bert-tiny-bin", "distilbert-tiny"])
    func writeAndReadBack(source: String) throws {
        let scratch = try CheckpointTempFolder()
        let keep = ProcessInfo.processInfo.environment["SANKSHEP_EXPORT_DIR"].map { URL(fileURLWithPath: $0) }
        let output = (keep ?? scratch.url).appendingPathComponent(source)
        let (config, weights, _) = try HuggingFaceDirectory.read(Fixtures.url(source))
        let tokenizerFiles = HuggingFaceDirectory.tokenizerFiles(in: Fixtures.url(source))
        try HuggingFaceDirectory.write(config: config, tensors: weights.orderedTensors, tokenizerFiles: tokenizerFiles, to: output)

        let names = try FileManager.default.contentsOfDirectory(atPath: output.path).sorted()
        #expect(names == ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"])
        let (rereadConfig, rereadWeights, file) = try HuggingFaceDirectory.read(output)
        #expect(file.lastPathComponent == "model.safetensors")
        #expect(try SafeTensorsFile(contentsOf: file).metadata == ["format": "pt"])
        #expect(rereadConfig == { var c = config; c.raw = rereadConfig.raw; return c }())
        #expect(Set(rereadWeights.names) == Set(weights.names))
        for name in weights.names {
            #expect(rereadWeights[name]?.scalars.map(\.bitPattern) == weights[name]?.scalars.map(\.bitPattern), "\(name) changed")
        }
        for tokenizerFile in tokenizerFiles {
            #expect(try Data(contentsOf: output.appendingPathComponent(tokenizerFile.lastPathComponent)) == Data(contentsOf: tokenizerFile))
        }
    }
}
