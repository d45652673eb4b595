import Foundation
import Kernels

/// How the student's logit is compared with the teacher's.
enum SoftLoss: String, Sendable, CaseIterable {
    /// KL divergence between the tempered sigmoids σ(z/T) of teacher and student, scaled by T².
    case binaryKL = "kl"
    /// Mean squared error between the raw logits (no temperature, so no T²).
    case logitMSE = "mse"
}

/// Which student hidden state is compared with which teacher hidden state, and which layers' attention.
struct LayerMapping: Sendable, Equatable {
    /// (student hidden index, teacher hidden index): index i is the output of layer i (1-based).
    let hiddenStates: [(student: Int, teacher: Int)]
    /// (student layer, teacher layer), from 0.
    let attentionLayers: [(student: Int, teacher: Int)]

    /// Student layer i (1…Ls) reads teacher layer round(i·Lt/Ls): the last layers always meet, and a
    /// student half as deep as its teacher meets every other teacher layer.
    static func uniform(studentLayers: Int, teacherLayers: Int) -> LayerMapping {
        let pairs = (1...max(studentLayers, 1)).map { i in
            (student: i, teacher: max(1, min(teacherLayers, Int((Double(i) * Double(teacherLayers) / Double(studentLayers)).rounded()))))
        }
        return LayerMapping(hiddenStates: pairs, attentionLayers: pairs.map { ($0.student - 1, $0.teacher - 1) })
    }

    static func == (lhs: LayerMapping, rhs: LayerMapping) -> Bool {
        lhs.hiddenStates.map { [$0.student, $0.teacher] } == rhs.hiddenStates.map { [$0.student, $0.teacher] } &&
        lhs.attentionLayers.map { [$0.student, $0.teacher] } == rhs.attentionLayers.map { [$0.student, $0.teacher] }
    }
}

/// What the distillation loss is made of. loss = α·T²·soft + (1−α)·hard
///                                          + hiddenWeight · mean over mapped layers of MSE(P·h_s, h_t)
///                                          + attentionWeight · mean over mapped layers of MSE(Ā_s, Ā_t)
struct DistillationLossSettings: Sendable, Equatable {
    var alpha: Float
    var temperature: Float
    var softLoss: SoftLoss = .binaryKL
    /// 0 turns hidden-state distillation off.
    var hiddenWeight: Float = 0
    /// 0 turns attention distillation off.
    var attentionWeight: Float = 0
}

/// The learned maps from the student's width to the teacher's, one per mapped hidden state, with
/// their own parameters and AdamW: they exist only while the student trains and are not saved with it.
final class HiddenProjection {
    let store: ParameterStore
    let optimizer: AdamW
    let count: Int
    let studentWidth: Int
    let teacherWidth: Int

    init(count: Int, studentWidth: Int, teacherWidth: Int, learningRate: Double, weightDecay: Double, seed: UInt64) {
        self.count = count
        self.studentWidth = studentWidth
        self.teacherWidth = teacherWidth
        store = ParameterStore(layout: (0..<count).flatMap { k in
            [("hidden_projection.\(k).weight", [teacherWidth, studentWidth]), ("hidden_projection.\(k).bias", [teacherWidth])]
        })
        // Uniform ±1/√fan-in (PyTorch's nn.Linear), or the identity when the widths agree, so that
        // distillation starts by comparing the states themselves.
        var generator = SeededRandom(seed: seed)
        let bound = 1 / Float(studentWidth).squareRoot()
        for k in 0..<count {
            let weight = store.pointer("hidden_projection.\(k).weight")
            for i in 0..<(teacherWidth * studentWidth) {
                weight[i] = studentWidth == teacherWidth ? (i / studentWidth == i % studentWidth ? 1 : 0)
                                                         : Float.random(in: -bound...bound, using: &generator)
            }
        }
        optimizer = AdamW(store: store, learningRate: learningRate, weightDecay: weightDecay, decayRule: .excludingBiasAndLayerNorm)
    }

    func weightPointer(_ k: Int) -> UnsafeMutablePointer<Float> { store.pointer("hidden_projection.\(k).weight") }
    func biasPointer(_ k: Int) -> UnsafeMutablePointer<Float> { store.pointer("hidden_projection.\(k).bias") }
}

/// The student's training objective under distillation: reads the student's last forward (logits,
/// hidden states, attention) and the cached teacher outputs of the same rows, and returns the loss
/// with its gradients on the logits, the hidden states and the attention probabilities. The gradients
/// of the projection go to its own store; `stepProjection` applies them after the student's step.
final class DistillationObjective {
    let settings: DistillationLossSettings
    let student: SequenceClassifier
    let cache: TeacherCache
    let mapping: LayerMapping
    /// The labels' loss (BCE or focal, with class weights) as the Trainer computes it without distillation.
    let hard: TrainingObjective
    /// Every row's token ids under the student's tokenizer.
    let studentSequences: [[Int]]
    let projection: HiddenProjection?

