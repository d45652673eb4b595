import Foundation
import Testing
@testable import Host

@Suite("Reading comment CSV files")
struct CommentDatasetTests {
    private func load(_ text: String, _ configure: (inout CommentCSVOptions) -> Void = { _ in }) throws -> CommentDataset {
        var options = CommentCSVOptions()
        configure(&options)
        return try CommentDataset.load(bytes: Data(text.utf8), file: "comments.csv", options: options)
    }

    private func error(_ text: String, _ configure: (inout CommentCSVOptions) -> Void = { _ in }) -> DatasetError? {
        var options = CommentCSVOptions()
        configure(&options)
        do {
            _ = try CommentDataset.load(bytes: Data(text.utf8), file: "comments.csv", options: options)
            return nil
        } catch let error as DatasetError { return error } catch { return nil }
    }

    @Test("a plain file reads texts, labels and 1-based source rows")
    func plainFile() throws {
        let data = try load("Comments,HateSpeech\nভালো খবর,0\nখারাপ কথা,1\n")
        #expect(data.texts == ["ভালো খবর", "খারাপ কথা"])
        #expect(data.labels == [0, 1])
        #expect(data.sourceRows == [1, 2])
    }

    @Test("a UTF-8 byte-order mark before the header is ignored")
    func byteOrderMark() throws {
        var bytes = Data([0xEF, 0xBB, 0xBF])
        bytes.append(Data("Comments,HateSpeech\nএক,1\n".utf8))
        let data = try CommentDataset.load(bytes: bytes, file: "bom.csv")
        #expect(data.texts == ["এক"])
        #expect(data.labels == [1])
    }

    @Test("CRLF line endings are read like LF and leave no carriage return in the fields")
    func crlf() throws {
        let data = try load("Comments,HateSpeech\r\nএক,1\r\nদুই,0\r\n")
        #expect(data.texts == ["এক", "দুই"])
        #expect(data.labels == [1, 0])
    }

    @Test("a quoted field keeps its commas, doubled quotes and newlines, and later rows keep their line numbers")
    func quotedNewline() throws {
        let text = "Comments,HateSpeech\n\"line one\nline two, \"\"quoted\"\"\",1\n,0\nশেষ,0\n"
        let error = error(text)
        // The third record (file line 4) has an empty text: its line number counts the embedded newline.
        #expect(error?.description == "comments.csv: 1 bad row: row 2 (line 4): empty text in 'Comments'; fix them or pass --on_bad_rows skip")
        let data = try load(text) { $0.onBadRows = .skip }
        #expect(data.texts == ["line one\nline two, \"quoted\"", "শেষ"])
        #expect(data.sourceRows == [1, 3])
        #expect(data.skippedRows == [BadRow(row: 2, line: 4, problem: "empty text in 'Comments'")])
    }

    @Test("a missing column is refused in one line that names the file and lists the columns it has")
    func missingColumn() {
        let error = error("text,label\nএক,1\n")
        #expect(error?.description == "comments.csv: no column 'Comments' (--text_column); the header has 'text', 'label'")
        #expect(error.map { !$0.description.contains("\n") } == true)
    }

    @Test("other column names are chosen by header name, in any position")
    func otherColumns() throws {
        let data = try load("id,label,text\n7,1,এক\n8,0,দুই\n") {
            $0.textColumn = "text"
            $0.labelColumn = "label"
        }
        #expect(data.texts == ["এক", "দুই"])
        #expect(data.labels == [1, 0])
    }

    @Test("a row with a missing field is reported with its row and line number")
    func missingField() {
        let error = error("Comments,HateSpeech\nএক,1\nদুই\nতিন,0\n")
        #expect(error?.description == "comments.csv: 1 bad row: row 2 (line 3): missing field 'HateSpeech' (1 of 2 fields); fix them or pass --on_bad_rows skip")
    }

    @Test("an unknown label is reported, naming the value and what was expected")
    func unknownLabel() {
        let error = error("Comments,HateSpeech\nএক,1\nদুই,maybe\n")
        #expect(error?.description == "comments.csv: 1 bad row: row 2 (line 3): unknown label 'maybe' in 'HateSpeech' (expected 0/1 or true/false); fix them or pass --on_bad_rows skip")
    }

