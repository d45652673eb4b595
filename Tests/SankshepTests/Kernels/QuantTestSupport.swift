import Kernels

func randomFloats(_ count: Int, in range: ClosedRange<Float>, _ generator: inout SeededGenerator) -> [Float] {
    (0..<count).map { _ in Float.random(in: range, using: &generator) }
}

/// Runs `body` once per kernel level this machine has, best first (AVX-512 VNNI, AVX2, portable C;
/// a level the CPU lacks cannot run here and is left out), then goes back to CPU detection. The
/// label names the level in failure messages.
func forEachKernelPath(_ body: (String) throws -> Void) rethrows {
    defer { sk_quant_set_kernel_level(-1) }
    for level in stride(from: sk_quant_max_kernel_level(), through: 0, by: -1) {
        sk_quant_set_kernel_level(level)
        try body(String(cString: sk_quant_kernel_name(level)))
    }
}

/// Runs `body` with the kernels' thread count set to `threads`, restoring the previous count.
func withKernelThreads<T>(_ threads: Int, _ body: () throws -> T) rethrows -> T {
    let previous = sk_get_threads()
    sk_set_threads(Int32(threads))
    defer { sk_set_threads(previous) }
    return try body()
}

/// y = x · Wᵀ + b in double, the float layer a quantized layer approximates. x (M, K), W (N, K).
func floatLinear(_ x: [Float], _ W: [Float], _ bias: [Float]?, M: Int, K: Int, N: Int) -> [Float] {
    var y = [Float](repeating: 0, count: M * N)
    for m in 0..<M {
        for n in 0..<N {
            var sum = 0.0
            for k in 0..<K { sum += Double(x[m * K + k]) * Double(W[n * K + k]) }
            y[m * N + n] = Float(sum) + (bias?[n] ?? 0)
        }
    }
    return y
}

/// Σ_k |x[m, k] · W[n, k]| per output: the scale of rounding differences from summation order.
func magnitudeSums(_ x: [Float], _ W: [Float], M: Int, K: Int, N: Int) -> [Float] {
    var s = [Float](repeating: 0, count: M * N)
    for m in 0..<M {
        for n in 0..<N {
            var sum: Float = 0
            for k in 0..<K { sum += abs(x[m * K + k] * W[n * K + k]) }
            s[m * N + n] = sum
        }
    }
    return s
}
