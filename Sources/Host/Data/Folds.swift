import Foundation

/// How folds are balanced (`--stratification_type`).
enum StratificationType: String, Sendable, CaseIterable {
    /// Each fold gets the same share of each class (within one comment, where groups allow).
    case binary
    /// Folds of equal size, classes ignored.
    case none
}

/// One split of the data: indices into the dataset, each ascending.
struct FoldSplit: Sendable, Equatable {
    var train: [Int]
    var validation: [Int]
}

/// What a split did, for the fold summary and the log.
struct FoldReport: Sendable, Equatable {
    struct Fold: Sendable, Equatable {
        var trainSize: Int
        var trainPositives: Int
        var validationSize: Int
        var validationPositives: Int
        /// Groups of identical texts (two or more rows) whose rows are all in this fold's validation part.
        var duplicateGroups: Int
    }

    var folds: [Fold]
    /// Texts that occur more than once (after NFC and trimming); each group sits whole in one fold.
    var duplicateGroups: Int
    /// Rows that belong to such groups.
    var duplicateRows: Int
    /// Duplicate groups whose rows carry both labels. They are kept together too; their labels are
    /// left as the file has them.
    var conflictingGroups: Int

    /// One line per fold, for the log.
    var lines: [String] {
        folds.enumerated().map { index, fold in
            "fold \(index + 1): validation \(fold.validationSize) (\(fold.validationPositives) positive), "
                + "train \(fold.trainSize) (\(fold.trainPositives) positive), \(fold.duplicateGroups) duplicate groups kept together"
        } + ["\(duplicateGroups) repeated texts (\(duplicateRows) rows) each kept in one fold; \(conflictingGroups) of them with conflicting labels"]
    }
}

/// Cross-validation folds in which identical texts never straddle a split.
///
/// The bundled data repeats 468 texts (1,008 rows); a split that puts one copy in training and
/// another in validation grades the model on what it memorised. So rows are first grouped by their
/// text (Unicode NFC, surrounding whitespace trimmed), and whole groups are dealt to folds: the
/// largest groups first (they are the hardest to balance), then the single rows, each to the fold
/// that is furthest behind its share of that class. Order among equal sizes comes from the seed.
/// With single rows to fill the gaps, every fold's count of each class ends within one of the others.
enum Folds {
    /// `k` folds; fold `i`'s validation part is `splits[i].validation`, the rest is its training part.
    static func kFold(texts: [String], labels: [Int], k: Int, stratification: StratificationType,
                      seed: UInt64) throws -> (splits: [FoldSplit], report: FoldReport) {
        precondition(texts.count == labels.count, "Folds: \(texts.count) texts but \(labels.count) labels")
        guard k >= 2 else { throw DatasetError(file: "--num_folds", problem: "needs at least 2 folds, got \(k)") }
        let groups = groupIdenticalTexts(texts)
        guard groups.count >= k else {
            throw DatasetError(file: "--num_folds", problem: "\(k) folds need at least \(k) distinct texts, the data has \(groups.count)")
        }
        let weights = [Double](repeating: 1.0 / Double(k), count: k)
        var random = SplitMix64(seed: seed, stream: .folds)
        let binOfGroup = deal(groups: groups, labels: labels, weights: weights,
                              stratified: stratification == .binary, random: &random)
        var binOfRow = [Int](repeating: 0, count: texts.count)
        for (group, bin) in zip(groups, binOfGroup) { for row in group { binOfRow[row] = bin } }

        let splits = (0..<k).map { fold in
            FoldSplit(train: texts.indices.filter { binOfRow[$0] != fold },
                      validation: texts.indices.filter { binOfRow[$0] == fold })
        }
        let report = makeReport(splits: splits, groups: groups, binOfGroup: binOfGroup, labels: labels)
        return (splits, report)
    }

    /// One training / held-out split with `heldOutFraction` of the rows (stratified if asked), with the
    /// same grouping of identical texts. For stages that need a fixed evaluation set.
    static func heldOut(texts: [String], labels: [Int], heldOutFraction: Double, stratification: StratificationType,
                        seed: UInt64) throws -> FoldSplit {
        precondition(texts.count == labels.count, "Folds: \(texts.count) texts but \(labels.count) labels")
        guard heldOutFraction > 0 && heldOutFraction < 1 else {
            throw DatasetError(file: "held-out fraction", problem: "must lie in (0, 1), got \(heldOutFraction)")
        }
        let groups = groupIdenticalTexts(texts)
        guard groups.count >= 2 else {
            throw DatasetError(file: "held-out split", problem: "needs at least 2 distinct texts, the data has \(groups.count)")
        }
        var random = SplitMix64(seed: seed, stream: .heldOut)
        let binOfGroup = deal(groups: groups, labels: labels, weights: [1 - heldOutFraction, heldOutFraction],
                              stratified: stratification == .binary, random: &random)
        var train: [Int] = [], heldOut: [Int] = []
        for (group, bin) in zip(groups, binOfGroup) {
            if bin == 0 { train += group } else { heldOut += group }
        }
        return FoldSplit(train: train.sorted(), validation: heldOut.sorted())
    }

