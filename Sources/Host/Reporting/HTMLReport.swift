import Foundation

/// One epoch of one fold's training, as the training curves plot it.
struct TrainingCurvePoint: Sendable, Equatable {
    var epoch: Int
    var trainLoss: Double
    var validationMacroF1: Double
}

/// The training curves of one stage (the baseline's folds, the student's folds, …): per fold, the
/// points in epoch order. Fold numbers are shown as given.
struct TrainingCurves: Sendable, Equatable {
    var title: String
    var folds: [Int: [TrainingCurvePoint]]

    init(title: String, folds: [Int: [TrainingCurvePoint]]) {
        self.title = title
        self.folds = folds
    }

    init(title: String, folds: [Int: [(epoch: Int, trainLoss: Double, valMacroF1: Double)]]) {
        self.init(title: title, folds: folds.mapValues { points in
            points.map { TrainingCurvePoint(epoch: $0.epoch, trainLoss: $0.trainLoss, validationMacroF1: $0.valMacroF1) }
        })
    }
}

/// `report.html`: one self-contained page (inline CSS and inline SVG; no scripts, fonts or other
/// files) with the pipeline summary table, size against macro-F1 per stage, latency per stage, and
/// the training curves per fold. Every piece of text — stage names, model descriptions, details —
/// is escaped, and the document is well-formed XML as well as HTML, so tests can parse it.
struct HTMLReport: Sendable {
    var title: String
    /// Facts shown under the title (recipe, data, seed, date, …), in order.
    var details: [(label: String, value: String)]
    var summary: [StageSummaryRow]
    var curves: [TrainingCurves]

    init(title: String = "Sankshep pipeline report", details: [(label: String, value: String)] = [],
         summary: [StageSummaryRow], curves: [TrainingCurves] = []) {
        self.title = title
        self.details = details
        self.summary = summary
        self.curves = curves
    }

    /// The page, with the training curves of one stage given the way the training loop records them.
    init(title: String = "Sankshep pipeline report", details: [(label: String, value: String)] = [],
         summary: [StageSummaryRow],
         trainingCurves: [Int: [(epoch: Int, trainLoss: Double, valMacroF1: Double)]], curvesTitle: String = "Baseline") {
        self.init(title: title, details: details, summary: summary,
                  curves: trainingCurves.isEmpty ? [] : [TrainingCurves(title: curvesTitle, folds: trainingCurves)])
    }

    static let fileName = "report.html"

    /// Writes the page atomically.
    func write(to url: URL) throws {
        try AtomicFile.write(Data(html().utf8), to: url)
    }

    func html() -> String {
        var page = """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8"/>
            <meta name="viewport" content="width=device-width, initial-scale=1"/>
            <title>\(htmlEscape(title))</title>
            <style>\(Self.css)</style>
            </head>
            <body>
            <h1>\(htmlEscape(title))</h1>

            """
        if !details.isEmpty {
            page += "<dl class=\"details\">\n"
            for (label, value) in details {
                page += "<dt>\(htmlEscape(label))</dt><dd>\(htmlEscape(value))</dd>\n"
            }
            page += "</dl>\n"
        }
        page += "<h2>Summary</h2>\n" + summaryTable()
        if !summary.isEmpty {
            page += "<h2>Size and quality</h2>\n<div class=\"charts\">\n" + sizeScatter() + "</div>\n"
            page += "<h2>Latency on this CPU</h2>\n<div class=\"charts\">\n"
            page += latencyBars(title: "Batch 1 (ms)", \.latencyMsBatch1)
            page += latencyBars(title: "Batch 32 (ms)", \.latencyMsBatch32)
            page += "</div>\n"
        }
        for section in curves where !section.folds.isEmpty {
            page += "<h2>Training curves: \(htmlEscape(section.title))</h2>\n<div class=\"charts\">\n"
            page += foldLines(section, title: "Training loss", \.trainLoss)
            page += foldLines(section, title: "Validation macro-F1", \.validationMacroF1)
            page += "</div>\n"
        }
        page += "<p class=\"footer\">Made by sankshep. Sizes are files on disk in MB of 2<sup>20</sup> bytes; "
        page += "the ratio is the teacher's size over the stage's.</p>\n</body>\n</html>\n"
        return page
    }

