import Foundation
import Kernels

/// Global-norm gradient clipping as `torch.nn.utils.clip_grad_norm_`: the L2 norm over all gradients
/// taken together; when it exceeds `maxNorm` every gradient is scaled by `maxNorm / (norm + 1e-6)`.
enum GradientClipping {
    /// Clips `store.gradients` in place and returns the total norm measured before clipping.
    ///
    /// Views in `store.frozen` and in `withoutGradient` are left out of both the norm and the scaling,
    /// as PyTorch leaves out parameters whose `grad` is None. A non-finite norm is returned as it is
    /// (the caller decides whether to skip the step); the gradients are then scaled as PyTorch does.
    @discardableResult
    static func clipGlobalNorm(_ store: ParameterStore, maxNorm: Float, withoutGradient: Set<String> = []) -> Float {
        let views = store.views.filter { !store.frozen.contains($0.name) && !withoutGradient.contains($0.name) }
        // Summed in Double: over 100M+ gradients a single Float accumulator would lose the small terms.
        var sumOfSquares = 0.0
        for view in views {
            sumOfSquares += squaredNorm(store.gradients + view.offset, count: view.count)
        }
        let norm = Float(sumOfSquares.squareRoot())
        let coefficient = maxNorm / (norm + 1e-6)
        // torch clamps the coefficient to 1 and always multiplies; skipping the multiply by 1 is the same.
        if !(coefficient >= 1) {
            for view in views {
                let g = store.gradients + view.offset
                for i in 0..<view.count { g[i] *= coefficient }
            }
        }
        return norm
    }

    /// Σ x² (Kernels/optimizer.c: AVX2 float lanes per block of 1024, blocks summed in double).
    static func squaredNorm(_ x: UnsafePointer<Float>, count: Int) -> Double {
        sk_sum_of_squares(x, count)
    }
}
