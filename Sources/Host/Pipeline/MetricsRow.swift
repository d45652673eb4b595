/// Classification metrics in the form the result files store and a resumed run reads back.
struct MetricsRow: Codable, Sendable, Equatable {
    var threshold: Double
    var accuracy: Double
    var precision: Double
    var recall: Double
    var f1: Double
    var macroF1: Double
    var negativePrecision: Double
    var negativeRecall: Double
    var negativeF1: Double
    var rocAUC: Double?

    init(_ metrics: ClassificationMetrics) {
        threshold = metrics.threshold
        accuracy = metrics.accuracy
        precision = metrics.precision
        recall = metrics.recall
        f1 = metrics.f1
        macroF1 = metrics.macroF1
        negativePrecision = metrics.negativePrecision
        negativeRecall = metrics.negativeRecall
        negativeF1 = metrics.negativeF1
        rocAUC = metrics.rocAUC
    }

    static let csvHeader = ["threshold", "accuracy", "precision", "recall", "f1", "macro_f1",
                            "negative_precision", "negative_recall", "negative_f1", "roc_auc"]

    var csvFields: [String] {
        [CSVOutput.number(threshold, decimals: 4), CSVOutput.number(accuracy), CSVOutput.number(precision),
         CSVOutput.number(recall), CSVOutput.number(f1), CSVOutput.number(macroF1), CSVOutput.number(negativePrecision),
         CSVOutput.number(negativeRecall), CSVOutput.number(negativeF1), CSVOutput.number(rocAUC)]
    }

    var mlflowMetrics: [String: Double] {
        var metrics = ["accuracy": accuracy, "precision": precision, "recall": recall, "f1": f1, "macro_f1": macroF1,
                       "negative_precision": negativePrecision, "negative_recall": negativeRecall,
                       "negative_f1": negativeF1, "threshold": threshold]
        if let rocAUC { metrics["roc_auc"] = rocAUC }
        return metrics
    }
}