    /// The key under which texts count as identical: Unicode NFC (about 5,600 bundled texts are not
    /// in NFC, so the same words can arrive as different code points) with surrounding whitespace
    /// removed.
    static func duplicateKey(_ text: String) -> String {
        text.precomposedStringWithCanonicalMapping.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Row indices grouped by `duplicateKey`, groups in order of first appearance.
    static func groupIdenticalTexts(_ texts: [String]) -> [[Int]] {
        var groupOfKey: [String: Int] = [:]
        var groups: [[Int]] = []
        for (row, text) in texts.enumerated() {
            let key = duplicateKey(text)
            if let group = groupOfKey[key] {
                groups[group].append(row)
            } else {
                groupOfKey[key] = groups.count
                groups.append([row])
            }
        }
        return groups
    }

    /// Deals groups to bins whose target shares are `weights`; returns the bin of each group.
    ///
    /// A group goes to the bin whose fill, measured against its target share of the classes the group
    /// holds, is lowest; ties go to the bin with the lowest fill overall, then the lowest index.
    private static func deal(groups: [[Int]], labels: [Int], weights: [Double], stratified: Bool,
                             random: inout SplitMix64) -> [Int] {
        // Classes: 0 and 1 when stratified; a single class 0 otherwise.
        let classCount = stratified ? 2 : 1
        func classOf(_ row: Int) -> Int { stratified ? labels[row] : 0 }
        var classTotals = [Double](repeating: 0, count: classCount)
        for group in groups { for row in group { classTotals[classOf(row)] += 1 } }

        // Shuffle first, then a stable sort by size: equal sizes stay in seeded random order.
        let order = random.shuffled(Array(groups.indices))
            .enumerated()
            .sorted { a, b in
                groups[a.element].count != groups[b.element].count
                    ? groups[a.element].count > groups[b.element].count
                    : a.offset < b.offset
            }
            .map(\.element)

        let bins = weights.count
        var filled = [[Double]](repeating: [Double](repeating: 0, count: classCount), count: bins)
        var binOfGroup = [Int](repeating: 0, count: groups.count)
        for groupIndex in order {
            var members = [Double](repeating: 0, count: classCount)
            for row in groups[groupIndex] { members[classOf(row)] += 1 }
            var best = 0
            var bestKey = (Double.infinity, Double.infinity)
            for bin in 0..<bins {
                // Fill of this bin relative to its share, for the classes in the group (weighted by
                // how many of the group's rows are of each class), then overall.
                var classFill = 0.0
                for c in 0..<classCount where members[c] > 0 {
                    classFill += members[c] * filled[bin][c] / (weights[bin] * classTotals[c])
                }
                let overall = filled[bin].reduce(0, +) / weights[bin]
                let key = (classFill, overall)
                if key < bestKey { bestKey = key; best = bin }
            }
            binOfGroup[groupIndex] = best
            for c in 0..<classCount { filled[best][c] += members[c] }
        }
        return binOfGroup
    }

    private static func makeReport(splits: [FoldSplit], groups: [[Int]], binOfGroup: [Int], labels: [Int]) -> FoldReport {
        var duplicatesPerFold = [Int](repeating: 0, count: splits.count)
        var duplicateGroups = 0, duplicateRows = 0, conflicting = 0
        for (group, bin) in zip(groups, binOfGroup) where group.count > 1 {
            duplicateGroups += 1
            duplicateRows += group.count
            duplicatesPerFold[bin] += 1
            let positives = group.reduce(0) { $0 + labels[$1] }
            if positives > 0 && positives < group.count { conflicting += 1 }
        }
        let folds = splits.enumerated().map { index, split in
            FoldReport.Fold(trainSize: split.train.count,
                            trainPositives: split.train.reduce(0) { $0 + labels[$1] },
                            validationSize: split.validation.count,
                            validationPositives: split.validation.reduce(0) { $0 + labels[$1] },
                            duplicateGroups: duplicatesPerFold[index])
        }
        return FoldReport(folds: folds, duplicateGroups: duplicateGroups, duplicateRows: duplicateRows,
                          conflictingGroups: conflicting)
    }
}