    @Test("labels may be true/false in any case, or 0.0/1.0")
    func booleanLabels() throws {
        let data = try load("Comments,HateSpeech\na,TRUE\nb,false\nc, True \nd,0.0\ne,1.0\n")
        #expect(data.labels == [1, 0, 1, 0, 1])
    }

    @Test("a named positive label with a named negative refuses every other value")
    func namedLabelsStrict() throws {
        let data = try load("Comments,HateSpeech\na,hate\nb,Normal\nc,HATE\n") {
            $0.labels = .named(positive: "hate", negative: "normal")
        }
        #expect(data.labels == [1, 0, 1])
        let error = error("Comments,HateSpeech\na,hate\nb,nromal\n") { $0.labels = .named(positive: "hate", negative: "normal") }
        #expect(error?.description.contains("row 2 (line 3): unknown label 'nromal' in 'HateSpeech' (expected 'hate' or 'normal')") == true)
    }

    @Test("a named positive label alone makes every other non-empty value negative")
    func namedLabelsLoose() throws {
        let data = try load("Comments,HateSpeech\na,hate\nb,normal\nc,spam\n") {
            $0.labels = .named(positive: "hate", negative: nil)
        }
        #expect(data.labels == [1, 0, 0])
    }

    @Test("invalid UTF-8 is found in its own row; the rows around it still read")
    func invalidUTF8() throws {
        var bytes = Data("Comments,HateSpeech\nভালো,0\n".utf8)
        bytes.append(contentsOf: [0x61, 0xE0, 0xA6, 0x2C, 0x31, 0x0A])   // "a", truncated sequence, ",1\n"
        bytes.append(Data("খারাপ,1\nbad \u{FFFD} is fine when written as UTF-8,0\n".utf8))
        bytes.append(contentsOf: [0xFF, 0x2C, 0x30, 0x0A])               // 0xFF is never UTF-8
        let failed = #expect(throws: DatasetError.self) { try CommentDataset.load(bytes: bytes, file: "mixed.csv") }
        #expect(failed?.description == "mixed.csv: 2 bad rows: row 2 (line 3): invalid UTF-8 bytes; row 5 (line 6): invalid UTF-8 bytes; fix them or pass --on_bad_rows skip")

        var options = CommentCSVOptions()
        options.onBadRows = .skip
        let data = try CommentDataset.load(bytes: bytes, file: "mixed.csv", options: options)
        #expect(data.texts == ["ভালো", "খারাপ", "bad \u{FFFD} is fine when written as UTF-8"])
        #expect(data.sourceRows == [1, 3, 4])
        #expect(data.skippedRows.map(\.row) == [2, 5])
    }

    @Test("empty and whitespace-only texts are bad rows")
    func emptyText() {
        let error = error("Comments,HateSpeech\n,1\n\"  \n \",0\nঠিক,0\n")
        #expect(error?.description == "comments.csv: 2 bad rows: row 1 (line 2): empty text in 'Comments'; row 2 (line 3): empty text in 'Comments'; fix them or pass --on_bad_rows skip")
    }

    @Test("blank lines are skipped without counting as rows")
    func blankLines() throws {
        let data = try load("Comments,HateSpeech\n\nএক,1\n\nদুই,0\n")
        #expect(data.texts == ["এক", "দুই"])
        #expect(data.sourceRows == [1, 2])
    }

    @Test("a record with more fields than the header is bad (an unquoted comma)")
    func extraFields() {
        let error = error("Comments,HateSpeech\nএক, দুই,1\n")
        #expect(error?.description.contains("row 1 (line 2): 3 fields but the header has 2 (an unquoted comma?)") == true)
    }

    @Test("a long list of bad rows is cut after the first five")
    func manyBadRows() {
        let text = "Comments,HateSpeech\n" + (1...8).map { "t\($0),x\n" }.joined()
        let error = error(text)
        #expect(error?.description.hasPrefix("comments.csv: 8 bad rows: row 1 (line 2)") == true)
        #expect(error?.description.contains("… and 3 more") == true)
    }

