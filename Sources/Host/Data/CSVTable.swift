import CSV
import Foundation

/// A problem with a data file or a data option. The description is one line that names the file (or
/// the option) and what is wrong, ready to print as the CLI's error.
struct DatasetError: Error, CustomStringConvertible, Equatable {
    let file: String
    let problem: String
    var description: String { oneLine("\(file): \(problem)") }
}

/// A CSV file parsed into records, each remembering where it came from.
///
/// Parsing is the CSV library's (RFC 4180: quoted fields, doubled quotes, embedded newlines, CRLF or
/// LF). This type adds what the library leaves out and a user needs: the UTF-8 byte-order mark is
/// dropped; invalid UTF-8 is found *per record* instead of ending the whole file silently (the
/// library's stream reader stops at the first bad byte); and every record carries its 1-based row
/// number (header not counted, blank lines not counted) and the file line where it starts, so an error
/// can point at the place in an editor.
struct CSVTable: Sendable {
    struct Record: Sendable {
        /// The fields, in header order. May be fewer or more than the header has: the caller decides.
        let fields: [String]
        /// 1-based number among the data records (the header and blank lines are not counted).
        let row: Int
        /// 1-based line of the file where the record starts (the header is line 1).
        let line: Int
        /// 1-based line where the record ends (larger than `line` when a quoted field holds newlines).
        let lastLine: Int
        /// The record's bytes held at least one invalid UTF-8 sequence (replaced by U+FFFD in `fields`).
        let hasInvalidUTF8: Bool
    }

    /// Column names as written in the first line, with surrounding whitespace removed.
    let header: [String]
    let records: [Record]
    /// The path as the user gave it, for messages.
    let file: String

    init(contentsOf url: URL) throws {
        let bytes: Data
        do { bytes = try InputFile.read(url) } catch {
            throw DatasetError(file: url.path, problem: "cannot read the file (\(error.localizedDescription))")
        }
        try self.init(bytes: bytes, file: url.path)
    }

    init(bytes: Data, file: String) throws {
        self.file = file
        var body = bytes[...]
        if body.starts(with: [0xEF, 0xBB, 0xBF]) { body = body.dropFirst(3) }
        guard !body.isEmpty else { throw DatasetError(file: file, problem: "the file is empty (no header line)") }

        let (text, invalidLines) = Self.decodeReportingInvalidLines(body)

        let reader: CSVReader
        do { reader = try CSVReader(string: text, hasHeaderRow: true) } catch {
            throw DatasetError(file: file, problem: "cannot read the header line (\(error))")
        }
        let header = (reader.headerRow ?? []).map { $0.trimmingCharacters(in: .whitespaces) }
        self.header = header

        // Lines are counted the way the parser ends records: LF, CRLF or a lone CR.
        var nextLine = 1 + Self.lineBreaks(in: reader.headerRow ?? []) + 1
        var rowNumber = 0
        var records: [Record] = []
        while let fields = reader.next() {
            let line = nextLine
            let lastLine = line + Self.lineBreaks(in: fields)
            nextLine = lastLine + 1
            // A blank line parses as one empty field; spreadsheets and pandas skip those, so do we.
            if fields.count == 1 && fields[0].isEmpty { continue }
            rowNumber += 1
            let invalid = invalidLines.contains { (line...lastLine).contains($0) }
            records.append(Record(fields: fields, row: rowNumber, line: line, lastLine: lastLine, hasInvalidUTF8: invalid))
        }
        if invalidLines.contains(1) {
            throw DatasetError(file: file, problem: "line 1 (the header) is not valid UTF-8; save the file as UTF-8")
        }
        self.records = records
    }

    /// The index of a column by its header name, or an error that lists the columns the file has.
    func column(named name: String, option: String) throws -> Int {
        let matches = header.indices.filter { header[$0] == name }
        if matches.count > 1 {
            throw DatasetError(file: file, problem: "column '\(name)' appears \(matches.count) times in the header; rename one")
        }
        guard let index = matches.first else {
            let available = header.map { "'\($0)'" }.joined(separator: ", ")
            throw DatasetError(file: file, problem: "no column '\(name)' (\(option)); the header has \(available)")
        }
        return index
    }

    /// Decodes UTF-8, replacing each invalid sequence by U+FFFD (so the parser still sees every quote,
    /// comma and newline), and returns the 1-based lines where invalid sequences were found. The
    /// decoder never swallows an ASCII byte into an invalid sequence, so line structure is kept.
    private static func decodeReportingInvalidLines(_ bytes: Data.SubSequence) -> (String, Set<Int>) {
        if let text = String(bytes: bytes, encoding: .utf8) { return (text, []) }
        var scalars = String.UnicodeScalarView()
        var invalidLines = Set<Int>()
        var line = 1
        var previousWasCR = false
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        decoding: while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar):
                if scalar == "\n" {
                    if !previousWasCR { line += 1 }
                } else if scalar == "\r" {
                    line += 1
                }
                previousWasCR = scalar == "\r"
                scalars.append(scalar)
            case .error:
                invalidLines.insert(line)
                previousWasCR = false
                scalars.append("\u{FFFD}")
            case .emptyInput:
                break decoding
            }
        }
        return (String(scalars), invalidLines)
    }

    /// Line breaks inside parsed fields: LF, CRLF (one break) or a lone CR.
    private static func lineBreaks(in fields: [String]) -> Int {
        var count = 0
        for field in fields {
            var previousWasCR = false
            for scalar in field.unicodeScalars {
                if scalar == "\n" {
                    if !previousWasCR { count += 1 }
                } else if scalar == "\r" {
                    count += 1
                }
                previousWasCR = scalar == "\r"
            }
        }
        return count
    }
}
