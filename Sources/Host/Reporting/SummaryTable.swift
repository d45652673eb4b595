import Foundation

/// How many terminal columns a string takes, the way terminals and glibc's `wcwidth` count them:
/// combining marks (Mn, Me) and format characters take none, East Asian wide and fullwidth characters
/// and emoji take two, everything else one. Bangla matters here: a vowel sign such as ি (U+09BF, a
/// spacing mark) takes a column, the virama ্ (U+09CD) and ৃ (U+09C3) take none — so neither
/// `String.count` (grapheme clusters) nor the number of scalars gives the width.
enum DisplayWidth {
    static func of(_ text: String) -> Int {
        text.reduce(0) { $0 + of($1) }
    }

    static func of(_ character: Character) -> Int {
        let scalars = character.unicodeScalars
        guard let first = scalars.first else { return 0 }
        // Emoji are drawn two columns wide however many scalars build them (ZWJ sequences, U+FE0F).
        if first.properties.isEmojiPresentation || (scalars.contains("\u{FE0F}") && first.properties.isEmoji) {
            return 2
        }
        return scalars.reduce(0) { $0 + of($1) }
    }

    static func of(_ scalar: Unicode.Scalar) -> Int {
        switch scalar.properties.generalCategory {
        case .nonspacingMark, .enclosingMark, .format, .control: return 0
        default: break
        }
        switch scalar.value {
        case 0x1160...0x11FF: return 0  // Hangul medial vowels and final consonants join the syllable
        case 0x1100...0x115F, 0x2E80...0x303E, 0x3041...0x33FF, 0x3400...0x4DBF, 0x4E00...0x9FFF,
             0xA000...0xA4CF, 0xAC00...0xD7A3, 0xF900...0xFAFF, 0xFE30...0xFE4F, 0xFF00...0xFF60,
             0xFFE0...0xFFE6, 0x20000...0x3FFFD:
            return 2
        default:
            return 1
        }
    }

    /// `text` padded with spaces to `width` columns, on the right (left-aligned) or the left.
    static func pad(_ text: String, to width: Int, alignment: TextTable.Alignment) -> String {
        let padding = String(repeating: " ", count: max(0, width - of(text)))
        return alignment == .left ? text + padding : padding + text
    }
}

/// A small aligned text table for the terminal: a header, a rule, and rows, columns two spaces
/// apart and aligned by display width, so Bangla and CJK text line up. The pipeline summary and the
/// fold summary both print through it.
struct TextTable: Sendable {
    enum Alignment: Sendable { case left, right }

    struct Column: Sendable {
        var title: String
        var alignment: Alignment
        init(_ title: String, _ alignment: Alignment = .left) {
            self.title = title
            self.alignment = alignment
        }
    }

    var columns: [Column]
    var rows: [[String]] = []

    init(columns: [Column], rows: [[String]] = []) {
        self.columns = columns
        self.rows = rows
    }

    /// A row with fewer cells than columns is padded with empty cells; extra cells are an error in the
    /// caller, so they are refused.
    mutating func append(_ row: [String]) {
        precondition(row.count <= columns.count, "TextTable: a row of \(row.count) cells for \(columns.count) columns")
        rows.append(row)
    }

    /// The table as lines joined by newlines (no trailing newline).
    func render() -> String {
        // Line breaks and tabs inside a cell would break the grid.
        let body = rows.map { row in
            (0..<columns.count).map { index in
                index < row.count ? row[index].replacingOccurrences(of: "\r\n", with: " ")
                    .replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "\t", with: " ") : ""
            }
        }
        let widths = columns.indices.map { index in
            body.reduce(DisplayWidth.of(columns[index].title)) { max($0, DisplayWidth.of($1[index])) }
        }
        func line(_ cells: [String]) -> String {
            zip(cells, columns.indices).map { cell, index in
                DisplayWidth.pad(cell, to: widths[index], alignment: columns[index].alignment)
            }.joined(separator: "  ")
        }
        let rule = widths.map { String(repeating: "─", count: $0) }.joined(separator: "  ")
        return ([line(columns.map(\.title)), rule] + body.map(line)).joined(separator: "\n")
    }
}

/// The pipeline summary as the end of `sankshep run` prints it, and the cell texts the HTML report
/// shows.
enum SummaryTable {
    static let columns: [TextTable.Column] = [
        .init("Stage"), .init("Model"), .init("Accuracy", .right), .init("Precision", .right),
        .init("Recall", .right), .init("F1", .right), .init("Macro-F1", .right), .init("ROC-AUC", .right),
        .init("Threshold", .right), .init("Parameters", .right), .init("Non-zero", .right),
        .init("Size MB", .right), .init("ms @1", .right), .init("ms @32", .right), .init("Ratio", .right),
    ]

    static func render(_ rows: [StageSummaryRow]) -> String {
        TextTable(columns: columns, rows: rows.map(cells)).render()
    }

    /// One row's cells, formatted for people: metrics to 4 decimals, counts grouped by thousands,
    /// the compression ratio as `12.3×`.
    static func cells(_ row: StageSummaryRow) -> [String] {
        [row.stage, row.model,
         fixed(row.accuracy, 4), fixed(row.precision, 4), fixed(row.recall, 4), fixed(row.f1, 4),
         fixed(row.macroF1, 4), row.rocAUC.map { fixed($0, 4) } ?? "–", fixed(row.threshold, 3),
         grouped(row.parameters), grouped(row.nonZeroParameters), fixed(row.sizeMB, 2),
         fixed(row.latencyMsBatch1, 2), fixed(row.latencyMsBatch32, 2), fixed(row.compressionRatio, 1) + "×"]
    }

    static func fixed(_ value: Double, _ digits: Int) -> String {
        value.isFinite ? String(format: "%.\(digits)f", value) : "–"
    }

    /// 1234567 → "1,234,567", independent of the locale.
    static func grouped(_ value: Int) -> String {
        let digits = String(value.magnitude)
        var out = ""
        for (index, digit) in digits.enumerated() {
            if index > 0, (digits.count - index) % 3 == 0 { out.append(",") }
            out.append(digit)
        }
        return (value < 0 ? "-" : "") + out
    }
}
