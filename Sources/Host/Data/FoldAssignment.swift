import Foundation

/// `folds_<tag>.csv`: which fold's validation split holds each row, so a split can be reproduced,
/// checked or reused elsewhere. `row` is the 1-based data row of the CSV (header not counted), as
/// error messages count rows; `fold` counts from 1, as the fold summary does. Rows dropped by
/// `--on_bad_rows skip` or left out by `--data_fraction` are not listed.
enum FoldAssignment {
    static let header = ["row", "fold"]

    /// (row, fold) pairs in row order.
    static func rows(folds: [FoldSplit], sourceRows: [Int]) -> [(row: Int, fold: Int)] {
        var fold = [Int](repeating: 0, count: sourceRows.count)
        for (index, split) in folds.enumerated() {
            for row in split.validation where sourceRows.indices.contains(row) { fold[row] = index + 1 }
        }
        return zip(sourceRows, fold).filter { $0.1 > 0 }.map { (row: $0.0, fold: $0.1) }.sorted { $0.row < $1.row }
    }

    static func write(folds: [FoldSplit], dataset: CommentDataset, to url: URL) throws {
        let rows = rows(folds: folds, sourceRows: dataset.sourceRows).map { [String($0.row), String($0.fold)] }
        try CSVOutput.write(header: header, rows: rows, to: url)
    }
}
