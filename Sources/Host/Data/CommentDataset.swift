import Foundation
import Logging

/// How the label column is read into 0 (not hate) / 1 (hate).
enum LabelRule: Sendable, Equatable {
    /// `0`/`1` (also `0.0`/`1.0`, as pandas writes an integer column that once held a NaN) or
    /// `true`/`false` in any case.
    case binary
    /// Named classes, compared case-insensitively after trimming spaces (`--positive_label hate`).
    /// With `negative` given, only that value is negative and any other value is a bad row (a typo
    /// is caught). Without it, every other non-empty value is negative; the loader logs the distinct
    /// values it took as negative so a typo is still visible.
    case named(positive: String, negative: String?)
}

/// What to do with rows that cannot be used (`--on_bad_rows`).
enum BadRowPolicy: String, Sendable, CaseIterable {
    /// Stop with one error that lists the first few bad rows.
    case fail
    /// Drop them, log a warning with the first few, and keep them in `CommentDataset.skippedRows`.
    case skip
}

/// A record that could not be used, with where it is and why.
struct BadRow: Sendable, Equatable, CustomStringConvertible {
    /// 1-based data row (header and blank lines not counted).
    let row: Int
    /// 1-based file line where the record starts.
    let line: Int
    let problem: String
    var description: String { "row \(row) (line \(line)): \(problem)" }
}

/// How to read a comments CSV. Defaults are the bundled data's and the seed framework's.
struct CommentCSVOptions: Sendable {
    var textColumn = "Comments"
    var labelColumn = "HateSpeech"
    var labels: LabelRule = .binary
    var onBadRows: BadRowPolicy = .fail
    /// Fraction of rows kept, stratified by label (`--data_fraction`), in (0, 1].
    var dataFraction = 1.0
    /// Seed of the subsample (`--seed`).
    var seed: UInt64 = 42
    /// How many bad rows an error or warning shows before "… and N more".
    var badRowsShown = 5

    init() {}
}

/// Labelled comments read from a CSV file: the input of every stage.
struct CommentDataset: Sendable {
    var texts: [String]
    /// 1 = hate speech, 0 = not.
    var labels: [Int]
    /// For each kept comment, its 1-based data row in the source file (header not counted), so
    /// predictions and errors can point back at the file.
    var sourceRows: [Int]
    /// Rows dropped under `BadRowPolicy.skip`.
    var skippedRows: [BadRow] = []

    var count: Int { texts.count }
    var positives: Int { labels.reduce(0, +) }
    var negatives: Int { count - positives }

    init(texts: [String], labels: [Int], sourceRows: [Int]? = nil, skippedRows: [BadRow] = []) {
        precondition(texts.count == labels.count, "CommentDataset: \(texts.count) texts but \(labels.count) labels")
        self.texts = texts
        self.labels = labels
        self.sourceRows = sourceRows ?? Array(1..<(texts.count + 1))
        self.skippedRows = skippedRows
    }

    /// The comments at `indices`, in that order (a fold's training or validation part).
    func subset(_ indices: [Int]) -> CommentDataset {
        CommentDataset(texts: indices.map { texts[$0] }, labels: indices.map { labels[$0] },
                       sourceRows: indices.map { sourceRows[$0] })
    }

    /// Reads and validates a comments CSV. See `CommentCSVOptions` for the choices; throws a
    /// `DatasetError` for a missing column, a bad option, or (policy `.fail`) any bad row.
    static func load(contentsOf url: URL, options: CommentCSVOptions = CommentCSVOptions(),
                     logger: Logger? = nil) throws -> CommentDataset {
        try load(table: CSVTable(contentsOf: url), options: options, logger: logger)
    }

    /// The same from bytes already in memory; `file` names them in messages.
    static func load(bytes: Data, file: String, options: CommentCSVOptions = CommentCSVOptions(),
                     logger: Logger? = nil) throws -> CommentDataset {
        try load(table: CSVTable(bytes: bytes, file: file), options: options, logger: logger)
    }

