import Testing
@testable import Host

@Suite("Classification metrics and threshold search")
struct MetricsTests {
    // Printed by scripts/fixtures/metrics_reference.py with scikit-learn 1.9.1.
    static let labels = [0, 0, 1, 1, 0, 1, 1, 1, 0, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1, 1, 0, 1, 1, 0]
    static let probabilities: [Float] = [40 / 64, 28 / 64, 28 / 64, 60 / 64, 36 / 64, 36 / 64, 60 / 64, 32 / 64, 28 / 64, 4 / 64, 36 / 64, 12 / 64, 60 / 64, 28 / 64, 8 / 64, 40 / 64, 40 / 64, 44 / 64, 4 / 64, 44 / 64, 20 / 64, 4 / 64, 40 / 64, 44 / 64, 36 / 64, 36 / 64, 56 / 64, 48 / 64, 28 / 64, 36 / 64, 28 / 64, 44 / 64, 16 / 64, 12 / 64, 24 / 64, 24 / 64, 28 / 64, 48 / 64, 36 / 64, 20 / 64]
    static let sklearnAUC = 0.8686868686868687
    /// threshold: accuracy, precision, recall, f1, negative precision, recall, f1, macro-F1
    static let sklearnRows: [(Double, [Double])] = [
        (0.3, [0.725, 0.6666666666666666, 1.0, 0.8, 1.0, 0.3888888888888889, 0.56, 0.68]),
        (0.35, [0.775, 0.7096774193548387, 1.0, 0.8301886792452831, 1.0, 0.5, 0.6666666666666666, 0.7484276729559749]),
        (0.4, [0.725, 0.6896551724137931, 0.9090909090909091, 0.7843137254901961, 0.8181818181818182, 0.5, 0.6206896551724138, 0.7025016903313049]),
        (0.45, [0.8, 0.8181818181818182, 0.8181818181818182, 0.8181818181818182, 0.7777777777777778, 0.7777777777777778, 0.7777777777777778, 0.797979797979798]),
        (0.5, [0.775, 0.8095238095238095, 0.7727272727272727, 0.7906976744186046, 0.7368421052631579, 0.7777777777777778, 0.7567567567567568, 0.7737272155876807]),
        (0.55, [0.775, 0.8095238095238095, 0.7727272727272727, 0.7906976744186046, 0.7368421052631579, 0.7777777777777778, 0.7567567567567568, 0.7737272155876807]),
        (0.6, [0.7, 0.8571428571428571, 0.5454545454545454, 0.6666666666666666, 0.6153846153846154, 0.8888888888888888, 0.7272727272727273, 0.696969696969697]),
    ]

    private func values(_ m: ClassificationMetrics) -> [Double] {
        [m.accuracy, m.precision, m.recall, m.f1, m.negativePrecision, m.negativeRecall, m.negativeF1, m.macroF1]
    }