    // MARK: Table

    private func summaryTable() -> String {
        guard !summary.isEmpty else { return "<p class=\"empty\">No stage has finished yet.</p>\n" }
        var table = "<div class=\"table\"><table>\n<thead><tr>"
        for column in SummaryTable.columns {
            table += "<th class=\"\(column.alignment == .right ? "num" : "text")\">\(htmlEscape(column.title))</th>"
        }
        table += "</tr></thead>\n<tbody>\n"
        for (index, row) in summary.enumerated() {
            table += "<tr>"
            for (cell, column) in zip(SummaryTable.cells(row), SummaryTable.columns) {
                let swatch = column.title == "Stage"
                    ? "<span class=\"swatch\" style=\"background:\(Self.color(index))\"></span>" : ""
                table += "<td class=\"\(column.alignment == .right ? "num" : "text")\">\(swatch)\(htmlEscape(cell))</td>"
            }
            table += "</tr>\n"
        }
        return table + "</tbody>\n</table></div>\n"
    }

    // MARK: Charts

    /// Macro-F1 against size on disk, one point per stage. Sizes spanning more than 20× are drawn on
    /// a log axis so the compressed stages do not pile up at the origin.
    private func sizeScatter() -> String {
        let points = summary.enumerated().filter { $0.element.sizeMB.isFinite && $0.element.sizeMB > 0 && $0.element.macroF1.isFinite }
        guard !points.isEmpty else { return "" }
        let sizes = points.map(\.element.sizeMB)
        let useLog = sizes.max()! / sizes.min()! > 20
        let x = useLog ? Axis.logarithmic(sizes, title: "Size on disk (MB, log scale)")
                       : Axis.linear(sizes + [0], title: "Size on disk (MB)")
        let y = Axis.linear(points.map(\.element.macroF1), title: "Macro-F1", clampTo: 0...1)
        var chart = Chart(x: x, y: y, title: "Macro-F1 against size, per stage")
        for (index, row) in points {
            chart.marks += "<circle cx=\"\(f(chart.px(row.sizeMB)))\" cy=\"\(f(chart.py(row.macroF1)))\" r=\"6\" fill=\"\(Self.color(index))\">"
            chart.marks += "<title>\(htmlEscape(row.stage)): \(htmlEscape(SummaryTable.fixed(row.sizeMB, 2))) MB, macro-F1 \(htmlEscape(SummaryTable.fixed(row.macroF1, 4)))</title></circle>\n"
        }
        chart.legend = points.map { (Self.color($0.offset), $0.element.stage) }
        return chart.svg()
    }

    /// Horizontal bars, one per stage, the value written at the end of each bar.
    private func latencyBars(title: String, _ value: KeyPath<StageSummaryRow, Double>) -> String {
        let rows = summary.enumerated().filter { $0.element[keyPath: value].isFinite && $0.element[keyPath: value] >= 0 }
        guard !rows.isEmpty else { return "" }
        let labelWidth = 150.0, barHeight = 22.0, gap = 10.0, top = 40.0, right = 80.0
        let width = Chart.width
        let height = top + Double(rows.count) * (barHeight + gap) + 30
        let axis = Axis.linear(rows.map { $0.element[keyPath: value] } + [0], title: "")
        let plotWidth = width - labelWidth - right
        var svg = Chart.open(width: width, height: height, title: title)
        svg += "<text class=\"chart-title\" x=\"\(f(width / 2))\" y=\"22\" text-anchor=\"middle\">\(htmlEscape(title))</text>\n"
        for tick in axis.ticks {
            let x = labelWidth + axis.fraction(tick) * plotWidth
            svg += "<line class=\"grid\" x1=\"\(f(x))\" y1=\"\(f(top - 6))\" x2=\"\(f(x))\" y2=\"\(f(height - 26))\"/>\n"
            svg += "<text class=\"tick\" x=\"\(f(x))\" y=\"\(f(height - 10))\" text-anchor=\"middle\">\(htmlEscape(axis.label(tick)))</text>\n"
        }
        for (position, (index, row)) in rows.enumerated() {
            let y = top + Double(position) * (barHeight + gap)
            let amount = row[keyPath: value]
            let barWidth = max(1, axis.fraction(amount) * plotWidth)
            svg += "<text class=\"label\" x=\"\(f(labelWidth - 8))\" y=\"\(f(y + barHeight * 0.7))\" text-anchor=\"end\">\(htmlEscape(Self.shortened(row.stage)))</text>\n"
            svg += "<rect x=\"\(f(labelWidth))\" y=\"\(f(y))\" width=\"\(f(barWidth))\" height=\"\(f(barHeight))\" rx=\"3\" fill=\"\(Self.color(index))\">"
            svg += "<title>\(htmlEscape(row.stage)): \(htmlEscape(SummaryTable.fixed(amount, 2))) ms</title></rect>\n"
            svg += "<text class=\"value\" x=\"\(f(labelWidth + barWidth + 6))\" y=\"\(f(y + barHeight * 0.7))\">\(htmlEscape(SummaryTable.fixed(amount, 2)))</text>\n"
        }
        return svg + "</svg>\n"
    }