    init(settings: DistillationLossSettings, student: SequenceClassifier, cache: TeacherCache, mapping: LayerMapping,
         hard: @escaping TrainingObjective, studentSequences: [[Int]], projection: HiddenProjection?) {
        precondition(settings.hiddenWeight == 0 || (projection != nil && projection!.count == mapping.hiddenStates.count),
                     "hidden-state distillation needs one projection per mapped hidden state")
        precondition(settings.hiddenWeight == 0 || cache.outputs.hiddenStates == mapping.hiddenStates.map(\.teacher),
                     "the teacher cache must hold the mapped hidden states")
        precondition(settings.attentionWeight == 0 || cache.outputs.attentionLayers == mapping.attentionLayers.map(\.teacher),
                     "the teacher cache must hold the mapped attention layers")
        self.settings = settings
        self.student = student
        self.cache = cache
        self.mapping = mapping
        self.hard = hard
        self.studentSequences = studentSequences
        self.projection = projection
    }

    var asTrainingObjective: TrainingObjective { { [self] logits, rows in loss(logits: logits, rows: rows) } }

    func loss(logits: [Float], rows: [Int]) -> LossResult {
        let alpha = settings.alpha, T = settings.temperature
        let teacherLogits = rows.map { cache[$0].logit }
        let soft: LossResult
        let softScale: Float
        switch settings.softLoss {
        case .binaryKL:
            soft = Losses.binaryKLDivergence(studentLogits: logits, teacherLogits: teacherLogits, temperature: T)
            softScale = alpha * T * T
        case .logitMSE:
            soft = Losses.logitMeanSquaredError(studentLogits: logits, teacherLogits: teacherLogits)
            softScale = alpha
        }
        // α = 0 is plain training: the hard loss alone, exactly as without distillation.
        let hardResult = alpha < 1 ? hard(logits, rows) : LossResult(loss: 0, gradient: [Float](repeating: 0, count: logits.count))
        var total = softScale * soft.loss + (1 - alpha) * hardResult.loss
        let gradient = zip(soft.gradient, hardResult.gradient).map { softScale * $0 + (1 - alpha) * $1 }
        var result = LossResult(loss: 0, gradient: gradient)
        if settings.hiddenWeight > 0, let projection {
            projection.store.zeroGradients()
            let (loss, gradients) = hiddenLoss(rows: rows, projection: projection, weight: settings.hiddenWeight)
            total += loss
            result.hiddenStateGradients = gradients
        }
        if settings.attentionWeight > 0 {
            let (loss, gradients) = attentionLoss(rows: rows, weight: settings.attentionWeight)
            total += loss
            result.attentionProbabilityGradients = gradients
        }
        return LossResult(loss: total, gradient: result.gradient, hiddenStateGradients: result.hiddenStateGradients,
                          attentionProbabilityGradients: result.attentionProbabilityGradients)
    }

    /// One AdamW step of the projection with the gradients of the last `loss` call.
    func stepProjection(learningRate: Double) {
        guard let projection, settings.hiddenWeight > 0 else { return }
        projection.optimizer.learningRate = learningRate
        projection.optimizer.step()
    }

    // MARK: - Hidden states

