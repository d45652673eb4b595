import Foundation
import Testing
@testable import Host

/// Every `--pipeline` name, end to end, on a slice of the bundled data with tiny settings.
@Suite("Every --pipeline name runs end to end", .serialized)
struct AllPipelinesTests {
    static let arguments = ["--data_path", Fixtures.bundledData.path, "--data_fraction", "0.03", "--num_folds", "2",
                            "--epochs", "1", "--fine_tune_epochs", "1", "--calib_samples", "32",
                            "--quant_calibration_batches", "2", "--threads", "1"]

    @Test("the pipeline runs every stage and writes a summary row per stage and the final folder",
          arguments: PipelineName.allCases)
    func pipelineRuns(_ pipeline: PipelineName) throws {
        let folder = try Fixtures.temporaryFolder("pipeline-\(pipeline.rawValue)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let command = try RunCommand.parseAsRoot(["--pipeline", pipeline.rawValue, "--output_dir", folder.path] + Self.arguments) as! RunCommand
        try command.run()
        let recipe = try Recipe.builtIn(pipeline)
        let summary = try PipelineSummary.read(from: folder.appendingPathComponent("pipeline_summary_\(pipeline.rawValue).csv"))
        #expect(summary.rows.map(\.stage) == recipe.stageLabels)
        let final = folder.appendingPathComponent(recipe.stageTag)
        for name in ["config.json", "README.md", "provenance.json", "sankshep.json"] {
            #expect(FileManager.default.fileExists(atPath: final.appendingPathComponent(name).path), "missing \(name)")
        }
        // No temporary file is left under the output folder.
        let leftovers = FileManager.default.enumerator(atPath: folder.path)?.compactMap { $0 as? String }
            .filter { $0.contains(".tmp") || $0.hasSuffix("~") } ?? []
        #expect(leftovers.isEmpty, "\(leftovers)")
    }
}
