import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import Host

/// Collects what an XML parser sees in the report: elements and attributes, or the parse error.
private final class ReportXMLReader: NSObject, XMLParserDelegate {
    var elements: [(name: String, attributes: [String: String])] = []
    var text = ""
    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]) {
        elements.append((name, attributes))
    }
    func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }

    static func read(_ html: String) -> (ReportXMLReader, Bool, String) {
        let reader = ReportXMLReader()
        let parser = XMLParser(data: Data(html.utf8))
        parser.delegate = reader
        let ok = parser.parse()
        return (reader, ok, parser.parserError.map { "\($0)" } ?? "")
    }
}

@Suite("HTML report")
struct HTMLReportTests {
    static let curves: [Int: [(epoch: Int, trainLoss: Double, valMacroF1: Double)]] = [
        0: [(1, 0.61, 0.71), (2, 0.44, 0.80), (3, 0.35, 0.84)],
        1: [(1, 0.63, 0.69), (2, 0.47, 0.78), (3, 0.38, 0.83), (4, 0.31, 0.85)],
    ]

    static func report(rows: [StageSummaryRow] = SummaryTestRows.rows) -> HTMLReport {
        HTMLReport(details: [("Recipe", "baseline_kd_prune_quant"), ("Data", "data/HateSpeech.csv (16,407 comments)")],
                   summary: rows, trainingCurves: curves)
    }

    @Test("the report is one well-formed document with the summary rows, a scatter, two latency charts and the fold curves")
    func content() throws {
        let html = Self.report().html()
        let (xml, ok, problem) = ReportXMLReader.read(html)
        #expect(ok, "not well-formed: \(problem)")
        let names = xml.elements.map(\.name)
        #expect(names.filter { $0 == "tr" }.count == 1 + SummaryTestRows.rows.count)
        #expect(names.filter { $0 == "th" }.count == SummaryTable.columns.count)
        for row in SummaryTestRows.rows {
            #expect(xml.text.contains(row.stage))
            #expect(xml.text.contains(row.model))
            for cell in SummaryTable.cells(row) { #expect(xml.text.contains(cell)) }
        }
        // Scatter, batch 1 bars, batch 32 bars, loss and macro-F1 curves.
        let charts = xml.elements.filter { $0.name == "svg" }
        #expect(charts.count == 5)
        #expect(charts.allSatisfy { $0.attributes["xmlns"] == "http://www.w3.org/2000/svg" && $0.attributes["viewBox"] != nil })
        // One point per stage in the scatter; one line per fold in each curve chart.
        #expect(names.filter { $0 == "polyline" }.count == 2 * Self.curves.count)
        #expect(names.filter { $0 == "rect" }.count >= 2 * SummaryTestRows.rows.count)
        #expect(xml.text.contains("fold 0") && xml.text.contains("fold 1"))
        #expect(xml.text.contains("Training curves: Baseline"))
        // Self-contained: no scripts, no external stylesheets, fonts or images.
        #expect(!html.lowercased().contains("<script"))
        #expect(!html.contains("<link"))
        #expect(!html.contains("url("))
        #expect(!html.contains("src="))
    }

    @Test("every bit of text is escaped: a stage called <script> cannot inject markup")
    func escaping() throws {
        var row = SummaryTestRows.rows[0]
        row.stage = "<script>alert('x')</script>"
        row.model = "a & b \"quoted\" > c"
        let report = HTMLReport(title: "T <b>", details: [("<i>", "</dd>")], summary: [row],
                                trainingCurves: [0: [(1, 0.5, 0.5)]], curvesTitle: "<svg onload=x>")
        let html = report.html()
        #expect(!html.lowercased().contains("<script"))
        #expect(!html.contains("<svg onload"))
        #expect(!html.contains("<b>") && !html.contains("<i>"))
        #expect(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"))
        #expect(html.contains("a &amp; b &quot;quoted&quot; &gt; c"))
        let (xml, ok, problem) = ReportXMLReader.read(html)
        #expect(ok, "not well-formed: \(problem)")
        #expect(xml.text.contains("<script>alert('x')</script>"))
        #expect(!xml.elements.contains { ["script", "b", "i"].contains($0.name) })
    }

    @Test("a report before any stage finished says so and draws no charts")
    func empty() {
        let html = HTMLReport(summary: []).html()
        let (xml, ok, _) = ReportXMLReader.read(html)
        #expect(ok)
        #expect(xml.text.contains("No stage has finished yet."))
        #expect(!xml.elements.contains { $0.name == "svg" })
    }

    @Test("sizes spanning more than 20× are drawn on a log axis, one point per stage at its size")
    func logAxis() throws {
        let html = Self.report().html()
        #expect(html.contains("Size on disk (MB, log scale)"))
        // 0.61 MB to 13.02 MB: decades 0.1, 1, 10, 100.
        for tick in [">0.1<", ">1<", ">10<", ">100<"] { #expect(html.contains(tick)) }
        let close = Self.report(rows: Array(SummaryTestRows.rows.prefix(2))).html()
        #expect(close.contains("Size on disk (MB)<"))
    }

    @Test("report.html is written atomically where asked")
    func write() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("report-\(UUID().uuidString)")
        let url = folder.appendingPathComponent(HTMLReport.fileName)
        try Self.report().write(to: url)
        #expect(try String(contentsOf: url, encoding: .utf8) == Self.report().html())
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["report.html"])
        if let sample = ProcessInfo.processInfo.environment["SANKSHEP_REPORT_SAMPLE"] {
            try Self.report().write(to: URL(fileURLWithPath: sample))
        }
    }
}