    /// One line per fold against the epoch.
    private func foldLines(_ section: TrainingCurves, title: String, _ value: KeyPath<TrainingCurvePoint, Double>) -> String {
        let folds = section.folds.keys.sorted().map { fold in
            (fold, section.folds[fold]!.filter { $0[keyPath: value].isFinite }.sorted { $0.epoch < $1.epoch })
        }.filter { !$0.1.isEmpty }
        guard !folds.isEmpty else { return "" }
        let epochs = folds.flatMap { $0.1.map { Double($0.epoch) } }
        let values = folds.flatMap { $0.1.map { $0[keyPath: value] } }
        let x = Axis.integers(epochs, title: "Epoch")
        let y = Axis.linear(values, title: title, clampTo: value == \.validationMacroF1 ? 0...1 : nil)
        var chart = Chart(x: x, y: y, title: "\(title), \(section.title)")
        for (position, (_, points)) in folds.enumerated() {
            let color = Self.color(position)
            let coordinates = points.map { "\(f(chart.px(Double($0.epoch)))),\(f(chart.py($0[keyPath: value])))" }
            chart.marks += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(coordinates.joined(separator: " "))\"/>\n"
            for (point, coordinate) in zip(points, coordinates) {
                let parts = coordinate.split(separator: ",")
                chart.marks += "<circle cx=\"\(parts[0])\" cy=\"\(parts[1])\" r=\"3\" fill=\"\(color)\">"
                chart.marks += "<title>epoch \(point.epoch): \(htmlEscape(SummaryTable.fixed(point[keyPath: value], 4)))</title></circle>\n"
            }
        }
        chart.legend = folds.enumerated().map { (Self.color($0.offset), "fold \($0.element.0)") }
        return chart.svg()
    }

    // MARK: Pieces

    /// A colour-blind-safe palette (Okabe–Ito), repeated when there are more series.
    static let palette = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
    static func color(_ index: Int) -> String { palette[index % palette.count] }

    /// Bar labels have a fixed column; longer stage names are cut with an ellipsis (the tooltip and
    /// the table keep the whole name).
    static func shortened(_ text: String, to limit: Int = 20) -> String {
        text.count <= limit ? text : String(text.prefix(limit - 1)) + "…"
    }

