import Foundation

/// How a row of logits answers "is this hate speech": the one place that turns a head's logits into
/// the binary logit z and the probability σ(z) that every evaluation, threshold search, distillation
/// target, calibration and export reads.
///
/// A head has one logit (sigmoid: z = l₀) or two (softmax, the positive class at index 1:
/// z = l₁ − l₀, because softmax(l)[1] = e^l₁ / (e^l₀ + e^l₁) = σ(l₁ − l₀)). Cross-entropy on two
/// logits is BCE on that z: −log softmax(l)[y] = BCE(σ(z), y), and its gradient is
/// ∂/∂l₁ = σ(z) − y = ∂BCE/∂z, ∂/∂l₀ = −(σ(z) − y), so every loss written for one logit trains a
/// two-label head through `logitGradients`. A teacher's z is what a one-logit student learns.
///
/// Sankshep keeps the positive class of a two-label head at index 1; a checkpoint whose `id2label`
/// says otherwise is loaded with its two rows swapped (`positiveIndex`).
enum BinaryReadout {
    /// The labels a head may have.
    static let supportedLabels = 1...2

    /// z per row, from logits (B, labels) row-major.
    static func binaryLogits(_ logits: [Float], labels: Int) -> [Float] {
        guard labels == 2 else { return logits }
        return (0..<(logits.count / 2)).map { logits[2 * $0 + 1] - logits[2 * $0] }
    }

    /// σ(z) per row: the probability of hate speech.
    static func probabilities(_ logits: [Float], labels: Int) -> [Float] {
        binaryLogits(logits, labels: labels).map(probability)
    }

    /// σ(z), computed as the losses compute it.
    static func probability(_ z: Float) -> Float { Float(Losses.sigmoid(Double(z))) }

    /// dLoss/dLogits (B, labels) from dLoss/dz (B).
    static func logitGradients(_ binaryGradients: [Float], labels: Int) -> [Float] {
        guard labels == 2 else { return binaryGradients }
        return binaryGradients.flatMap { [-$0, $0] }
    }

    /// Which index of a two-label head's `id2label` is the positive (hate speech) class.
    ///
    /// The rule: index 1, unless the name of index 1 is a negative one and the name of index 0 is
    /// not; then index 0. A name is negative when, lowercased, it starts with "not", "non" or "no"
    /// followed by a separator or the end ("not hate", "non-hate", "nonhate", "no_hate", "NOT"),
    /// or is one of "0", "false", "negative", "normal", "neutral", "clean", "none", "safe".
    /// So `{"0": "not hate", "1": "hate"}`, `LABEL_0`/`LABEL_1` and no `id2label` at all give 1;
    /// `{"0": "hate", "1": "not hate"}` gives 0.
    static func positiveIndex(id2label names: [Int: String]) -> Int {
        guard let zero = names[0], let one = names[1] else { return 1 }
        return isNegativeName(one) && !isNegativeName(zero) ? 0 : 1
    }

    static func isNegativeName(_ name: String) -> Bool {
        let lowered = name.trimmingCharacters(in: .whitespaces).lowercased()
        if ["0", "false", "negative", "normal", "neutral", "clean", "none", "safe"].contains(lowered) { return true }
        if lowered.hasPrefix("non") { return true }
        for prefix in ["not", "no"] where lowered.hasPrefix(prefix) {
            guard let next = lowered.dropFirst(prefix.count).first else { return true }
            if !(next.isLetter || next.isNumber) { return true }
        }
        return false
    }
}
