import Kernels

// INT4 linear layer: group-wise 4-bit weights, each group with a small integer scale under one float
// scale per output channel (quant_kernels.h gives the formula, int4.c why). Activations are
// quantized per row to int8 at run time, and the product is summed in int32 straight from the
// packed codes: W is never expanded to float.
//
// Saved blobs: "weight.q4" (N, K/2) bytes, two codes per byte (input 2i low nibble, 2i + 1 high),
// "weight.group_scale" (N, K/G) int8, "weight.scale" (N) float32, "bias" (N) float32 or empty.
// The group size is K divided by the group scales per row.
final class Int4Linear: QuantizedLinear {
    static let groupSizes = [32, 64, 128]

    let group: Int
    let packed: AlignedBuffer<UInt8>           // sk_pack_weights_int4 layout
    let channelScales: AlignedBuffer<Float>    // (N)
    // Scratch for one forward: quantized rows (M, K), their scales (M) and group sums (M, Gp).
    private let rowsQuantized = AlignedBuffer<Int8>(count: 0)
    private let rowScales = AlignedBuffer<Float>(count: 0)
    private let groupSums = AlignedBuffer<Int16>(count: 0)

    private init(rows: Int, cols: Int, group: Int, bias: [Float], name: String, codes: UnsafePointer<UInt8>,
                 groupScales: UnsafePointer<Int8>, channelScales: UnsafePointer<Float>) {
        self.group = group
        packed = AlignedBuffer(count: sk_int4_packed_bytes(Int32(rows), Int32(cols), Int32(group)))
        sk_pack_weights_int4(codes, groupScales, Int32(rows), Int32(cols), Int32(group), packed.pointer)
        self.channelScales = AlignedBuffer(count: rows)
        self.channelScales.pointer.update(from: channelScales, count: rows)
        super.init(rows: rows, cols: cols, bias: bias, name: name)
    }

    static func checkShape(cols: Int, group: Int, layer: String) throws {
        guard groupSizes.contains(group) else {
            throw QuantFailure.invalid("\(layer): group_size \(group) is not one of 32, 64, 128")
        }
        guard cols % group == 0 else {
            throw QuantFailure.invalid("\(layer): \(cols) input features are not a multiple of group_size \(group)")
        }
        guard sk_int4_shape_ok(Int32(cols), Int32(group)) else {
            throw QuantFailure.invalid("\(layer): \(cols) input features are more than the INT4 kernel sums exactly (8192)")
        }
    }

    convenience init(weight: CheckedWeight, group: Int) throws {
        try Self.checkShape(cols: weight.cols, group: group, layer: weight.name)
        let (N, K) = (weight.rows, weight.cols)
        var codes = [UInt8](repeating: 0, count: sk_int4_codes_bytes(Int32(N), Int32(K)))
        var groupScales = [Int8](repeating: 0, count: N * (K / group))
        var channelScales = [Float](repeating: 0, count: N)
        sk_quantize_weights_int4(weight.data, Int32(N), Int32(K), Int32(group), &codes, &groupScales, &channelScales)
        self.init(rows: N, cols: K, group: group, bias: weight.bias, name: weight.name, codes: codes,
                  groupScales: groupScales, channelScales: channelScales)
    }

    convenience init(blobs: BlobSource, rows: Int, cols: Int) throws {
        // The group size follows from the number of group scales per row.
        let groupScales = try blobs.raw("weight.group_scale")
        let perRow = groupScales.count / rows
        guard groupScales.count == perRow * rows, perRow > 0, cols % perRow == 0, Self.groupSizes.contains(cols / perRow) else {
            throw QuantFailure.badData("\(blobs.layer): blob 'weight.group_scale' has \(groupScales.count) bytes, not one scale per 32, 64 or 128 inputs of each row")
        }
        let group = cols / perRow
        do { try Self.checkShape(cols: cols, group: group, layer: blobs.layer) } catch let failure as QuantFailure {
            throw QuantFailure.badData(failure.message ?? "")
        }
        let codes = try blobs.read("weight.q4", as: UInt8.self, count: rows * cols / 2)
        if groupScales.bindMemory(to: Int8.self).contains(Int8.min) {
            throw QuantFailure.badData("\(blobs.layer): blob 'weight.group_scale' holds -128; group scales are in [-127, 127]")
        }
        let channelScales = try blobs.floats("weight.scale", count: rows)
        if let bad = channelScales.firstIndex(where: { $0 < 0 }) {
            throw QuantFailure.badData("\(blobs.layer): blob 'weight.scale' value \(bad) is negative")
        }
        let bias = try blobs.floats("bias", count: rows, allowEmpty: true)
        self.init(rows: rows, cols: cols, group: group, bias: bias, name: blobs.layer,
                  codes: codes.bindMemory(to: UInt8.self).baseAddress!,
                  groupScales: groupScales.bindMemory(to: Int8.self).baseAddress!, channelScales: channelScales)
    }

    override func forward(_ x: UnsafePointer<Float>, tokens M: Int, _ y: UnsafeMutablePointer<Float>) throws {
        let K = Int32(cols), G = Int32(group)
        rowsQuantized.reserve(M * cols)
        rowScales.reserve(M)
        groupSums.reserve(M * Int(sk_int4_padded_groups(K, G)))
        // (M, K) int8 with a scale per row, and the group sums that remove the codes' offset.
        sk_quantize_rows_int8(x, Int32(M), K, 0, rowsQuantized.pointer, rowScales.pointer)
        sk_int4_activation_sums(rowsQuantized.pointer, Int32(M), K, G, groupSums.pointer)
        withBias { bias in
            sk_linear_int4(rowsQuantized.pointer, rowScales.pointer, groupSums.pointer, Int32(M), K, G,
                           packed.pointer, channelScales.pointer, bias, Int32(rows), y)
        }
    }

    override var savedBytes: Int {
        rows * cols / 2 + rows * (cols / group) + rows * MemoryLayout<Float>.stride + biasBytes
    }

    override func dequantize(into weight: UnsafeMutablePointer<Float>) {
        var codes = [UInt8](repeating: 0, count: rows * cols / 2)
        var groupScales = [Int8](repeating: 0, count: rows * (cols / group))
        sk_unpack_weights_int4(packed.pointer, Int32(rows), Int32(cols), Int32(group), &codes, &groupScales)
        sk_dequantize_weights_int4(codes, groupScales, channelScales.pointer, Int32(rows), Int32(cols), Int32(group), weight)
    }

    override func serialize(to sink: BlobSink) throws {
        var codes = [UInt8](repeating: 0, count: rows * cols / 2)
        var groupScales = [Int8](repeating: 0, count: rows * (cols / group))
        sk_unpack_weights_int4(packed.pointer, Int32(rows), Int32(cols), Int32(group), &codes, &groupScales)
        try sink.write("weight.q4", codes)
        try sink.write("weight.group_scale", groupScales)
        try sink.write("weight.scale", channelScales.pointer, count: rows)
        try writeBias(to: sink)
    }
}
