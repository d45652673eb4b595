import Foundation

/// Learning-rate multipliers with linear warm-up, exactly as Hugging Face's
/// `get_linear_schedule_with_warmup` and `get_cosine_schedule_with_warmup` compute them.
///
/// PyTorch's `LambdaLR` sets `lr = base_lr · multiplier(0)` when it is created and
/// `base_lr · multiplier(n)` after the n-th `scheduler.step()`, so the optimizer's n-th update
/// (counting from 0) uses `multiplier(atStep: n)` — with warm-up the very first update has lr 0.
struct LearningRateSchedule: Sendable, Equatable {
    enum Kind: String, Sendable, CaseIterable {
        /// Warm up linearly from 0 to the base rate, then decay linearly to 0 at `totalSteps`.
        case linear
        /// Warm up linearly, then follow half a cosine (with the default 0.5 cycles) down to 0.
        case cosine
    }

    let kind: Kind
    let warmupSteps: Int
    let totalSteps: Int
    /// Number of cosine waves after warm-up (HF's `num_cycles`, 0.5 = from the peak down to 0).
    let cycles: Double

    init(kind: Kind, warmupSteps: Int, totalSteps: Int, cycles: Double = 0.5) throws {
        guard totalSteps > 0 else { throw TrainingError("learning-rate schedule: total steps must be positive, got \(totalSteps)") }
        guard warmupSteps >= 0 else { throw TrainingError("learning-rate schedule: warm-up steps must not be negative, got \(warmupSteps)") }
        guard cycles > 0, cycles.isFinite else { throw TrainingError("learning-rate schedule: cosine cycles must be positive, got \(cycles)") }
        self.kind = kind
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
        self.cycles = cycles
    }

    /// Warm-up from a ratio of the whole run, as the seed framework computes it:
    /// `int(warmup_ratio * total_steps)` (rounded down; the HF Trainer rounds up instead).
    init(kind: Kind, warmupRatio: Double, totalSteps: Int, cycles: Double = 0.5) throws {
        guard warmupRatio >= 0, warmupRatio <= 1 else {
            throw TrainingError("--warmup_ratio must lie in [0, 1], got \(warmupRatio)")
        }
        try self.init(kind: kind, warmupSteps: Int((warmupRatio * Double(totalSteps)).rounded(.down)),
                      totalSteps: totalSteps, cycles: cycles)
    }

    /// The factor applied to the base learning rate for the update numbered `step` (from 0).
    func multiplier(atStep step: Int) -> Double {
        if step < warmupSteps {
            return Double(step) / Double(max(1, warmupSteps))
        }
        switch kind {
        case .linear:
            return max(0, Double(totalSteps - step) / Double(max(1, totalSteps - warmupSteps)))
        case .cosine:
            let progress = Double(step - warmupSteps) / Double(max(1, totalSteps - warmupSteps))
            return max(0, 0.5 * (1 + Foundation.cos(Double.pi * cycles * 2 * progress)))
        }
    }

    /// `base · multiplier(atStep:)`, what the optimizer uses for that update.
    func learningRate(base: Double, atStep step: Int) -> Double {
        base * multiplier(atStep: step)
    }
}