    private func close(_ a: [Double], _ b: [Double]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) < 1e-12 }
    }

    @Test("a hand-computed example: 3 TP, 1 FP, 3 TN, 1 FN at 0.5")
    func handExample() {
        let m = ClassificationMetrics(probabilities: [0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.2, 0.1],
                                      labels: [1, 1, 0, 1, 0, 1, 0, 0], threshold: 0.5)
        #expect(m.counts == ConfusionCounts(truePositives: 3, falsePositives: 1, trueNegatives: 3, falseNegatives: 1))
        #expect(values(m) == [0.75, 0.75, 0.75, 0.75, 0.75, 0.75, 0.75, 0.75])
        // Positives rank 8, 7, 5, 3 of 8: (23 - 4·5/2) / (4·4) = 13/16.
        #expect(m.rocAUC == 13.0 / 16.0)
    }

    @Test("nothing predicted positive gives zero precision, recall and F1, as sklearn's zero_division=0")
    func zeroDivision() {
        let m = ClassificationMetrics(probabilities: [0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.2, 0.1],
                                      labels: [1, 1, 0, 1, 0, 1, 0, 0], threshold: 0.95)
        #expect(m.precision == 0 && m.recall == 0 && m.f1 == 0)
        #expect(m.accuracy == 0.5)
        #expect(m.negativePrecision == 0.5 && m.negativeRecall == 1)
        #expect(abs(m.negativeF1 - 2.0 / 3.0) < 1e-15)
        #expect(abs(m.macroF1 - 1.0 / 3.0) < 1e-15)
    }

    @Test("a probability equal to the threshold counts as not hate (the seed framework's > rule)")
    func strictThreshold() {
        let m = ClassificationMetrics(probabilities: [0.5, 0.5], labels: [1, 0], threshold: 0.5)
        #expect(m.counts == ConfusionCounts(truePositives: 0, falsePositives: 0, trueNegatives: 1, falseNegatives: 1))
    }

    @Test("ROC-AUC with tied scores counts each tied pair as one half, like sklearn")
    func aucTies() {
        #expect(Metrics.rocAUC(scores: [0.1, 0.4, 0.35, 0.8], labels: [0, 0, 1, 1]) == 0.75)
        // Positive 0.6 beats negative 0.2 and ties negative 0.6 (½); positive 0.9 beats both: 3.5 / 4.
        #expect(Metrics.rocAUC(scores: [0.2, 0.6, 0.6, 0.9], labels: [0, 0, 1, 1]) == 0.875)
        #expect(Metrics.rocAUC(scores: [0.5, 0.5, 0.5, 0.5], labels: [0, 1, 0, 1]) == 0.5)
        #expect(Metrics.rocAUC(scores: [0.3, 0.7], labels: [1, 1]) == nil)
        #expect(Metrics.rocAUC(scores: [.nan, 0.7], labels: [0, 1]) == nil)
    }

    @Test("every metric at every swept threshold matches scikit-learn on a 40-row sample with ties")
    func matchesSklearn() {
        let result = ThresholdSearch.search(probabilities: Self.probabilities, labels: Self.labels)
        #expect(result.sweep.map(\.threshold) == Self.sklearnRows.map(\.0))
        for (row, (threshold, expected)) in zip(result.sweep, Self.sklearnRows) {
            #expect(close(values(row), expected), "threshold \(threshold): \(values(row)) vs \(expected)")
            #expect(abs(row.rocAUC! - Self.sklearnAUC) < 1e-12)
        }
    }

    @Test("the sweep picks 0.45 and the best cut lies halfway between 28/64 and 32/64, as a brute force in Python found")
    func searchOnSample() {
        let result = ThresholdSearch.search(probabilities: Self.probabilities, labels: Self.labels)
        #expect(result.bestOfSweep.threshold == 0.45)
        #expect(result.bestCut.threshold == 0.46875)
        #expect(abs(result.bestCut.macroF1 - 0.797979797979798) < 1e-12)
    }

    @Test("the best cut finds a threshold outside the seed's sweep when that is better")
    func cutOutsideSweep() {
        let probabilities: [Float] = [0.9, 0.85, 0.8, 0.75, 0.7, 0.2, 0.1]
        let labels = [1, 1, 1, 0, 0, 0, 0]
        let result = ThresholdSearch.search(probabilities: probabilities, labels: labels)
        #expect(result.bestCut.macroF1 == 1)
        #expect(abs(result.bestCut.threshold - 0.775) < 1e-7)
        #expect(result.bestOfSweep.macroF1 < 0.75)
    }

    @Test("the best cut equals a brute-force search over all midpoints")
    func bruteForce() {
        var random = SplitMix64(seed: 5)
        for _ in 0..<20 {
            let n = 5 + random.below(60)
            let labels = (0..<n).map { _ in random.below(2) }
            let probabilities = labels.map { Float(random.below(20) + 10 * $0) / 30 }
            let best = ThresholdSearch.bestCut(probabilities: probabilities, labels: labels, rocAUC: nil)
            let distinct = Set(probabilities).sorted()
            let bruteBest = zip(distinct, distinct.dropFirst())
                .map { ClassificationMetrics(probabilities: probabilities, labels: labels, threshold: (Double($0) + Double($1)) / 2).macroF1 }
                .max() ?? best.macroF1
            #expect(abs(best.macroF1 - bruteBest) < 1e-12)
            #expect(abs(ClassificationMetrics(probabilities: probabilities, labels: labels, threshold: best.threshold).macroF1 - best.macroF1) < 1e-12)
        }
    }

    @Test("all-equal probabilities fall back to the 0.5 threshold")
    func noCut() {
        let best = ThresholdSearch.bestCut(probabilities: [0.3, 0.3, 0.3], labels: [0, 1, 0], rocAUC: 0.5)
        #expect(best.threshold == 0.5)
    }
}
