/// Where to cut the probability into hate / not hate, searched after every stage.
///
/// Two answers are reported: the seed framework's sweep (0.30 to 0.60 by 0.05, best macro-F1), which
/// users compare with their earlier runs, and the best cut over every distinct probability, which is
/// the best any threshold can do on these rows. A cut lies halfway between two neighbouring distinct
/// probabilities, so it does not sit on a validation score and carries over to new data unchanged
/// whether one reads the rule as `>` or `>=`.
enum ThresholdSearch {
    /// 0.30, 0.35, …, 0.60, computed from integers so no rounding creeps in.
    static let seedSweep: [Double] = (0...6).map { Double(30 + 5 * $0) / 100 }

    struct Result: Sendable, Equatable {
        /// One row per swept threshold, in sweep order.
        var sweep: [ClassificationMetrics]
        /// The sweep row with the highest macro-F1 (the lowest threshold among equals).
        var bestOfSweep: ClassificationMetrics
        /// The best cut over all distinct probabilities (the one nearest 0.5 among equals).
        var bestCut: ClassificationMetrics
    }

    static func search(probabilities: [Float], labels: [Int], sweep: [Double] = seedSweep) -> Result {
        precondition(!sweep.isEmpty, "ThresholdSearch: the sweep needs at least one threshold")
        precondition(probabilities.count == labels.count, "ThresholdSearch: \(probabilities.count) probabilities but \(labels.count) labels")
        let auc = Metrics.rocAUC(scores: probabilities, labels: labels)
        let rows = sweep.map { threshold in
            ClassificationMetrics(counts: ConfusionCounts(probabilities: probabilities, labels: labels, threshold: threshold),
                                  threshold: threshold, rocAUC: auc)
        }
        var bestOfSweep = rows[0]
        for row in rows.dropFirst() where row.macroF1 > bestOfSweep.macroF1 { bestOfSweep = row }
        return Result(sweep: rows, bestOfSweep: bestOfSweep, bestCut: bestCut(probabilities: probabilities, labels: labels, rocAUC: auc))
    }

    /// Walks the distinct probabilities from the top down, moving one tied block at a time from
    /// "predicted not hate" to "predicted hate", so every cut costs O(1) after an O(n log n) sort.
    static func bestCut(probabilities: [Float], labels: [Int], rocAUC: Double?) -> ClassificationMetrics {
        let order = probabilities.indices.filter { !probabilities[$0].isNaN }.sorted { probabilities[$0] > probabilities[$1] }
        let positives = labels.reduce(0) { $0 + ($1 == 1 ? 1 : 0) }
        // Start with everything predicted negative.
        var counts = ConfusionCounts(truePositives: 0, falsePositives: 0,
                                     trueNegatives: labels.count - positives, falseNegatives: positives)
        var best: ClassificationMetrics?
        var start = 0
        while start < order.count {
            let value = probabilities[order[start]]
            var end = start
            while end < order.count && probabilities[order[end]] == value {
                if labels[order[end]] == 1 {
                    counts.truePositives += 1; counts.falseNegatives -= 1
                } else {
                    counts.falsePositives += 1; counts.trueNegatives -= 1
                }
                end += 1
            }
            guard end < order.count else { break }   // below the lowest value every row is positive: no cut
            let threshold = (Double(value) + Double(probabilities[order[end]])) / 2
            let candidate = ClassificationMetrics(counts: counts, threshold: threshold, rocAUC: rocAUC)
            if let current = best {
                if candidate.macroF1 > current.macroF1
                    || (candidate.macroF1 == current.macroF1 && abs(threshold - 0.5) < abs(current.threshold - 0.5)) {
                    best = candidate
                }
            } else {
                best = candidate
            }
            start = end
        }
        // All probabilities equal: no cut separates anything; fall back to 0.5.
        return best ?? ClassificationMetrics(counts: ConfusionCounts(probabilities: probabilities, labels: labels, threshold: 0.5),
                                             threshold: 0.5, rocAUC: rocAUC)
    }
}
