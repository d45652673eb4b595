import Foundation

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
        // Sum of squares in Double: over 100M+ gradients a Float accumulator loses the small terms.
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

    /// Σ x²: blocks of 4096 accumulated in eight Float lanes (SIMD, no reassociation needed), each
    /// block's sum added in Double.
    static func squaredNorm(_ x: UnsafePointer<Float>, count: Int) -> Double {
        let raw = UnsafeRawPointer(x)
        var total = 0.0
        var start = 0
        while start < count {
            let end = min(start + 4096, count)
            var lanes = SIMD8<Float>.zero
            var i = start
            while i + 8 <= end {
                let v = raw.loadUnaligned(fromByteOffset: i * MemoryLayout<Float>.stride, as: SIMD8<Float>.self)
                lanes.addProduct(v, v)
                i += 8
            }
            var block = Double(lanes.sum())
            while i < end {
                block += Double(x[i] * x[i])
                i += 1
            }
            total += block
            start = end
        }
        return total
    }
}
