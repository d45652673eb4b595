import Foundation
import Testing
@testable import Host

@Suite("folds_<tag>.csv")
struct FoldAssignmentTests {
    @Test("every kept row is listed once, by its CSV data row, with the fold whose validation split holds it")
    func rowsAndFolds() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        // Data row 3 has an unknown label and is skipped: the rows after it keep their CSV numbers.
        var lines = ["Comments,HateSpeech"]
        for index in 1...12 { lines.append("comment \(index),\(index == 3 ? "maybe" : String(index % 2))") }
        var options = CommentCSVOptions()
        options.onBadRows = .skip
        let dataset = try CommentDataset.load(bytes: Data(lines.joined(separator: "\n").utf8), file: "c.csv", options: options)
        let (folds, _) = try Folds.kFold(texts: dataset.texts, labels: dataset.labels, k: 3, stratification: .binary, seed: 42)
        let url = folder.appendingPathComponent("folds_t.csv")
        try FoldAssignment.write(folds: folds, dataset: dataset, to: url)
        let text = try String(contentsOf: url, encoding: .utf8)
        let rows = text.split(separator: "\n").dropFirst().map { $0.split(separator: ",").compactMap { Int($0) } }
        #expect(text.hasPrefix("row,fold\n"))
        #expect(rows.map { $0[0] } == [1, 2] + Array(4...12))
        for (index, split) in folds.enumerated() {
            let listed = rows.filter { $0[1] == index + 1 }.map { $0[0] }
            #expect(listed == split.validation.map { dataset.sourceRows[$0] })
        }
        // The same data and seed give the same file.
        let again = try Folds.kFold(texts: dataset.texts, labels: dataset.labels, k: 3, stratification: .binary, seed: 42)
        try FoldAssignment.write(folds: again.splits, dataset: dataset, to: url)
        #expect(try String(contentsOf: url, encoding: .utf8) == text)
    }
}
