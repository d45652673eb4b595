import CSV
import Foundation

/// One stage's model, evaluated on the held-out data after its threshold was searched again: a row
/// of `pipeline_summary_<tag>.csv`, of the table printed at the end of `sankshep run`, and of the
/// HTML report.
struct StageSummaryRow: Sendable, Equatable {
    /// The recipe's stage label (`baseline`, `distill`, `prune_wanda`, `quantize_int4`, …).
    var stage: String
    /// What the model is, e.g. `bert 4×256, pruned 50%, int4`.
    var model: String
    var accuracy: Double
    /// Of the hate class.
    var precision: Double
    var recall: Double
    var f1: Double
    var macroF1: Double
    /// nil when the held-out labels hold a single class.
    var rocAUC: Double?
    /// The threshold the metrics were taken at.
    var threshold: Double
    var parameters: Int
    var nonZeroParameters: Int
    /// What a user ships, in MB of 2^20 bytes: every file of the model folder that loading needs
    /// (weights, config, tokenizer files, `sankshep.json`; HuggingFaceDirectory.shippedBytes).
    var sizeMB: Double
    /// CPU latency of one forward pass, in milliseconds, at batch 1 and at batch 32.
    var latencyMsBatch1: Double
    var latencyMsBatch32: Double
    /// The teacher's size over this model's (the teacher's own row has 1).
    var compressionRatio: Double

    static let bytesPerMB = 1_048_576.0

    init(stage: String, model: String, accuracy: Double, precision: Double, recall: Double, f1: Double,
         macroF1: Double, rocAUC: Double?, threshold: Double, parameters: Int, nonZeroParameters: Int,
         sizeMB: Double, latencyMsBatch1: Double, latencyMsBatch32: Double, compressionRatio: Double) {
        self.stage = stage
        self.model = model
        self.accuracy = accuracy
        self.precision = precision
        self.recall = recall
        self.f1 = f1
        self.macroF1 = macroF1
        self.rocAUC = rocAUC
        self.threshold = threshold
        self.parameters = parameters
        self.nonZeroParameters = nonZeroParameters
        self.sizeMB = sizeMB
        self.latencyMsBatch1 = latencyMsBatch1
        self.latencyMsBatch32 = latencyMsBatch32
        self.compressionRatio = compressionRatio
    }

    /// A row from a stage's evaluation at its chosen threshold and its measurements; the size and the
    /// compression ratio come from file sizes in bytes.
    init(stage: String, model: String, metrics: ClassificationMetrics, parameters: Int, nonZeroParameters: Int,
         sizeBytes: Int, teacherSizeBytes: Int, latencyMsBatch1: Double, latencyMsBatch32: Double) {
        self.init(stage: stage, model: model, accuracy: metrics.accuracy, precision: metrics.precision,
                  recall: metrics.recall, f1: metrics.f1, macroF1: metrics.macroF1, rocAUC: metrics.rocAUC,
                  threshold: metrics.threshold, parameters: parameters, nonZeroParameters: nonZeroParameters,
                  sizeMB: Double(sizeBytes) / Self.bytesPerMB, latencyMsBatch1: latencyMsBatch1,
                  latencyMsBatch32: latencyMsBatch32,
                  compressionRatio: sizeBytes > 0 ? Double(teacherSizeBytes) / Double(sizeBytes) : 0)
    }
}

/// The rows of a run, one per stage, as `pipeline_summary_<tag>.csv`. The file is rewritten
/// (atomically) after every stage, so a resumed run reads it back and carries on.
struct PipelineSummary: Sendable, Equatable {
    var rows: [StageSummaryRow] = []

    static func fileName(tag: String) -> String { "pipeline_summary_\(tag).csv" }

    /// The CSV columns, in order, with how each is read from and written to a row.
    static let columns: [(name: String, field: Field)] = [
        ("stage", .text(\.stage)), ("model", .text(\.model)),
        ("accuracy", .number(\.accuracy)), ("precision", .number(\.precision)), ("recall", .number(\.recall)),
        ("f1", .number(\.f1)), ("macro_f1", .number(\.macroF1)), ("roc_auc", .optionalNumber(\.rocAUC)),
        ("threshold", .number(\.threshold)), ("parameters", .count(\.parameters)),
        ("nonzero_parameters", .count(\.nonZeroParameters)), ("size_mb", .number(\.sizeMB)),
        ("latency_ms_batch1", .number(\.latencyMsBatch1)), ("latency_ms_batch32", .number(\.latencyMsBatch32)),
        ("compression_ratio", .number(\.compressionRatio)),
    ]