    @Test("a file with only bad rows, skipped, is still an error: there is nothing to train on")
    func nothingLeft() {
        let error = error("Comments,HateSpeech\n,1\n") { $0.onBadRows = .skip }
        #expect(error?.description == "comments.csv: no usable rows (1 records read)")
    }

    @Test("data_fraction keeps each class's share, is seeded, and keeps file order")
    func dataFraction() throws {
        let text = "Comments,HateSpeech\n" + (0..<100).map { "c\($0),\($0 < 30 ? 1 : 0)\n" }.joined()
        let a = try load(text) { $0.dataFraction = 0.2; $0.seed = 7 }
        let b = try load(text) { $0.dataFraction = 0.2; $0.seed = 7 }
        let c = try load(text) { $0.dataFraction = 0.2; $0.seed = 8 }
        #expect(a.count == 20)
        #expect(a.positives == 6)
        #expect(a.texts == b.texts)
        #expect(a.texts != c.texts)
        #expect(a.sourceRows == a.sourceRows.sorted())
        #expect(error(text) { $0.dataFraction = 0 }?.description == "--data_fraction: must lie in (0, 1], got 0.0")
    }

    @Test("the bundled data set reads completely: 16,407 comments, 8,326 hate")
    func bundledData() throws {
        let url = Fixtures.root.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("data/HateSpeech.csv")
        let data = try CommentDataset.load(contentsOf: url)
        #expect(data.count == 16_407)
        #expect(data.positives == 8_326)
    }

    @Test("texts without labels read for prediction")
    func unlabeled() throws {
        let table = try CSVTable(bytes: Data("Comments\nএক\n\n\"দুই\nতিন\"\n".utf8), file: "input.csv")
        let texts = try CommentTexts.load(table: table, options: CommentCSVOptions(), logger: nil)
        #expect(texts.texts == ["এক", "দুই\nতিন"])
        #expect(texts.sourceRows == [1, 2])
    }

    /// Found by the csv fuzz harness: a header whose quoted names hold newlines and NUL bytes.
    static let fuzzedHeader: [UInt8] = [
        0x69, 0x64, 0x2C, 0x43, 0x6F, 0x6D, 0x6D, 0x00, 0x00, 0x31, 0x08, 0x1A, 0x32, 0x2C, 0x22, 0x22,
        0x22, 0x71, 0x22, 0xE0, 0xA6, 0xBF, 0x20, 0xE0, 0xA6, 0x97, 0xE0, 0xA6, 0xBE, 0xE0, 0xA6, 0xA8,
        0x20, 0xE0, 0xA6, 0x97, 0xE0, 0xA6, 0xBE, 0xE0, 0xA6, 0x87, 0x2C, 0x30, 0x0A, 0x22, 0x22, 0x22,
        0x2C, 0x2C, 0x48, 0x61, 0x74, 0x65, 0x53, 0x70, 0x65, 0x66, 0x61, 0x6C, 0x73, 0x65, 0x2C, 0x0A,
        0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFE, 0x33, 0x2C, 0x2C, 0x30, 0x2C, 0x79, 0x0A,
    ]

    @Test("column names and labels holding newlines or control characters still give a one-line error, escaped")
    func controlCharactersInErrors() throws {
        for options in [CommentCSVOptions()] {
            do {
                _ = try CommentDataset.load(bytes: Data(Self.fuzzedHeader), file: "fuzzed.csv", options: options)
                Issue.record("the fuzzed file was accepted")
            } catch {
                let message = "\(error)"
                #expect(!message.contains("\n") && !message.contains("\u{0}") && message.hasPrefix("fuzzed.csv: "), "\(message)")
            }
        }
        let labels = Data("Comments,HateSpeech\nএক,\"maybe\nnot\"\n".utf8)
        do {
            _ = try CommentDataset.load(bytes: labels, file: "labels.csv")
            Issue.record("a label with a newline was accepted")
        } catch {
            let message = "\(error)"
            #expect(!message.contains("\n") && message.contains("maybe\\nnot"), "\(message)")
        }
        #expect(oneLine("a\nb\r\tc\u{1B}d\u{2028}") == "a\\nb\\r\\tc\\u{1B}d\\u{2028}")
    }
}