    static func load(table: CSVTable, options: CommentCSVOptions, logger: Logger?) throws -> CommentDataset {
        guard options.dataFraction > 0 && options.dataFraction <= 1 else {
            throw DatasetError(file: "--data_fraction", problem: "must lie in (0, 1], got \(options.dataFraction)")
        }
        let textIndex = try table.column(named: options.textColumn, option: "--text_column")
        let labelIndex = try table.column(named: options.labelColumn, option: "--label_column")
        let labelReader = LabelReader(rule: options.labels)

        var texts: [String] = [], labels: [Int] = [], rows: [Int] = []
        var bad: [BadRow] = []
        for record in table.records {
            if let problem = problem(in: record, header: table.header, textIndex: textIndex, labelIndex: labelIndex,
                                     options: options) {
                bad.append(BadRow(row: record.row, line: record.line, problem: problem))
                continue
            }
            let rawLabel = record.fields[labelIndex]
            guard let label = labelReader.read(rawLabel) else {
                bad.append(BadRow(row: record.row, line: record.line,
                                  problem: "unknown label '\(rawLabel)' in '\(options.labelColumn)' (\(labelReader.expected))"))
                continue
            }
            texts.append(record.fields[textIndex])
            labels.append(label)
            rows.append(record.row)
        }

        if !bad.isEmpty {
            let listed = describe(bad, shown: options.badRowsShown)
            switch options.onBadRows {
            case .fail:
                throw DatasetError(file: table.file, problem: "\(bad.count) bad row\(bad.count == 1 ? "" : "s"): \(listed); fix them or pass --on_bad_rows skip")
            case .skip:
                logger?.warning("\(table.file): skipped \(bad.count) bad row\(bad.count == 1 ? "" : "s"): \(listed)")
            }
        }
        guard !texts.isEmpty else {
            throw DatasetError(file: table.file, problem: "no usable rows (\(table.records.count) records read)")
        }
        if case .named(_, nil) = options.labels, let logger {
            // "Anything else is negative" hides typos; show what was taken as negative.
            var negativeValues = Set<String>()
            for record in table.records where labelIndex < record.fields.count {
                let value = record.fields[labelIndex].trimmingCharacters(in: .whitespaces)
                if labelReader.read(value) == 0 { negativeValues.insert(value) }
            }
            logger.info("\(table.file): labels read as negative: \(negativeValues.sorted().map { "'\($0)'" }.joined(separator: ", "))")
        }

        var dataset = CommentDataset(texts: texts, labels: labels, sourceRows: rows, skippedRows: bad)
        if options.dataFraction < 1 {
            dataset = dataset.stratifiedSample(fraction: options.dataFraction, seed: options.seed)
            dataset.skippedRows = bad
        }
        return dataset
    }

    /// Keeps `fraction` of each class (at least one comment of every class present), chosen by `seed`,
    /// in file order.
    func stratifiedSample(fraction: Double, seed: UInt64) -> CommentDataset {
        var random = SplitMix64(seed: seed, stream: .subsample)
        var kept: [Int] = []
        for label in [0, 1] {
            let members = labels.indices.filter { labels[$0] == label }
            guard !members.isEmpty else { continue }
            let keep = max(1, Int((Double(members.count) * fraction).rounded()))
            kept += random.shuffled(members).prefix(keep)
        }
        return subset(kept.sorted())
    }