    enum Field: Sendable {
        case text(WritableKeyPath<StageSummaryRow, String> & Sendable)
        case number(WritableKeyPath<StageSummaryRow, Double> & Sendable)
        case optionalNumber(WritableKeyPath<StageSummaryRow, Double?> & Sendable)
        case count(WritableKeyPath<StageSummaryRow, Int> & Sendable)
    }

    /// Adds the row of a stage, replacing an earlier row of the same stage (a resumed run that
    /// repeats a stage must not list it twice).
    mutating func record(_ row: StageSummaryRow) {
        if let index = rows.firstIndex(where: { $0.stage == row.stage }) { rows[index] = row } else { rows.append(row) }
    }

    /// The CSV text: a header and one line per row. Numbers are written with every digit needed to
    /// read back the same value (Swift's shortest round-trip form), an unknown ROC-AUC as an empty field.
    func csvText() throws -> String {
        let stream = OutputStream(toMemory: ())
        stream.open()
        let writer = try CSVWriter(stream: stream)
        try writer.write(row: Self.columns.map(\.name))
        for row in rows {
            try writer.write(row: Self.columns.map { column in
                switch column.field {
                case .text(let path): row[keyPath: path]
                case .number(let path): "\(row[keyPath: path])"
                case .optionalNumber(let path): row[keyPath: path].map { "\($0)" } ?? ""
                case .count(let path): "\(row[keyPath: path])"
                }
            })
        }
        writer.stream.close()
        let data = stream.property(forKey: .dataWrittenToMemoryStreamKey) as? Data ?? Data()
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    /// Writes the file atomically (a temporary file renamed over the old one).
    func write(to url: URL) throws {
        try AtomicFile.write(Data(try csvText().utf8), to: url)
    }

    /// Reads a summary written by `write`; columns are found by name. Every problem is one line
    /// naming the file, the row and the column.
    static func read(from url: URL) throws -> PipelineSummary {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw CheckpointError(file: url.path, problem: "cannot read the pipeline summary")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw CheckpointError(file: url.path, problem: "the pipeline summary is not UTF-8 text")
        }
        return try parse(csv: text, file: url.path)
    }

    static func parse(csv text: String, file: String) throws -> PipelineSummary {
        let reader: CSVReader
        do { reader = try CSVReader(string: text, hasHeaderRow: true) } catch {
            throw CheckpointError(file: file, problem: "not a CSV file (\(error))")
        }
        let header = reader.headerRow ?? []
        var positions: [Int] = []
        for column in columns {
            guard let position = header.firstIndex(of: column.name) else {
                throw CheckpointError(file: file, problem: "the pipeline summary has no '\(column.name)' column")
            }
            positions.append(position)
        }
        var summary = PipelineSummary()
        var rowNumber = 1  // the header is row 1, as a spreadsheet numbers it
        while let fields = reader.next() {
            rowNumber += 1
            if fields.allSatisfy(\.isEmpty) { continue }
            var row = StageSummaryRow(stage: "", model: "", accuracy: 0, precision: 0, recall: 0, f1: 0, macroF1: 0,
                                      rocAUC: nil, threshold: 0, parameters: 0, nonZeroParameters: 0, sizeMB: 0,
                                      latencyMsBatch1: 0, latencyMsBatch32: 0, compressionRatio: 0)
            for (column, position) in zip(columns, positions) {
                guard position < fields.count else {
                    throw CheckpointError(file: file, problem: "row \(rowNumber) has \(fields.count) fields, no '\(column.name)'")
                }
                let value = fields[position]
                func bad(_ what: String) -> CheckpointError {
                    CheckpointError(file: file, problem: "row \(rowNumber), column '\(column.name)': '\(value)' is not \(what)")
                }
                switch column.field {
                case .text(let path):
                    row[keyPath: path] = value
                case .number(let path):
                    guard let number = Double(value) else { throw bad("a number") }
                    row[keyPath: path] = number
                case .optionalNumber(let path):
                    if value.isEmpty { row[keyPath: path] = nil; continue }
                    guard let number = Double(value) else { throw bad("a number or empty") }
                    row[keyPath: path] = number
                case .count(let path):
                    guard let count = Int(value), count >= 0 else { throw bad("a count") }
                    row[keyPath: path] = count
                }
            }
            summary.rows.append(row)
        }
        if let error = reader.error {
            throw CheckpointError(file: file, problem: "malformed CSV after row \(rowNumber) (\(error))")
        }
        return summary
    }
}
