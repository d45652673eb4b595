import Foundation
import Kernels

/// Which parameters weight decay applies to.
enum WeightDecayRule: String, Sendable, CaseIterable {
    /// Every parameter, as `torch.optim.AdamW(model.parameters(), weight_decay=...)` (the seed framework).
    case all
    /// No biases and no normalisation weights, as the Hugging Face Trainer groups them
    /// (`Trainer.get_decay_parameter_names`).
    case excludingBiasAndLayerNorm

    func decays(_ name: String) -> Bool {
        switch self {
        case .all:
            return true
        case .excludingBiasAndLayerNorm:
            // The Trainer's name patterns, on the lower-cased name: "bias", "layernorm", "rmsnorm",
            // a component called "norm", or a component ending in "_norm" (DistilBERT's `sa_layer_norm`).
            let lower = name.lowercased()
            if lower.contains("bias") || lower.contains("layernorm") || lower.contains("rmsnorm") { return false }
            for component in lower.split(separator: ".") where component == "norm" || component.hasSuffix("_norm") {
                return false
            }
            return true
        }
    }
}

/// AdamW (Loshchilov & Hutter) exactly as `torch.optim.AdamW` computes it on the CPU, per element:
///
///     p ← p · (1 − lr·wd)                       decoupled weight decay, before the moments
///     m ← m + (1 − β1)·(g − m)                  (torch's lerp)
///     v ← β2·v + (1 − β2)·g²
///     p ← p + (−lr/(1 − β1ᵗ) · m) / (√v / √(1 − β2ᵗ) + ε)     (torch's addcmul/addcdiv order)
///
/// The scalar factors are computed in Double as Python does, the element-wise work in Float in
/// torch's order (`sk_adamw_update` in Kernels/optimizer.c, AVX2 with a plain reference loop), so one
/// step agrees with PyTorch to the last bit or two. Large models are updated on `sk_get_threads()` threads.
///
/// It works on a `ParameterStore`: the moments are two flat buffers of the store's layout, so a step is
/// one pass over four arrays (values, gradients, m, v). Views in `store.frozen` are skipped entirely (no decay, moments
/// untouched), as PyTorch skips parameters with `requires_grad=False`.
final class AdamW: @unchecked Sendable {
    struct State: Equatable, Sendable {
        /// Number of steps taken (PyTorch's `state["step"]`; the next step is `step + 1`).
        var step: Int
        /// First moments (`exp_avg`), in the store's layout.
        var firstMoment: [Float]
        /// Second moments (`exp_avg_sq`), in the store's layout.
        var secondMoment: [Float]
    }

    let store: ParameterStore
    /// The learning rate of the next step; a schedule sets it before each step.
    var learningRate: Double
    let beta1: Double
    let beta2: Double
    let epsilon: Double
    let weightDecay: Double
    let decayRule: WeightDecayRule
    /// Steps taken so far.
    private(set) var stepCount = 0
    /// (P,) each, same layout as `store.values`.
    let firstMoment: UnsafeMutablePointer<Float>
    let secondMoment: UnsafeMutablePointer<Float>
    /// Per view (in `store.views` order): does weight decay apply?
    private let decaysView: [Bool]

    init(store: ParameterStore, learningRate: Double, beta1: Double = 0.9, beta2: Double = 0.999,
         epsilon: Double = 1e-8, weightDecay: Double = 0.01, decayRule: WeightDecayRule = .all) {
        self.store = store
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.decayRule = decayRule
        let capacity = max(store.count, 1)
        firstMoment = .allocate(capacity: capacity)
        firstMoment.initialize(repeating: 0, count: capacity)
        secondMoment = .allocate(capacity: capacity)
        secondMoment.initialize(repeating: 0, count: capacity)
        decaysView = store.views.map { decayRule.decays($0.name) }
    }

    deinit {
        firstMoment.deallocate()
        secondMoment.deallocate()
    }

    /// Names of the views that weight decay applies to (for logging the parameter groups).
    var decayedParameterNames: [String] {
        zip(store.views, decaysView).filter { $0.1 }.map { $0.0.name }
    }