    /// `weight` × the mean over mapped layers of MSE(h_s W^T + b, h_t), on real tokens (or on pooled
    /// vectors), and its gradients: on the student's hidden states (returned) and on W, b (added to the
    /// projection store).
    private func hiddenLoss(rows: [Int], projection: HiddenProjection, weight: Float) -> (Float, [Int: [Float]]) {
        let Hs = projection.studentWidth, Ht = projection.teacherWidth
        let lengths = rows.map { studentSequences[$0].count }
        let pooled = cache.outputs.pooledHiddenStates
        let pairs = mapping.hiddenStates
        var total: Float = 0
        var gradients: [Int: [Float]] = [:]
        for (k, pair) in pairs.enumerated() {
            let state = student.hiddenState(pair.student)                     // (B, T, Hs)
            let B = state.shape[0], T = state.shape[1]
            // x (M, Hs): the compared student vectors; y (M, Ht) the teacher's.
            var x: [Float] = [], y: [Float] = []
            for (b, row) in rows.enumerated() {
                let entry = cache[row]
                let tokens = Array(state.scalars[(b * T * Hs)..<((b * T + lengths[b]) * Hs)])
                if pooled {
                    x += TeacherCache.meanOverTokens(tokens, length: lengths[b], width: Hs)
                } else {
                    precondition(entry.length == lengths[b], "row \(row): teacher has \(entry.length) tokens, student \(lengths[b])")
                    x += tokens
                }
                y += entry.hidden[k]
            }
            let M = x.count / Hs
            guard M > 0 else { continue }
            var predicted = [Float](repeating: 0, count: M * Ht)                // (M, Ht) = x W^T + b
            predicted.withUnsafeMutableBufferPointer { out in
                x.withUnsafeBufferPointer { inp in
                    LinearLayer.forward(out: out.baseAddress!, inp: inp.baseAddress!, weight: projection.weightPointer(k),
                                        bias: projection.biasPointer(k), rows: M, inFeatures: Hs, outFeatures: Ht)
                }
            }
            // MSE over M·Ht values, averaged over the K mapped layers: d/dpredicted = weight·2·diff / (M·Ht·K).
            let scale = weight / Float(M * Ht * pairs.count)
            var loss: Float = 0
            var dPredicted = [Float](repeating: 0, count: M * Ht)
            for i in 0..<(M * Ht) {
                let difference = predicted[i] - y[i]
                loss += difference * difference
                dPredicted[i] = 2 * difference * scale
            }
            total += loss * scale
            var dx = [Float](repeating: 0, count: M * Hs)                        // (M, Hs)
            dPredicted.withUnsafeBufferPointer { dout in
                x.withUnsafeBufferPointer { inp in
                    dx.withUnsafeMutableBufferPointer { dinp in
                        LinearLayer.backward(dinp: dinp.baseAddress!, dweight: projection.store.gradientPointer("hidden_projection.\(k).weight"),
                                             dbias: projection.store.gradientPointer("hidden_projection.\(k).bias"), dout: dout.baseAddress!,
                                             inp: inp.baseAddress!, weight: projection.weightPointer(k), rows: M, inFeatures: Hs, outFeatures: Ht)
                    }
                }
            }
            // Back to (B, T, Hs): real tokens only; a pooled vector spreads its gradient over its tokens.
            var dState = gradients[pair.student] ?? [Float](repeating: 0, count: B * T * Hs)
            var m = 0
            for b in 0..<B {
                if pooled {
                    let share = 1 / Float(max(lengths[b], 1))
                    for t in 0..<lengths[b] { for c in 0..<Hs { dState[(b * T + t) * Hs + c] += dx[m * Hs + c] * share } }
                    m += 1
                } else {
                    for t in 0..<lengths[b] {
                        for c in 0..<Hs { dState[(b * T + t) * Hs + c] += dx[m * Hs + c] }
                        m += 1
                    }
                }
            }
            gradients[pair.student] = dState
        }
        return (total, gradients)
    }

    // MARK: - Attention

    /// `weight` × the mean over mapped layers of MSE between the head-averaged attention probabilities of student and
    /// teacher on real (query, key) pairs, and its gradient on the student's probabilities (B, nh, T, T).
    /// Averaging over heads lets a 2-head student learn from a 4-head teacher.
    private func attentionLoss(rows: [Int], weight: Float) -> (Float, [Int: [Float]]) {
        let lengths = rows.map { studentSequences[$0].count }
        let pairs = mapping.attentionLayers
        var total: Float = 0
        var gradients: [Int: [Float]] = [:]
        let compared = lengths.reduce(0) { $0 + $1 * $1 }
        guard compared > 0 else { return (0, [:]) }
        let scale = weight / Float(compared * pairs.count)
        for (k, pair) in pairs.enumerated() {
            let probs = student.attentionProbabilities(layer: pair.student)      // (B, nh, T, T)
            // This layer's heads: a layer whose heads were pruned has fewer.
            let B = probs.shape[0], heads = probs.shape[1], T = probs.shape[2]
            var dProbs = [Float](repeating: 0, count: probs.scalars.count)
            for b in 0..<B {
                let entry = cache[rows[b]]
                let n = lengths[b]
                precondition(entry.length == n, "row \(rows[b]): teacher has \(entry.length) tokens, student \(n)")
                let mean = TeacherCache.headMean(probs.scalars, batchIndex: b, heads: heads, paddedLength: T, length: n)
                let target = entry.attention[k]
                for q in 0..<n {
                    for key in 0..<n {
                        let difference = mean[q * n + key] - target[q * n + key]
                        total += difference * difference * scale
                        let d = 2 * difference * scale / Float(heads)
                        for h in 0..<heads { dProbs[((b * heads + h) * T + q) * T + key] = d }
                    }
                }
            }
            gradients[pair.student] = dProbs
        }
        return (total, gradients)
    }
}
