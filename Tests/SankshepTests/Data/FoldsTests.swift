import Foundation
import Testing
@testable import Host

@Suite("Cross-validation folds")
struct FoldsTests {
    /// 203 texts, 71 positive, with repeats: "dup0" ×5 (all 1), "dup1" ×3 (mixed), "dup2" ×2 (all 0) and
    /// a copy of "dup1" that differs only by decomposed code points and surrounding spaces.
    private func sample() -> (texts: [String], labels: [Int]) {
        var texts: [String] = [], labels: [Int] = []
        for i in 0..<190 { texts.append("comment \(i)"); labels.append(i % 3 == 0 ? 1 : 0) }
        for _ in 0..<5 { texts.append("dup0"); labels.append(1) }
        for label in [1, 0, 1] { texts.append("dup1 কী"); labels.append(label) }
        texts.append("  dup1 \u{0995}\u{09C0}\n"); labels.append(0)   // same text after NFC and trimming
        for _ in 0..<2 { texts.append("dup2"); labels.append(0) }
        for i in 0..<2 { texts.append("extra \(i)"); labels.append(1) }
        return (texts, labels)
    }

    @Test("stratified folds give every fold the same count of each class, within one")
    func stratified() throws {
        let (texts, labels) = sample()
        let (splits, report) = try Folds.kFold(texts: texts, labels: labels, k: 5, stratification: .binary, seed: 42)
        #expect(splits.count == 5)
        let positives = splits.map { $0.validation.filter { labels[$0] == 1 }.count }
        let negatives = splits.map { $0.validation.filter { labels[$0] == 0 }.count }
        #expect(positives.max()! - positives.min()! <= 1)
        #expect(negatives.max()! - negatives.min()! <= 1)
        #expect(report.folds.map(\.validationPositives) == positives)
        #expect(report.folds.map(\.validationSize) == splits.map(\.validation.count))
    }

    @Test("validation parts cover every row exactly once and never overlap their training part")
    func partition() throws {
        let (texts, labels) = sample()
        let (splits, _) = try Folds.kFold(texts: texts, labels: labels, k: 4, stratification: .binary, seed: 1)
        #expect(splits.flatMap(\.validation).sorted() == Array(texts.indices))
        for split in splits {
            #expect(Set(split.train).isDisjoint(with: split.validation))
            #expect(split.train.count + split.validation.count == texts.count)
        }
    }

    @Test("identical texts (after NFC and trimming) never land in two folds, and the report counts them")
    func duplicatesTogether() throws {
        let (texts, labels) = sample()
        for seed: UInt64 in [1, 2, 3, 42] {
            let (splits, report) = try Folds.kFold(texts: texts, labels: labels, k: 5, stratification: .binary, seed: seed)
            var foldOfKey: [String: Int] = [:]
            for (fold, split) in splits.enumerated() {
                for row in split.validation {
                    let key = Folds.duplicateKey(texts[row])
                    #expect(foldOfKey[key, default: fold] == fold, "text '\(key)' is in two folds")
                    foldOfKey[key] = fold
                }
            }
            #expect(report.duplicateGroups == 3)
            #expect(report.duplicateRows == 11)
            #expect(report.conflictingGroups == 1)
            #expect(report.folds.map(\.duplicateGroups).reduce(0, +) == 3)
        }
    }

    @Test("the same seed gives the same folds; another seed gives others")
    func determinism() throws {
        let (texts, labels) = sample()
        let a = try Folds.kFold(texts: texts, labels: labels, k: 5, stratification: .binary, seed: 42).splits
        let b = try Folds.kFold(texts: texts, labels: labels, k: 5, stratification: .binary, seed: 42).splits
        let c = try Folds.kFold(texts: texts, labels: labels, k: 5, stratification: .binary, seed: 43).splits
        #expect(a == b)
        #expect(a != c)
    }

    @Test("plain k-fold balances fold sizes within one, ignoring classes")
    func plain() throws {
        let texts = (0..<103).map { "t\($0)" }
        let labels = (0..<103).map { $0 < 90 ? 1 : 0 }
        let (splits, _) = try Folds.kFold(texts: texts, labels: labels, k: 5, stratification: .none, seed: 42)
        let sizes = splits.map(\.validation.count)
        #expect(sizes.max()! - sizes.min()! <= 1)
        #expect(sizes.reduce(0, +) == 103)
    }

    @Test("impossible fold counts are refused in one line naming the option")
    func badFoldCount() {
        #expect(throws: DatasetError(file: "--num_folds", problem: "needs at least 2 folds, got 1")) {
            try Folds.kFold(texts: ["a", "b"], labels: [0, 1], k: 1, stratification: .binary, seed: 1)
        }
        #expect(throws: DatasetError(file: "--num_folds", problem: "5 folds need at least 5 distinct texts, the data has 2")) {
            try Folds.kFold(texts: ["a", "b", "a"], labels: [0, 1, 0], k: 5, stratification: .binary, seed: 1)
        }
    }

    @Test("a held-out split takes the asked share of each class and keeps repeats on one side")
    func heldOut() throws {
        let (texts, labels) = sample()
        let split = try Folds.heldOut(texts: texts, labels: labels, heldOutFraction: 0.2, stratification: .binary, seed: 42)
        let positives = labels.reduce(0, +), negatives = labels.count - positives
        let heldPositives = split.validation.filter { labels[$0] == 1 }.count
        let heldNegatives = split.validation.count - heldPositives
        #expect(abs(Double(heldPositives) - 0.2 * Double(positives)) <= 1.5)
        #expect(abs(Double(heldNegatives) - 0.2 * Double(negatives)) <= 1.5)
        let trainKeys = Set(split.train.map { Folds.duplicateKey(texts[$0]) })
        #expect(split.validation.allSatisfy { !trainKeys.contains(Folds.duplicateKey(texts[$0])) })
        #expect((split.train + split.validation).sorted() == Array(texts.indices))
    }

    // Exact string matching finds 468 repeated texts (1,008 rows, 34 conflicting); NFC and trimming
    // find 25 more that differ only in code points or spaces (counts checked with Python's unicodedata).
    @Test("on the bundled data: 493 repeated texts in 1,086 rows, 37 with conflicting labels, folds balanced")
    func bundledData() throws {
        let url = Fixtures.root.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("data/HateSpeech.csv")
        let data = try CommentDataset.load(contentsOf: url)
        let (splits, report) = try Folds.kFold(texts: data.texts, labels: data.labels, k: 5, stratification: .binary, seed: 42)
        #expect(report.duplicateGroups == 493)
        #expect(report.duplicateRows == 1_086)
        #expect(report.conflictingGroups == 37)
        let positives = report.folds.map(\.validationPositives)
        let negatives = report.folds.map { $0.validationSize - $0.validationPositives }
        #expect(positives.max()! - positives.min()! <= 1)
        #expect(negatives.max()! - negatives.min()! <= 1)
        #expect(splits.map(\.validation.count).reduce(0, +) == 16_407)
    }
}
