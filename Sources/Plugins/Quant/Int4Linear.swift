import Kernels

// INT4 linear layer: group-wise 4-bit weights (quant_kernels.h describes the blocks), activations
// quantized to int8 at run time, the product computed block by block without expanding W to float.
//
// Saved blobs: "weight.q4" (the blocks, row by row), "group_size" (1) int32, "bias" (N) float32 or empty.
final class Int4Linear: QuantizedLinear {
    static let groupSizes = [32, 64, 128]

    let group: Int
    let blocks: AlignedBuffer<UInt8>
    private let rowsQuantized = AlignedBuffer<Int8>(count: 0)
    private let groupScales = AlignedBuffer<Float>(count: 0)

    private init(rows: Int, cols: Int, group: Int, bias: [Float], name: String, blocks: AlignedBuffer<UInt8>) {
        self.group = group
        self.blocks = blocks
        super.init(rows: rows, cols: cols, bias: bias, name: name)
    }

    static func bytes(rows: Int, cols: Int, group: Int) -> Int {
        sk_int4_weights_bytes(Int32(rows), Int32(cols), Int32(group))
    }

    static func checkShape(cols: Int, group: Int, layer: String) throws {
        guard groupSizes.contains(group) else {
            throw QuantFailure.invalid("\(layer): group_size \(group) is not one of 32, 64, 128")
        }
        guard sk_int4_shape_ok(Int32(cols), Int32(group)) else {
            throw QuantFailure.invalid("\(layer): \(cols) input features are not a multiple of group_size \(group)")
        }
    }

    convenience init(weight: CheckedWeight, group: Int) throws {
        try Self.checkShape(cols: weight.cols, group: group, layer: weight.name)
        let blocks = AlignedBuffer<UInt8>(count: Self.bytes(rows: weight.rows, cols: weight.cols, group: group))
        sk_quantize_weights_int4(weight.data, Int32(weight.rows), Int32(weight.cols), Int32(group), blocks.pointer)
        self.init(rows: weight.rows, cols: weight.cols, group: group, bias: weight.bias, name: weight.name, blocks: blocks)
    }

    convenience init(blobs: BlobSource, rows: Int, cols: Int) throws {
        let group = Int(try blobs.read("group_size", as: Int32.self, count: 1).loadUnaligned(as: Int32.self))
        do { try Self.checkShape(cols: cols, group: group, layer: blobs.layer) } catch let failure as QuantFailure {
            throw QuantFailure.badData(failure.message ?? "")
        }
        let raw = try blobs.read("weight.q4", as: UInt8.self, count: Self.bytes(rows: rows, cols: cols, group: group))
        let bias = try blobs.floats("bias", count: rows, allowEmpty: true)
        self.init(rows: rows, cols: cols, group: group, bias: bias, name: blobs.layer, blocks: AlignedBuffer(copying: raw))
    }

    override func forward(_ x: UnsafePointer<Float>, tokens M: Int, _ y: UnsafeMutablePointer<Float>) throws {
        let K = Int32(cols)
        rowsQuantized.reserve(M * cols)
        groupScales.reserve(M * (cols / group))
        sk_quantize_rows_int8_grouped(x, Int32(M), K, Int32(group), rowsQuantized.pointer, groupScales.pointer)
        withBias { bias in
            sk_linear_int4(rowsQuantized.pointer, groupScales.pointer, Int32(M), K, Int32(group), blocks.pointer,
                           bias, Int32(rows), y)
        }
    }

    override var savedBytes: Int {
        Self.bytes(rows: rows, cols: cols, group: group) + MemoryLayout<Int32>.stride + biasBytes
    }

    override func serialize(to sink: BlobSink) throws {
        try sink.write("weight.q4", blocks.pointer, count: Self.bytes(rows: rows, cols: cols, group: group))
        try sink.write("group_size", [Int32(group)])
        try writeBias(to: sink)
    }
}