    /// One update of every trainable view from `store.gradients`.
    ///
    /// - Parameter withoutGradient: views that took no part in the forward pass (e.g. the unused BERT
    ///   pooler under the seed framework's head). PyTorch has `grad = None` for them and leaves them
    ///   untouched — no weight decay either — so they are skipped like frozen views.
    func step(withoutGradient: Set<String> = []) {
        stepCount += 1
        let t = Double(stepCount)
        let biasCorrection1 = 1 - Foundation.pow(beta1, t)
        let biasCorrection2 = 1 - Foundation.pow(beta2, t)
        let decay = sk_adamw_scalars(
            decay_factor: Float(1 - learningRate * weightDecay),
            one_minus_beta1: Float(1 - beta1),
            beta2: Float(beta2),
            one_minus_beta2: Float(1 - beta2),
            bias_correction2_sqrt: Float(biasCorrection2.squareRoot()),
            epsilon: Float(epsilon),
            negative_step_size: Float(-(learningRate / biasCorrection1)))
        let noDecay = { var scalars = decay; scalars.decay_factor = 1; return scalars }()

        // Contiguous runs of views with the same decay setting become one loop each: for BERT that is a
        // few dozen runs instead of ~200 views, and the big ones are long enough to split across threads.
        var runs: [(range: Range<Int>, decay: Bool)] = []
        for (index, view) in store.views.enumerated()
        where !store.frozen.contains(view.name) && !withoutGradient.contains(view.name) && view.count > 0 {
            let decays = decaysView[index] && weightDecay != 0
            if let last = runs.last, last.decay == decays, last.range.upperBound == view.offset {
                runs[runs.count - 1].range = last.range.lowerBound..<view.range.upperBound
            } else {
                runs.append((view.range, decays))
            }
        }
        let chunks = Self.split(runs, chunkSize: 1 << 16)
        let buffers = Buffers(values: store.values, gradients: store.gradients, firstMoment: firstMoment, secondMoment: secondMoment)
        let work: @Sendable (Int) -> Void = { index in
            let chunk = chunks[index]
            let offset = chunk.range.lowerBound
            var scalars = chunk.decay ? decay : noDecay
            // The element-wise update (Kernels/optimizer.c): AVX2 where the CPU has it.
            sk_adamw_update(chunk.range.count, buffers.values + offset, buffers.gradients + offset,
                            buffers.firstMoment + offset, buffers.secondMoment + offset, &scalars)
        }
        // The update is bound by memory bandwidth, and two threads still draw more of it than one.
        // Worker w takes chunks w, w + threads, …: the big views are spread evenly.
        let threads = max(1, Int(sk_get_threads()))
        if threads > 1 && store.count >= 1 << 20 {
            DispatchQueue.concurrentPerform(iterations: threads) { worker in
                for index in stride(from: worker, to: chunks.count, by: threads) { work(index) }
            }
        } else {
            for index in chunks.indices { work(index) }
        }
    }

    /// The four flat buffers, handed to worker threads that each touch a disjoint range.
    private struct Buffers: @unchecked Sendable {
        let values: UnsafeMutablePointer<Float>
        let gradients: UnsafeMutablePointer<Float>
        let firstMoment: UnsafeMutablePointer<Float>
        let secondMoment: UnsafeMutablePointer<Float>
    }

    private static func split(_ runs: [(range: Range<Int>, decay: Bool)], chunkSize: Int) -> [(range: Range<Int>, decay: Bool)] {
        var chunks: [(range: Range<Int>, decay: Bool)] = []
        for run in runs {
            var start = run.range.lowerBound
            while start < run.range.upperBound {
                let end = min(start + chunkSize, run.range.upperBound)
                chunks.append((start..<end, run.decay))
                start = end
            }
        }
        return chunks
    }

    // MARK: - Checkpointing

    /// A copy of the optimizer state, to save in a training checkpoint.
    func state() -> State {
        State(step: stepCount,
              firstMoment: Array(UnsafeBufferPointer(start: firstMoment, count: store.count)),
              secondMoment: Array(UnsafeBufferPointer(start: secondMoment, count: store.count)))
    }

    /// Continues from a saved state: the next step is bit-for-bit the one the saved run would have taken.
    func restore(_ state: State) throws {
        guard state.firstMoment.count == store.count, state.secondMoment.count == store.count else {
            throw TrainingError("optimizer state holds \(state.firstMoment.count) first and \(state.secondMoment.count) second moments, but the model has \(store.count) parameters")
        }
        guard state.step >= 0 else { throw TrainingError("optimizer state has a negative step count \(state.step)") }
        guard store.count > 0 else { stepCount = state.step; return }
        state.firstMoment.withUnsafeBufferPointer { firstMoment.update(from: $0.baseAddress!, count: store.count) }
        state.secondMoment.withUnsafeBufferPointer { secondMoment.update(from: $0.baseAddress!, count: store.count) }
        stepCount = state.step
    }
}