    static let css = """
        body { font-family: system-ui, -apple-system, "Segoe UI", "Noto Sans", "Noto Sans Bengali", sans-serif; \
        margin: 2rem auto; max-width: 1400px; padding: 0 1rem; color: #1b1f24; background: #fff; }
        h1 { font-size: 1.6rem; margin-bottom: 0.4rem; }
        h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #d0d7de; padding-bottom: 0.3rem; }
        dl.details { display: grid; grid-template-columns: max-content auto; gap: 0.2rem 1rem; margin: 0.5rem 0 1rem; color: #444; }
        dl.details dt { font-weight: 600; }
        dl.details dd { margin: 0; }
        div.table { overflow-x: auto; }
        table { border-collapse: collapse; font-size: 0.85rem; font-variant-numeric: tabular-nums; }
        th, td { padding: 0.3rem 0.45rem; border-bottom: 1px solid #e5e7eb; }
        td { white-space: nowrap; }
        th { background: #f6f8fa; font-weight: 600; }
        .num { text-align: right; }
        .text { text-align: left; }
        tbody tr:nth-child(even) { background: #fafbfc; }
        .swatch { display: inline-block; width: 0.7rem; height: 0.7rem; border-radius: 50%; margin-right: 0.4rem; vertical-align: -0.05rem; }
        .charts { display: flex; flex-wrap: wrap; gap: 1.5rem; }
        svg.chart { width: 100%; max-width: 560px; height: auto; font-size: 12px; }
        svg .grid { stroke: #e5e7eb; stroke-width: 1; }
        svg .frame { stroke: #8c959f; stroke-width: 1; fill: none; }
        svg .tick, svg .value { fill: #57606a; }
        svg .label { fill: #1b1f24; }
        svg .axis-title { fill: #1b1f24; font-weight: 600; }
        svg .chart-title { fill: #1b1f24; font-weight: 600; font-size: 13px; }
        p.empty, p.footer { color: #57606a; font-size: 0.85rem; }
        """
}

/// An axis: its range, ticks and how a value maps to [0, 1] along it.
private struct Axis {
    var lo: Double
    var hi: Double
    var ticks: [Double]
    var isLog = false
    var title: String
    /// Decimals of the tick labels.
    var decimals = 0

    func fraction(_ value: Double) -> Double {
        if isLog { return (log10(value) - log10(lo)) / (log10(hi) - log10(lo)) }
        return hi > lo ? (value - lo) / (hi - lo) : 0.5
    }

    func label(_ value: Double) -> String {
        isLog ? (value >= 1 ? String(format: "%.0f", value) : String(format: "%g", value))
              : String(format: "%.\(decimals)f", value)
    }

    /// About five ticks at 1, 2 or 5 times a power of ten, covering the values with a little room.
    static func linear(_ values: [Double], title: String, clampTo clamp: ClosedRange<Double>? = nil) -> Axis {
        var lo = values.min() ?? 0, hi = values.max() ?? 1
        if hi - lo < 1e-12 { lo -= max(abs(lo) * 0.1, 0.05); hi += max(abs(hi) * 0.1, 0.05) }
        // A little room so no point sits on the frame; never below zero for quantities that cannot be.
        let room = (hi - lo) * 0.05
        lo = values.allSatisfy({ $0 >= 0 }) ? max(0, lo - room) : lo - room
        hi += room
        let rough = (hi - lo) / 5
        let magnitude = pow(10, floor(log10(rough)))
        let step = magnitude * (rough / magnitude < 1.5 ? 1 : rough / magnitude < 3 ? 2 : rough / magnitude < 7 ? 5 : 10)
        var first = (lo / step).rounded(.down), last = (hi / step).rounded(.up)
        if let clamp {
            first = max(first, (clamp.lowerBound / step).rounded(.up))
            last = min(last, (clamp.upperBound / step).rounded(.down))
            if last <= first { last = first + 1 }
        }
        let ticks = stride(from: first, through: last, by: 1).map { $0 * step }
        return Axis(lo: first * step, hi: last * step, ticks: ticks, title: title, decimals: max(0, Int(-floor(log10(step)))))
    }

    /// Decades covering the values.
    static func logarithmic(_ values: [Double], title: String) -> Axis {
        let lo = pow(10, floor(log10(values.min()!))), hi = pow(10, ceil(log10(values.max()!)))
        let decades = Int((log10(hi) - log10(lo)).rounded())
        let ticks = (0...max(decades, 1)).map { lo * pow(10, Double($0)) }
        return Axis(lo: lo, hi: ticks.last!, ticks: ticks, isLog: true, title: title)
    }

    /// Whole numbers (epochs), at most about ten ticks.
    static func integers(_ values: [Double], title: String) -> Axis {
        let lo = values.min() ?? 0, hi = max(values.max() ?? 1, lo + 1)
        let step = max(1, ((hi - lo) / 10).rounded(.up))
        return Axis(lo: lo, hi: hi, ticks: stride(from: lo, through: hi, by: step).map { $0 }, title: title)
    }
}

