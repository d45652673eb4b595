import CSV
import Foundation

/// Result tables (fold summary, best metrics, predictions) written as RFC 4180 CSV with the CSV
/// library, in memory first and then atomically into place.
enum CSVOutput {
    static func write(header: [String], rows: [[String]], to url: URL) throws {
        try AtomicFile.write(try encode(header: header, rows: rows), to: url)
    }

    static func encode(header: [String], rows: [[String]]) throws -> Data {
        let csv = try CSVWriter(stream: .toMemory())
        try csv.write(row: header)
        for row in rows { try csv.write(row: row) }
        csv.stream.close()
        var data = csv.stream.property(forKey: .dataWrittenToMemoryStreamKey) as? Data ?? Data()
        data.append(0x0A)
        return data
    }

    /// A number as the tables show it: fixed decimals, or empty when absent.
    static func number(_ value: Double?, decimals: Int = 4) -> String {
        guard let value, value.isFinite else { return "" }
        return String(format: "%.\(decimals)f", value)
    }
}
