import Foundation

/// A loss value and its gradient with respect to the logits it was computed from.
struct LossResult: Sendable, Equatable {
    let loss: Float
    /// dLoss/dLogits, same count and layout as the logits.
    let gradient: [Float]
    /// Extra gradients on the model's hidden states (index → (B, T, H)), for losses that read more than
    /// the logits (hidden-state distillation); see `SequenceClassifier.backward`.
    var hiddenStateGradients: [Int: [Float]] = [:]
    /// Extra gradients on attention probabilities (layer → (B, heads, T, T)), for attention distillation.
    var attentionProbabilityGradients: [Int: [Float]] = [:]
}

/// Losses on binary (sigmoid) logits, each returning its value and dLoss/dLogits.
///
/// Logits are laid out (N, L) row-major (`num_labels` L is 1 in the pipeline, so usually just (N,)).
/// Every loss is the mean over all N·L elements, as PyTorch's default `reduction="mean"`. Element-wise
/// work is done in Double on numerically stable forms (log-sigmoid, never log(sigmoid)), so ±100 logits
/// give finite losses and exact zero-or-one gradients.
enum Losses {
    /// `nn.BCEWithLogitsLoss(pos_weight=...)`: per element
    /// `(1 − y)·x − (1 + (w − 1)·y) · log σ(x)`, with `w` the positive-class weight of the element's label.
    ///
    /// - Parameter positiveWeights: one weight for every label, or one per label (PyTorch broadcasts
    ///   `pos_weight` along the last dimension). `[1]` is the unweighted loss.
    static func binaryCrossEntropyWithLogits(logits: [Float], labels: [Float], positiveWeights: [Float] = [1]) -> LossResult {
        precondition(logits.count == labels.count, "BCE: \(logits.count) logits but \(labels.count) labels")
        precondition(!positiveWeights.isEmpty && logits.count % positiveWeights.count == 0,
                     "BCE: \(positiveWeights.count) positive weights do not divide \(logits.count) logits")
        let n = Double(max(logits.count, 1))
        var total = 0.0
        var gradient = [Float](repeating: 0, count: logits.count)
        for i in logits.indices {
            let x = Double(logits[i]), y = Double(labels[i])
            let logWeight = 1 + (Double(positiveWeights[i % positiveWeights.count]) - 1) * y
            total += (1 - y) * x - logWeight * logSigmoid(x)
            // d/dx: (1 − y) − logWeight · (1 − σ(x)), and 1 − σ(x) = σ(−x) without cancellation.
            gradient[i] = Float(((1 - y) - logWeight * sigmoid(-x)) / n)
        }
        return LossResult(loss: Float(total / n), gradient: gradient)
    }

    /// Binary focal loss on logits (Lin et al. 2017), as torchvision's `sigmoid_focal_loss` with
    /// `reduction="mean"`: per element `α_t · (1 − p_t)^γ · BCE(x, y)` with `p = σ(x)`,
    /// `p_t = p·y + (1 − p)·(1 − y)` and `α_t = α·y + (1 − α)·(1 − y)`. A negative `alpha` turns the
    /// class weighting off (`α_t = 1`), as in torchvision.
    static func focal(logits: [Float], labels: [Float], alpha: Float = 0.25, gamma: Float = 2) -> LossResult {
        precondition(logits.count == labels.count, "focal loss: \(logits.count) logits but \(labels.count) labels")
        precondition(gamma >= 0, "focal loss: gamma must not be negative, got \(gamma)")
        let n = Double(max(logits.count, 1))
        let a = Double(alpha), g = Double(gamma)
        var total = 0.0
        var gradient = [Float](repeating: 0, count: logits.count)
        for i in logits.indices {
            let x = Double(logits[i]), y = Double(labels[i])
            let p = sigmoid(x), q = sigmoid(-x)                 // q = 1 − p, computed without cancellation
            let crossEntropy = (1 - y) * x - logSigmoid(x)
            let oneMinusPt = p * (1 - y) + q * y
            let modulator = Foundation.pow(oneMinusPt, g)
            let alphaT = a >= 0 ? a * y + (1 - a) * (1 - y) : 1
            total += alphaT * modulator * crossEntropy
            // d(1 − p_t)/dx = p·q·(1 − 2y); d modulator/dx = γ·(1 − p_t)^(γ−1) · that, written as
            // γ·modulator/(1 − p_t) so that γ < 1 stays finite; it is 0 where 1 − p_t is 0 (then p·q = 0).
            let modulatorSlope = oneMinusPt > 0 ? g * modulator / oneMinusPt * p * q * (1 - 2 * y) : 0
            gradient[i] = Float(alphaT * (modulator * (p - y) + modulatorSlope * crossEntropy) / n)
        }
        return LossResult(loss: Float(total / n), gradient: gradient)
    }

