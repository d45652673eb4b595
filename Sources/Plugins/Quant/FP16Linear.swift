import Kernels

// FP16 linear layer: weights rounded to IEEE half (nearest even), kept packed for sk_linear_fp16,
// which converts them back to float with F16C inside the product. Activations and sums stay float.
// Weights beyond ±65504 would become infinite in half, so they are refused.
//
// Saved blobs: "weight.f16" (N, K) IEEE half row-major, "bias" (N) float32 or empty.
final class FP16Linear: QuantizedLinear {
    static let largestHalf: Float = 65504

    let packed: AlignedBuffer<UInt16>   // sk_pack_weights_fp16 layout

    private init(rows: Int, cols: Int, bias: [Float], name: String, storage Wh: UnsafePointer<UInt16>) {
        packed = AlignedBuffer(count: sk_fp16_packed_bytes(Int32(rows), Int32(cols)) / MemoryLayout<UInt16>.stride)
        sk_pack_weights_fp16(Wh, Int32(rows), Int32(cols), packed.pointer)
        super.init(rows: rows, cols: cols, bias: bias, name: name)
    }

    convenience init(weight: CheckedWeight) throws {
        let (N, K) = (weight.rows, weight.cols)
        for i in 0..<(N * K) where abs(weight.data[i]) > Self.largestHalf {
            throw QuantFailure.invalid("\(weight.name): weight at row \(i / K), column \(i % K) is \(weight.data[i]), beyond half precision's ±65504")
        }
        var Wh = [UInt16](repeating: 0, count: N * K)
        sk_float_to_half(weight.data, &Wh, N * K)
        self.init(rows: N, cols: K, bias: weight.bias, name: weight.name, storage: Wh)
    }

    convenience init(blobs: BlobSource, rows: Int, cols: Int) throws {
        let Wh = try blobs.read("weight.f16", as: UInt16.self, count: rows * cols).bindMemory(to: UInt16.self)
        // Exponent bits all ones: infinity or NaN, which no quantized weight can be.
        if let bad = Wh.firstIndex(where: { $0 & 0x7c00 == 0x7c00 }) {
            throw QuantFailure.badData("\(blobs.layer): blob 'weight.f16' value \(bad) is not a finite half")
        }
        let bias = try blobs.floats("bias", count: rows, allowEmpty: true)
        self.init(rows: rows, cols: cols, bias: bias, name: blobs.layer, storage: Wh.baseAddress!)
    }

    override func forward(_ x: UnsafePointer<Float>, tokens M: Int, _ y: UnsafeMutablePointer<Float>) throws {
        withBias { bias in sk_linear_fp16(x, Int32(M), Int32(cols), packed.pointer, bias, Int32(rows), y) }
    }

    override var savedBytes: Int { rows * cols * MemoryLayout<UInt16>.stride + biasBytes }

    override func dequantize(into weight: UnsafeMutablePointer<Float>) {
        var Wh = [UInt16](repeating: 0, count: rows * cols)
        sk_unpack_weights_fp16(packed.pointer, Int32(rows), Int32(cols), &Wh)
        sk_half_to_float(Wh, weight, rows * cols)
    }

    override func serialize(to sink: BlobSink) throws {
        var Wh = [UInt16](repeating: 0, count: rows * cols)
        sk_unpack_weights_fp16(packed.pointer, Int32(rows), Int32(cols), &Wh)
        try sink.write("weight.f16", Wh)
        try writeBias(to: sink)
    }
}
