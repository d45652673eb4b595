import Testing
@testable import Host

@Suite("Terminal tables")
struct SummaryTableTests {
    @Test("display width counts Bangla vowel signs but not virama or combining marks, CJK and emoji as two")
    func widths() {
        #expect(DisplayWidth.of("ঘৃণা") == 3)        // ঘ + ৃ (Mn, 0) + ণ + া (Mc, 1)
        #expect(DisplayWidth.of("বাংলা") == 5)
        #expect(DisplayWidth.of("ঘৃণ্য মন্তব্য") == 9)  // each ্ (virama) takes no column
        #expect(DisplayWidth.of("e\u{301}") == 1)
        #expect(DisplayWidth.of("中文") == 4)
        #expect(DisplayWidth.of("👍") == 2)
        #expect(DisplayWidth.of("❤️") == 2)
        #expect(DisplayWidth.of("ok") == 2)
    }

    @Test("a table with Bangla cells lines up: every line has the same width and every column starts at the same place")
    func banglaAlignment() {
        var table = TextTable(columns: [.init("মন্তব্য"), .init("label"), .init("score", .right)])
        table.append(["জাহান্নামি", "hate", "0.97"])
        table.append(["ঘৃণ্য মন্তব্য", "hate", "0.91"])
        table.append(["ভালো খেলা, অভিনন্দন", "not hate", "0.03"])
        table.append(["plain ASCII", "not hate", "0.5"])
        let lines = table.render().split(separator: "\n").map(String.init)
        #expect(lines.count == 6)
        let widths = Set(lines.map { DisplayWidth.of($0) })
        #expect(widths.count == 1, "\(lines)")
        let firstColumn = DisplayWidth.of("ভালো খেলা, অভিনন্দন")
        for (line, label) in zip(lines, ["label", nil, "hate", "hate", "not hate", "not hate"]) {
            guard let label, let range = line.range(of: "  " + label) else { continue }
            // The second column starts two columns after the widest first cell, in display columns.
            #expect(DisplayWidth.of(String(line[..<range.lowerBound])) == firstColumn, "\(line)")
        }
        #expect(lines[2].hasSuffix(" 0.97"))
        #expect(lines[5].hasSuffix("  0.5"))
        #expect(lines[1].allSatisfy { $0 == "─" || $0 == " " })
    }

    @Test("the pipeline summary prints one aligned line per stage with grouped counts, ratios and a dash for a missing ROC-AUC")
    func summaryTable() {
        let text = SummaryTable.render(SummaryTestRows.rows)
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.count == 2 + SummaryTestRows.rows.count)
        #expect(Set(lines.map { DisplayWidth.of($0) }).count == 1)
        #expect(lines[0].hasPrefix("Stage"))
        #expect(lines[2].hasPrefix("baseline "))
        #expect(lines[2].contains("3,412,481"))
        #expect(lines[2].hasSuffix("1.0×"))
        #expect(lines[3].contains("  –  "))          // distill has no ROC-AUC
        #expect(lines[3].contains("0.3000"))         // 0.1 + 0.2 shown to 4 decimals
        #expect(lines[4].contains("481,690"))
        #expect(lines[4].hasSuffix("21.3×"))
    }

    @Test("counts are grouped by thousands whatever the locale")
    func grouping() {
        #expect(SummaryTable.grouped(0) == "0")
        #expect(SummaryTable.grouped(999) == "999")
        #expect(SummaryTable.grouped(1000) == "1,000")
        #expect(SummaryTable.grouped(110_106_428) == "110,106,428")
        #expect(SummaryTable.grouped(-1234) == "-1,234")
    }

    @Test("line breaks and tabs inside a cell do not break the grid")
    func controlCharacters() {
        let table = TextTable(columns: [.init("a"), .init("b")], rows: [["x\ny", "1\t2"], ["long cell", ""]])
        let lines = table.render().split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 4)
        #expect(lines[2] == "x y        1 2")
    }
}
