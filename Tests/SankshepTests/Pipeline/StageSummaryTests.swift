import Foundation
import Testing
@testable import Host

/// Summary rows as a real run would make them, with the awkward cases: Bangla, commas and quotes in
/// the model description, an unknown ROC-AUC, values without a short decimal form.
enum SummaryTestRows {
    static let rows: [StageSummaryRow] = [
        StageSummaryRow(stage: "baseline", model: "bert 4×256 (teacher-small)", accuracy: 0.8812, precision: 0.8533,
                        recall: 0.7912, f1: 0.8211, macroF1: 0.8642, rocAUC: 0.9377, threshold: 0.45,
                        parameters: 3_412_481, nonZeroParameters: 3_412_481, sizeMB: 13.02, latencyMsBatch1: 2.91,
                        latencyMsBatch32: 41.7, compressionRatio: 1),
        StageSummaryRow(stage: "distill", model: "ছাত্র মডেল, \"student-small\"", accuracy: 0.1 + 0.2, precision: 0.85,
                        recall: 0.78, f1: 0.81, macroF1: 0.8511, rocAUC: nil, threshold: 0.4137,
                        parameters: 1_204_225, nonZeroParameters: 1_204_225, sizeMB: 4.6, latencyMsBatch1: 1.2,
                        latencyMsBatch32: 15.25, compressionRatio: 13.02 / 4.6),
        StageSummaryRow(stage: "quantize_int4", model: "student, pruned 60%, int4 g32", accuracy: 0.87, precision: 0.84,
                        recall: 0.77, f1: 0.80, macroF1: 0.8420, rocAUC: 0.93, threshold: 0.5,
                        parameters: 1_204_225, nonZeroParameters: 481_690, sizeMB: 0.61, latencyMsBatch1: 0.9,
                        latencyMsBatch32: 9.5, compressionRatio: 21.3),
    ]
}

@Suite("Pipeline summary CSV")
struct StageSummaryTests {
    static func folder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("summary-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    @Test("a summary written to pipeline_summary_<tag>.csv reads back to the same rows, value for value")
    func roundTrip() throws {
        let folder = try Self.folder()
        let url = folder.appendingPathComponent(PipelineSummary.fileName(tag: "baseline_kd_prune_quant"))
        #expect(url.lastPathComponent == "pipeline_summary_baseline_kd_prune_quant.csv")
        let summary = PipelineSummary(rows: SummaryTestRows.rows)
        try summary.write(to: url)
        #expect(try PipelineSummary.read(from: url) == summary)
        // Only the final file is left: the temporary one was renamed over it.
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == [url.lastPathComponent])
        let text = try String(contentsOf: url, encoding: .utf8)
        #expect(text.hasPrefix("stage,model,accuracy,precision,recall,f1,macro_f1,roc_auc,threshold,parameters,nonzero_parameters,size_mb,latency_ms_batch1,latency_ms_batch32,compression_ratio\n"))
        #expect(text.contains("distill,\"ছাত্র মডেল, \"\"student-small\"\"\",0.30000000000000004,"))
        #expect(text.contains(",0.8511,,0.4137,"))
    }

    @Test("recording a stage again replaces its row, so a resumed run lists every stage once")
    func recordReplaces() throws {
        var summary = PipelineSummary()
        summary.record(SummaryTestRows.rows[0])
        summary.record(SummaryTestRows.rows[1])
        var again = SummaryTestRows.rows[0]
        again.macroF1 = 0.9
        summary.record(again)
        #expect(summary.rows.map(\.stage) == ["baseline", "distill"])
        #expect(summary.rows[0].macroF1 == 0.9)
    }

    @Test("a row made from a stage's metrics and file sizes has its size in MB and its ratio to the teacher")
    func fromMetrics() throws {
        let metrics = ClassificationMetrics(probabilities: [0.9, 0.2, 0.7, 0.4], labels: [1, 0, 0, 1], threshold: 0.5)
        let row = StageSummaryRow(stage: "prune_wanda", model: "m", metrics: metrics, parameters: 10, nonZeroParameters: 5,
                                  sizeBytes: 3 * 1_048_576, teacherSizeBytes: 12 * 1_048_576,
                                  latencyMsBatch1: 1, latencyMsBatch32: 8)
        #expect(row.sizeMB == 3)
        #expect(row.compressionRatio == 4)
        #expect(row.accuracy == 0.5)
        #expect(row.macroF1 == metrics.macroF1)
        #expect(row.rocAUC == metrics.rocAUC)
        #expect(row.threshold == 0.5)
    }

    @Test("a damaged summary is refused in one line naming the file, row and column")
    func damaged() throws {
        let header = PipelineSummary.columns.map(\.name).joined(separator: ",")
        let good = try PipelineSummary(rows: [SummaryTestRows.rows[0]]).csvText()
        let badNumber = good.replacingOccurrences(of: ",0.8642,", with: ",high,")
        #expect(throws: CheckpointError.self) { try PipelineSummary.parse(csv: badNumber, file: "s.csv") }
        do { _ = try PipelineSummary.parse(csv: badNumber, file: "s.csv") } catch {
            #expect("\(error)" == "s.csv: row 2, column 'macro_f1': 'high' is not a number")
        }
        let missing = header.replacingOccurrences(of: ",latency_ms_batch32", with: "") + "\n"
        do { _ = try PipelineSummary.parse(csv: missing, file: "s.csv"); Issue.record("accepted a header without latency_ms_batch32") } catch {
            #expect("\(error)" == "s.csv: the pipeline summary has no 'latency_ms_batch32' column")
        }
        let negative = good.replacingOccurrences(of: ",3412481,", with: ",-3,")
        do { _ = try PipelineSummary.parse(csv: negative, file: "s.csv"); Issue.record("accepted a negative count") } catch {
            #expect("\(error)" == "s.csv: row 2, column 'parameters': '-3' is not a count")
        }
    }
}