    /// The soft distillation loss for a single-logit binary head: the KL divergence
    /// `KL(p_teacher ‖ p_student)` between the two Bernoulli distributions `σ(z/T)`, mean over elements.
    ///
    /// The gradient with respect to the student's logits is `(σ(z_s/T) − σ(z_t/T)) / (T·N)`. The caller
    /// multiplies by T² (Hinton et al.) when mixing with the hard loss: `α·T²·soft + (1 − α)·hard`.
    static func binaryKLDivergence(studentLogits: [Float], teacherLogits: [Float], temperature: Float) -> LossResult {
        precondition(studentLogits.count == teacherLogits.count,
                     "KD: \(studentLogits.count) student logits but \(teacherLogits.count) teacher logits")
        precondition(temperature > 0, "KD: temperature must be positive, got \(temperature)")
        let n = Double(max(studentLogits.count, 1))
        let t = Double(temperature)
        var total = 0.0
        var gradient = [Float](repeating: 0, count: studentLogits.count)
        for i in studentLogits.indices {
            let s = Double(studentLogits[i]) / t, r = Double(teacherLogits[i]) / t
            let pTeacher = sigmoid(r)
            // p·(log p − log p_s) + (1 − p)·(log(1 − p) − log(1 − p_s)), all logs as log-sigmoids.
            total += pTeacher * (logSigmoid(r) - logSigmoid(s)) + sigmoid(-r) * (logSigmoid(-r) - logSigmoid(-s))
            gradient[i] = Float((sigmoid(s) - pTeacher) / (t * n))
        }
        return LossResult(loss: Float(total / n), gradient: gradient)
    }

    /// Mean squared error between student and teacher logits (the logit-matching KD option):
    /// `mean((z_s − z_t)²)`, gradient `2·(z_s − z_t)/N`.
    static func logitMeanSquaredError(studentLogits: [Float], teacherLogits: [Float]) -> LossResult {
        precondition(studentLogits.count == teacherLogits.count,
                     "KD: \(studentLogits.count) student logits but \(teacherLogits.count) teacher logits")
        let n = Double(max(studentLogits.count, 1))
        var total = 0.0
        var gradient = [Float](repeating: 0, count: studentLogits.count)
        for i in studentLogits.indices {
            let difference = Double(studentLogits[i]) - Double(teacherLogits[i])
            total += difference * difference
            gradient[i] = Float(2 * difference / n)
        }
        return LossResult(loss: Float(total / n), gradient: gradient)
    }

    // MARK: - Stable pieces

    /// σ(x) without overflow for large |x|.
    static func sigmoid(_ x: Double) -> Double {
        if x >= 0 { return 1 / (1 + Foundation.exp(-x)) }
        let e = Foundation.exp(x)
        return e / (1 + e)
    }

    /// log σ(x) = −softplus(−x), finite for every finite x.
    static func logSigmoid(_ x: Double) -> Double {
        x >= 0 ? -Foundation.log1p(Foundation.exp(-x)) : x - Foundation.log1p(Foundation.exp(x))
    }
}
