import Foundation
import Testing
@testable import Host

private func temporaryFolder() throws -> URL {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sankshep-export-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    return folder
}

@Suite("Dense folders of pruned models")
struct TransformersExportTests {
    @Test("a head-removed, sparse model's folder is dense with every head back, gives the same logits, and loads back compact")
    func headsAndZerosComeBack() throws {
        let classifier = try PruningTestSupport.fourHeadClassifier(seed: 21)
        let smaller = try StructuredHeads.remove(classifier, keep: [[false, true, false, true], [true, true, true, false]])
        // Some exact zeros stored as sparse-bitmask too, as the pruning stage leaves them.
        let names = smaller.network.names.layers
        let ffn = smaller.network.store.pointer(names[1].ffnIn + ".weight")
        for i in stride(from: 0, to: 128 * 64, by: 2) { ffn[i] = 0 }
        let pruned = smaller
        pruned.config.raw["quantization_config"] = SparseBitmask.quantizationConfig(targets: [names[1].ffnIn], globalSparsity: 0.5)
        #expect(TransformersExport.needed(for: pruned.config))
        #expect(!TransformersExport.needed(for: classifier.config))

        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try pruned.save(to: folder)
        #expect(SankshepSettings.read(from: folder)?.prunedHeads == ["0": [0, 2], "1": [3]])
        let export = folder
        let file = try SafeTensorsFile(contentsOf: export.appendingPathComponent("model.safetensors"))
        #expect(!file.names.contains { $0.hasSuffix(".bitmask") || $0.hasSuffix(".compressed") })
        #expect(file.entry(named: names[0].query + ".weight")?.shape == [64, 64])
        #expect(file.entry(named: names[0].attentionOutput + ".weight")?.shape == [64, 64])
        let exportConfig = try JSONSerialization.jsonObject(with: Data(contentsOf: export.appendingPathComponent("config.json"))) as! [String: Any]
        #expect(exportConfig["pruned_heads"] == nil && exportConfig["quantization_config"] == nil)

        let sequences = PruningTestSupport.sequences(5)
        // Sankshep removes the heads sankshep.json names again.
        let reloaded = try Classifier.load(from: export)
        #expect(reloaded.config.prunedHeads == pruned.config.prunedHeads && reloaded.network.shape.heads(inLayer: 0) == 2)
        let expected = try PruningTestSupport.logits(pruned, sequences)
        let got = try PruningTestSupport.logits(reloaded, sequences)
        #expect(ModelFixture.maxAbsDifference(expected, got) < 1e-5, "\(expected) vs \(got)")
    }

    @Test("putting heads back places each kept head's rows and columns at its original index and zeros the rest")
    func expansionLayout() {
        // 3 heads of size 2, head 1 removed: kept heads 0 and 2.
        let rows = Tensor(shape: [4, 1], scalars: [1, 2, 3, 4])
        #expect(TransformersExport.expandRows(rows, kept: [0, 2], headSize: 2, heads: 3).scalars == [1, 2, 0, 0, 3, 4])
        let columns = Tensor(shape: [2, 4], scalars: [1, 2, 3, 4, 5, 6, 7, 8])
        #expect(TransformersExport.expandColumns(columns, kept: [0, 2], headSize: 2, heads: 3).scalars
                == [1, 2, 0, 0, 3, 4, 5, 6, 0, 0, 7, 8])
    }
}
