import Kernels

// INT8 linear layer, for both `dynamic` and `static`.
//
// Weights: symmetric per output channel, scale_n = max|W[n, :]| / 127, codes in [-127, 127]
// (quant_kernels.h says why never -128). They are packed once, here, into the kernel's panel layout.
// Activations: quantized per row at run time. `dynamic` takes each row's own scale max|x[m, :]| / 127;
// `static` uses one scale for the whole tensor, fixed when the layer was calibrated, and values
// beyond ±127 · scale clip. The product is summed exactly in int32 (sk_linear_int8).
//
// Saved blobs: "weight.int8" (N, K) int8 row-major, "weight.scale" (N) float32, "bias" (N) float32
// or empty, and for `static` "input.scale" (1) float32.
final class Int8Linear: QuantizedLinear {
    let packed: AlignedBuffer<Int8>          // sk_pack_weights_int8 layout
    let weightScales: AlignedBuffer<Float>   // (N)
    let inputScale: Float?                   // static: the calibrated per-tensor scale; dynamic: nil
    // Scratch for one forward: quantized rows (M, padded K) and their scales (M). Grows to the
    // largest batch seen, so forward allocates only the first time a larger batch comes.
    private let rowsQuantized = AlignedBuffer<Int8>(count: 0)
    private let rowScales = AlignedBuffer<Float>(count: 0)

    private init(rows: Int, cols: Int, bias: [Float], name: String, storage Wq: UnsafePointer<Int8>,
                 scales: UnsafePointer<Float>, inputScale: Float?) {
        packed = AlignedBuffer(count: sk_int8_packed_bytes(Int32(rows), Int32(cols)))
        sk_pack_weights_int8(Wq, Int32(rows), Int32(cols), packed.pointer)
        weightScales = AlignedBuffer(count: rows)
        weightScales.pointer.update(from: scales, count: rows)
        self.inputScale = inputScale
        super.init(rows: rows, cols: cols, bias: bias, name: name)
    }

    /// Quantizes a float weight. `inputScale` is nil for dynamic quantization.
    convenience init(weight: CheckedWeight, inputScale: Float?) {
        let (N, K) = (weight.rows, weight.cols)
        var Wq = [Int8](repeating: 0, count: N * K)
        var scales = [Float](repeating: 0, count: N)
        sk_quantize_weights_int8_per_channel(weight.data, Int32(N), Int32(K), &Wq, &scales)
        self.init(rows: N, cols: K, bias: weight.bias, name: weight.name, storage: Wq, scales: scales, inputScale: inputScale)
    }

    /// Rebuilds a layer from its blobs.
    convenience init(blobs: BlobSource, rows: Int, cols: Int, isStatic: Bool) throws {
        let Wq = try blobs.read("weight.int8", as: Int8.self, count: rows * cols)
        if Wq.bindMemory(to: Int8.self).contains(Int8.min) {
            throw QuantFailure.badData("\(blobs.layer): blob 'weight.int8' holds -128; weights are quantized to [-127, 127]")
        }
        let scales = try blobs.floats("weight.scale", count: rows)
        if let bad = scales.firstIndex(where: { $0 < 0 }) {
            throw QuantFailure.badData("\(blobs.layer): blob 'weight.scale' value \(bad) is negative")
        }
        let bias = try blobs.floats("bias", count: rows, allowEmpty: true)
        var inputScale: Float? = nil
        if isStatic {
            let scale = try blobs.floats("input.scale", count: 1)[0]
            guard scale > 0 else { throw QuantFailure.badData("\(blobs.layer): blob 'input.scale' is \(scale), not > 0") }
            inputScale = scale
        }
        self.init(rows: rows, cols: cols, bias: bias, name: blobs.layer,
                  storage: Wq.bindMemory(to: Int8.self).baseAddress!, scales: scales, inputScale: inputScale)
    }

    override func forward(_ x: UnsafePointer<Float>, tokens M: Int, _ y: UnsafeMutablePointer<Float>) throws {
        let K = Int32(cols), N = Int32(rows)
        rowsQuantized.reserve(M * Int(sk_int8_padded_k(K)))
        rowScales.reserve(M)
        // (M, Kp) int8 and (M) scales; a static scale > 0 replaces the per-row choice.
        sk_quantize_rows_int8(x, Int32(M), K, inputScale ?? 0, rowsQuantized.pointer, rowScales.pointer)
        withBias { bias in
            sk_linear_int8(rowsQuantized.pointer, rowScales.pointer, Int32(M), K, packed.pointer,
                           weightScales.pointer, bias, N, y)
        }
    }

    override var savedBytes: Int {
        rows * cols + rows * MemoryLayout<Float>.stride + biasBytes + (inputScale == nil ? 0 : MemoryLayout<Float>.stride)
    }

    override func dequantize(into weight: UnsafeMutablePointer<Float>) {
        var Wq = [Int8](repeating: 0, count: rows * cols)
        sk_unpack_weights_int8(packed.pointer, Int32(rows), Int32(cols), &Wq)
        sk_dequantize_weights_int8(Wq, weightScales.pointer, Int32(rows), Int32(cols), weight)
    }

    override func serialize(to sink: BlobSink) throws {
        var Wq = [Int8](repeating: 0, count: rows * cols)
        sk_unpack_weights_int8(packed.pointer, Int32(rows), Int32(cols), &Wq)
        try sink.write("weight.int8", Wq)
        try sink.write("weight.scale", weightScales.pointer, count: rows)
        try writeBias(to: sink)
        if let inputScale { try sink.write("input.scale", [inputScale]) }
    }
}