    /// Why a record cannot be used, or nil. The label's value is checked by the caller.
    fileprivate static func problem(in record: CSVTable.Record, header: [String], textIndex: Int, labelIndex: Int?,
                                    options: CommentCSVOptions) -> String? {
        if record.hasInvalidUTF8 {
            return "invalid UTF-8 bytes" + (record.lastLine > record.line ? " (record spans lines \(record.line)-\(record.lastLine))" : "")
        }
        if record.fields.count != header.count {
            let needed = max(textIndex, labelIndex ?? 0) + 1
            var problem: String
            if record.fields.count < needed {
                let missing = record.fields.count <= textIndex ? options.textColumn : options.labelColumn
                problem = "missing field '\(missing)' (\(record.fields.count) of \(header.count) fields)"
            } else {
                problem = "\(record.fields.count) fields but the header has \(header.count) (an unquoted comma?)"
            }
            if record.lastLine > record.line {
                problem += "; the record spans lines \(record.line)-\(record.lastLine) (an unclosed quote?)"
            }
            return problem
        }
        if record.fields[textIndex].trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            return "empty text in '\(options.textColumn)'"
        }
        if let labelIndex, record.fields[labelIndex].trimmingCharacters(in: .whitespaces).isEmpty {
            return "missing field '\(options.labelColumn)' (empty)"
        }
        return nil
    }

    fileprivate static func describe(_ bad: [BadRow], shown: Int) -> String {
        var text = bad.prefix(shown).map(\.description).joined(separator: "; ")
        if bad.count > shown { text += "; … and \(bad.count - shown) more" }
        return text
    }
}

/// Reads one label value under a `LabelRule`.
private struct LabelReader {
    let rule: LabelRule

    /// The accepted values, for an error message.
    var expected: String {
        switch rule {
        case .binary: "expected 0/1 or true/false"
        case .named(let positive, let negative?): "expected '\(positive)' or '\(negative)'"
        case .named(let positive, nil): "expected '\(positive)' or another non-empty value"
        }
    }

    func read(_ raw: String) -> Int? {
        let value = raw.trimmingCharacters(in: .whitespaces)
        switch rule {
        case .binary:
            switch value.lowercased() {
            case "1", "1.0", "true": return 1
            case "0", "0.0", "false": return 0
            default: return nil
            }
        case .named(let positive, let negative):
            if value.caseInsensitiveCompare(positive) == .orderedSame { return 1 }
            if let negative { return value.caseInsensitiveCompare(negative) == .orderedSame ? 0 : nil }
            return value.isEmpty ? nil : 0
        }
    }
}

/// Comments without labels, read from a CSV for `sankshep predict --input`.
struct CommentTexts: Sendable {
    var texts: [String]
    /// 1-based data row of each text in the source file (header not counted).
    var sourceRows: [Int]
    var skippedRows: [BadRow]

    /// Reads the text column only (`options.textColumn`, `options.onBadRows`; labels are ignored).
    static func load(contentsOf url: URL, options: CommentCSVOptions = CommentCSVOptions(),
                     logger: Logger? = nil) throws -> CommentTexts {
        try load(table: CSVTable(contentsOf: url), options: options, logger: logger)
    }

    static func load(table: CSVTable, options: CommentCSVOptions, logger: Logger?) throws -> CommentTexts {
        let textIndex = try table.column(named: options.textColumn, option: "--text_column")
        var texts: [String] = [], rows: [Int] = [], bad: [BadRow] = []
        for record in table.records {
            if let problem = CommentDataset.problem(in: record, header: table.header, textIndex: textIndex,
                                                    labelIndex: nil, options: options) {
                bad.append(BadRow(row: record.row, line: record.line, problem: problem))
            } else {
                texts.append(record.fields[textIndex])
                rows.append(record.row)
            }
        }
        if !bad.isEmpty {
            let listed = CommentDataset.describe(bad, shown: options.badRowsShown)
            switch options.onBadRows {
            case .fail:
                throw DatasetError(file: table.file, problem: "\(bad.count) bad row\(bad.count == 1 ? "" : "s"): \(listed); fix them or pass --on_bad_rows skip")
            case .skip:
                logger?.warning("\(table.file): skipped \(bad.count) bad row\(bad.count == 1 ? "" : "s"): \(listed)")
            }
        }
        return CommentTexts(texts: texts, sourceRows: rows, skippedRows: bad)
    }
}
