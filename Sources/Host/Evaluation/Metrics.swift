/// Counts of a binary decision against the truth.
struct ConfusionCounts: Sendable, Equatable, Codable {
    var truePositives = 0
    var falsePositives = 0
    var trueNegatives = 0
    var falseNegatives = 0

    var count: Int { truePositives + falsePositives + trueNegatives + falseNegatives }

    /// A comment is called hate when its probability is *above* the threshold, as the seed framework
    /// does (`probs > threshold`).
    init(probabilities: [Float], labels: [Int], threshold: Double) {
        precondition(probabilities.count == labels.count, "Metrics: \(probabilities.count) probabilities but \(labels.count) labels")
        for (probability, label) in zip(probabilities, labels) {
            let predicted = Double(probability) > threshold
            switch (predicted, label == 1) {
            case (true, true): truePositives += 1
            case (true, false): falsePositives += 1
            case (false, false): trueNegatives += 1
            case (false, true): falseNegatives += 1
            }
        }
    }

    init(truePositives: Int, falsePositives: Int, trueNegatives: Int, falseNegatives: Int) {
        self.truePositives = truePositives
        self.falsePositives = falsePositives
        self.trueNegatives = trueNegatives
        self.falseNegatives = falseNegatives
    }
}

/// The evaluation of a binary classifier at one threshold: the numbers the seed framework reports,
/// with scikit-learn's definitions and its `zero_division=0` convention (a ratio whose denominator is
/// zero counts as 0).
struct ClassificationMetrics: Sendable, Equatable, Codable {
    var threshold: Double
    var counts: ConfusionCounts
    var accuracy: Double
    /// Of the hate class (label 1).
    var precision: Double
    var recall: Double
    var f1: Double
    /// Of the not-hate class (label 0).
    var negativePrecision: Double
    var negativeRecall: Double
    var negativeF1: Double
    /// Mean of the two classes' F1.
    var macroF1: Double
    /// Threshold-free; nil when the labels hold only one class (scikit-learn raises there).
    var rocAUC: Double?

    init(probabilities: [Float], labels: [Int], threshold: Double) {
        let counts = ConfusionCounts(probabilities: probabilities, labels: labels, threshold: threshold)
        self.init(counts: counts, threshold: threshold, rocAUC: Metrics.rocAUC(scores: probabilities, labels: labels))
    }

    /// From counts alone (the threshold search calls this for every cut, with the AUC computed once).
    init(counts: ConfusionCounts, threshold: Double, rocAUC: Double?) {
        self.threshold = threshold
        self.counts = counts
        let c = counts
        accuracy = Metrics.ratio(c.truePositives + c.trueNegatives, c.count)
        precision = Metrics.ratio(c.truePositives, c.truePositives + c.falsePositives)
        recall = Metrics.ratio(c.truePositives, c.truePositives + c.falseNegatives)
        f1 = Metrics.f1(truePositives: c.truePositives, falsePositives: c.falsePositives, falseNegatives: c.falseNegatives)
        negativePrecision = Metrics.ratio(c.trueNegatives, c.trueNegatives + c.falseNegatives)
        negativeRecall = Metrics.ratio(c.trueNegatives, c.trueNegatives + c.falsePositives)
        negativeF1 = Metrics.f1(truePositives: c.trueNegatives, falsePositives: c.falseNegatives, falseNegatives: c.falsePositives)
        macroF1 = (f1 + negativeF1) / 2
        self.rocAUC = rocAUC
    }
}

enum Metrics {
    /// a / b, or 0 when b is 0 (scikit-learn's `zero_division=0`).
    static func ratio(_ a: Int, _ b: Int) -> Double { b == 0 ? 0 : Double(a) / Double(b) }

    /// F1 as scikit-learn computes it, 2·TP / (2·TP + FP + FN), which is 0 (not NaN) when the class
    /// is neither present nor predicted.
    static func f1(truePositives tp: Int, falsePositives fp: Int, falseNegatives fn: Int) -> Double {
        ratio(2 * tp, 2 * tp + fp + fn)
    }

    /// Area under the ROC curve by the Mann–Whitney U statistic: the chance that a random positive
    /// scores above a random negative, ties counting one half. Tied scores get the average of their
    /// ranks, which equals the trapezoidal area scikit-learn's `roc_auc_score` computes. nil when
    /// either class is absent, or a score is NaN (a diverged model has no ranking).
    static func rocAUC(scores: [Float], labels: [Int]) -> Double? {
        precondition(scores.count == labels.count, "Metrics: \(scores.count) scores but \(labels.count) labels")
        guard !scores.contains(where: \.isNaN) else { return nil }
        let positives = labels.reduce(0) { $0 + ($1 == 1 ? 1 : 0) }
        let negatives = labels.count - positives
        guard positives > 0, negatives > 0 else { return nil }
        let order = scores.indices.sorted { scores[$0] < scores[$1] }
        // Sum of the (1-based, tie-averaged) ranks of the positives.
        var positiveRankSum = 0.0
        var start = 0
        while start < order.count {
            var end = start
            while end + 1 < order.count && scores[order[end + 1]] == scores[order[start]] { end += 1 }
            let averageRank = Double(start + end + 2) / 2
            for k in start...end where labels[order[k]] == 1 { positiveRankSum += averageRank }
            start = end + 1
        }
        let p = Double(positives), n = Double(negatives)
        return (positiveRankSum - p * (p + 1) / 2) / (p * n)
    }
}