/// A framed x–y chart: grid, ticks, axis titles, marks and a legend.
private struct Chart {
    static let width = 560.0
    static let height = 340.0
    static let left = 64.0, right = 16.0, top = 36.0, bottom = 56.0

    var x: Axis
    var y: Axis
    var title: String
    var marks = ""
    var legend: [(color: String, name: String)] = []

    var plotWidth: Double { Self.width - Self.left - Self.right }
    var plotHeight: Double { Self.height - Self.top - Self.bottom }
    func px(_ value: Double) -> Double { Self.left + x.fraction(value) * plotWidth }
    func py(_ value: Double) -> Double { Self.top + (1 - y.fraction(value)) * plotHeight }

    static func open(width: Double, height: Double, title: String) -> String {
        "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(f(width)) \(f(height))\" role=\"img\" aria-label=\"\(htmlEscape(title))\">\n"
    }

    func svg() -> String {
        let legendRows = (legend.count + 2) / 3
        let height = Self.height + Double(legendRows) * 18
        var svg = Self.open(width: Self.width, height: height, title: title)
        svg += "<text class=\"chart-title\" x=\"\(f(Self.width / 2))\" y=\"20\" text-anchor=\"middle\">\(htmlEscape(title))</text>\n"
        for tick in x.ticks {
            svg += "<line class=\"grid\" x1=\"\(f(px(tick)))\" y1=\"\(f(Self.top))\" x2=\"\(f(px(tick)))\" y2=\"\(f(Self.top + plotHeight))\"/>\n"
            svg += "<text class=\"tick\" x=\"\(f(px(tick)))\" y=\"\(f(Self.top + plotHeight + 16))\" text-anchor=\"middle\">\(htmlEscape(x.label(tick)))</text>\n"
        }
        for tick in y.ticks {
            svg += "<line class=\"grid\" x1=\"\(f(Self.left))\" y1=\"\(f(py(tick)))\" x2=\"\(f(Self.left + plotWidth))\" y2=\"\(f(py(tick)))\"/>\n"
            svg += "<text class=\"tick\" x=\"\(f(Self.left - 6))\" y=\"\(f(py(tick) + 4))\" text-anchor=\"end\">\(htmlEscape(y.label(tick)))</text>\n"
        }
        svg += "<rect class=\"frame\" x=\"\(f(Self.left))\" y=\"\(f(Self.top))\" width=\"\(f(plotWidth))\" height=\"\(f(plotHeight))\"/>\n"
        svg += "<text class=\"axis-title\" x=\"\(f(Self.left + plotWidth / 2))\" y=\"\(f(Self.top + plotHeight + 36))\" text-anchor=\"middle\">\(htmlEscape(x.title))</text>\n"
        svg += "<text class=\"axis-title\" transform=\"translate(16 \(f(Self.top + plotHeight / 2))) rotate(-90)\" text-anchor=\"middle\">\(htmlEscape(y.title))</text>\n"
        svg += marks
        for (index, entry) in legend.enumerated() {
            let lx = Self.left + Double(index % 3) * (plotWidth / 3)
            let ly = Self.height - 4 + Double(index / 3) * 18
            svg += "<circle cx=\"\(f(lx + 5))\" cy=\"\(f(ly - 4))\" r=\"5\" fill=\"\(entry.color)\"/>"
            svg += "<text class=\"label\" x=\"\(f(lx + 14))\" y=\"\(f(ly))\">\(htmlEscape(HTMLReport.shortened(entry.name, to: 26)))</text>\n"
        }
        return svg + "</svg>\n"
    }
}

/// Text for HTML and SVG: the five characters with a meaning in markup become entities.
func htmlEscape(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.utf8.count)
    for character in text {
        switch character {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default: out.append(character)
        }
    }
    return out
}

/// Coordinates with one decimal: enough for a 560-pixel chart, and short.
private func f(_ value: Double) -> String { String(format: "%.1f", value) }
