import Foundation

/// Quantized linear weights in the layouts of Neural Magic's compressed-tensors (what vLLM and
/// `transformers`' compressed-tensors integration read), announced by `config.json`'s
/// `quantization_config` (see `quantizationConfig`). Only symmetric integer schemes, which is what
/// Sankshep's INT8 and INT4 are; zero points are then absent, as compressed-tensors writes them.
///
/// `int-quantized` (8-bit weights, one scale per output channel):
///
///     <module>.weight         I8  (R, C)     codes q in [-127, 127]; w = q · scale[r]
///     <module>.weight_scale   F32 (R, 1)
///     <module>.input_scale    F32 (1)        static activations only: x_q = clamp(round(x / scale))
///
/// `pack-quantized` (4-bit weights, one scale per group of G consecutive inputs):
///
///     <module>.weight_packed  I32 (R, C/8)   value v in [-8, 7] of input c as the nibble v + 8 at bits
///                                            4·(c mod 8) of word c/8 (compressed-tensors' pack_to_int32)
///     <module>.weight_scale   F32 (R, C/G)   w = v · scale[r, c / G]
///     <module>.weight_shape   I64 (2)        [R, C]
///
/// With little-endian words, byte i of a packed row holds input 2i in its low nibble and 2i + 1 in
/// its high nibble — the same bytes as Sankshep's INT4 codes (which store v + 8).
enum CompressedTensorsQuantized {
    enum Format: String, Sendable {
        case intQuantized = "int-quantized"
        case packQuantized = "pack-quantized"
    }

    /// One side of a scheme (weights or input activations), as compressed-tensors' QuantizationArgs.
    struct Arguments: Equatable, Sendable {
        enum Strategy: String, Sendable { case channel, group, token, tensor }
        var numBits: Int
        var strategy: Strategy
        var groupSize: Int? = nil
        var dynamic: Bool = false

        var json: JSONValue {
            .object([
                "num_bits": .int(numBits),
                "type": .string("int"),
                "symmetric": .bool(true),
                "strategy": .string(strategy.rawValue),
                "group_size": groupSize.map { .int($0) } ?? .null,
                "dynamic": .bool(dynamic),
            ])
        }
    }

    /// The one config group every quantized linear layer of a model belongs to.
    struct Scheme: Equatable, Sendable {
        var format: Format
        var weights: Arguments
        var inputActivations: Arguments?
    }

    /// The tensor suffixes a quantized module may have besides (or instead of) its float `weight`.
    static let parameterSuffixes = ["weight_packed", "weight_scale", "weight_shape", "weight_zero_point",
                                    "input_scale", "input_zero_point"]

    // MARK: - The config entry

    /// The `quantization_config` that announces each group's scheme for the modules it targets (full
    /// module names, e.g. `bert.encoder.layer.0.attention.self.query`); `ignore` and every module no
    /// group targets are plain float. Groups of different formats make the whole `mixed-precision`.
    static func quantizationConfig(groups: [(targets: [String], scheme: Scheme)], ignore: [String]) -> JSONValue {
        let formats = Set(groups.map(\.scheme.format.rawValue))
        var configGroups: [String: JSONValue] = [:]
        for (index, group) in groups.enumerated() {
            configGroups["group_\(index)"] = .object([
                "targets": .array(group.targets.map { .string($0) }),
                "weights": group.scheme.weights.json,
                "input_activations": group.scheme.inputActivations?.json ?? .null,
                "output_activations": .null,
                "format": .string(group.scheme.format.rawValue),
            ])
        }
        return .object([
            "quant_method": .string("compressed-tensors"),
            "format": .string(formats.count == 1 ? formats.first ?? mixedPrecision : mixedPrecision),
            "quantization_status": .string("compressed"),
            "config_groups": .object(configGroups),
            "ignore": .array(ignore.map { .string($0) }),
            "kv_cache_scheme": .null,
            "global_compression_ratio": .null,
        ])
    }

    /// The folder format of groups with different formats.
    static let mixedPrecision = "mixed-precision"

    // MARK: - Writing

    /// The `int-quantized` entries of one (rows, cols) weight; `module` is its name without `.weight`.
    /// `scales` are one per row (channel) or (rows, groups) row-major (group: 4-bit values in int8).
    static func intQuantized(module: String, codes: [Int8], rows: Int, cols: Int, scales: [Float],
                             inputScale: Float?) -> [SafeTensorsWriter.Entry] {
        precondition(codes.count == rows * cols && rows > 0 && scales.count % rows == 0, "int-quantized '\(module)': sizes disagree with \(rows) x \(cols)")
        var entries = [
            SafeTensorsWriter.Entry(name: module + ".weight", dtype: .i8, shape: [rows, cols], bytes: codes.withUnsafeBytes { Data($0) }),
            SafeTensorsWriter.Entry(name: module + ".weight_scale", tensor: Tensor(shape: [rows, scales.count / rows], scalars: scales)),
        ]
        if let inputScale {
            entries.append(SafeTensorsWriter.Entry(name: module + ".input_scale", tensor: Tensor(shape: [1], scalars: [inputScale])))
        }
        return entries
    }

    /// The `pack-quantized` entries of one (rows, cols) 4-bit weight: `values` in [-8, 7] row-major,
    /// `scales` (rows, cols / group) row-major.
    static func packQuantized(module: String, values: [Int8], rows: Int, cols: Int, scales: [Float]) -> [SafeTensorsWriter.Entry] {
        precondition(values.count == rows * cols && cols % 8 == 0 && rows > 0 && scales.count % rows == 0,
                     "pack-quantized '\(module)': sizes disagree with \(rows) x \(cols)")
        let words = pack(values, rows: rows, cols: cols)
        return [
            SafeTensorsWriter.Entry(name: module + ".weight_packed", dtype: .i32, shape: [rows, cols / 8], bytes: littleEndianBytes(words)),
            SafeTensorsWriter.Entry(name: module + ".weight_scale", tensor: Tensor(shape: [rows, scales.count / rows], scalars: scales)),
            SafeTensorsWriter.Entry(name: module + ".weight_shape", dtype: .i64, shape: [2], bytes: littleEndianBytes([Int64(rows), Int64(cols)])),
        ]
    }

    /// 4-bit values (rows, cols), each in [-8, 7], as compressed-tensors' pack_to_int32(num_bits=4)
    /// packs them: eight per int32 along a row, the first in the lowest bits, stored offset by 8.
    static func pack(_ values: [Int8], rows: Int, cols: Int) -> [Int32] {
        precondition(cols % 8 == 0, "4-bit packing needs a multiple of 8 columns, got \(cols)")
        var words = [Int32](repeating: 0, count: rows * cols / 8)
        for index in values.indices {
            precondition(values[index] >= -8 && values[index] <= 7, "4-bit value \(values[index]) is outside [-8, 7]")
            let nibble = UInt32(Int(values[index]) + 8)
            words[index / 8] |= Int32(bitPattern: nibble << UInt32(4 * (index % 8)))
        }
        return words
    }

    /// The inverse of `pack`: (rows, cols) values in [-8, 7] from (rows, cols / 8) words.
    static func unpack(_ words: [Int32], rows: Int, cols: Int) -> [Int8] {
        precondition(cols % 8 == 0 && words.count == rows * cols / 8, "4-bit unpacking: \(words.count) words for \(rows) x \(cols)")
        return (0..<(rows * cols)).map { index in
            Int8(Int((UInt32(bitPattern: words[index / 8]) >> UInt32(4 * (index % 8))) & 0xF) - 8)
        }
    }

    private static func littleEndianBytes<T: FixedWidthInteger>(_ values: [T]) -> Data {
        var data = Data(capacity: values.count * MemoryLayout<T>.size)
        for value in values { withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) } }
        return data
    }

    /// True when `config` announces quantized weights in one of these layouts. Once they are read
    /// back as float, the entry no longer describes the model and must go (a float folder saved with
    /// it would claim integer weights it does not hold).
    static func announcesQuantizedWeights(_ config: ModelConfig) -> Bool {
        guard let format = config.raw["quantization_config"]?.objectValue?["format"]?.stringValue else { return false }
        return Format(rawValue: format) != nil || format == mixedPrecision
    }

    // MARK: - Reading

    /// Replaces, in `stateDict` (read from `file`), every quantized module's tensors by its float
    /// `<module>.weight` (w = v · scale), so a compressed-tensors folder loads as a float model; the
    /// activation scales, which a float model has no place for, are dropped. Inconsistent groups
    /// are errors naming the file and the tensor.
    static func dequantize(_ stateDict: inout StateDict, file: SafeTensorsFile) throws {
        for entry in file.entries {
            let module: String
            if entry.name.hasSuffix(".weight_packed") {
                module = String(entry.name.dropLast(".weight_packed".count))
            } else if entry.name.hasSuffix(".weight"), entry.dtype == .i8, file.entry(named: entry.name + "_scale") != nil {
                module = String(entry.name.dropLast(".weight".count))
            } else {
                continue
            }
            stateDict[module + ".weight"] = try dequantizedWeight(module: module, file: file)
            for suffix in parameterSuffixes { stateDict[module + "." + suffix] = nil }
        }
    }

    /// The float weight of one quantized module.
    static func dequantizedWeight(module: String, file: SafeTensorsFile) throws -> Tensor {
        func fail(_ tensor: String, _ problem: String) -> CheckpointError {
            CheckpointError(file: file.path, problem: "compressed-tensors tensor '\(module).\(tensor)': \(problem)")
        }
        if let zeroPoint = file.entry(named: module + ".weight_zero_point") {
            let values = file.convertedToFloat(zeroPoint).scalars
            guard values.allSatisfy({ $0 == 0 }) else { throw fail("weight_zero_point", "asymmetric weights are not supported") }
        }
        guard let scaleEntry = file.entry(named: module + ".weight_scale"), scaleEntry.dtype.isFloatingPoint else {
            throw fail("weight_scale", "missing, or not a floating-point tensor")
        }
        let scale = file.convertedToFloat(scaleEntry)
        let rows: Int, cols: Int
        let values: [Int8]
        if let packedEntry = file.entry(named: module + ".weight_packed") {
            let (shapeShape, shape) = try file.integers(named: module + ".weight_shape")
            guard shapeShape == [2], shape.allSatisfy({ $0 > 0 }), shape[1] % 8 == 0 else {
                throw fail("weight_shape", "\(shape) is not a 2-D shape with a multiple of 8 columns")
            }
            (rows, cols) = (shape[0], shape[1])
            guard packedEntry.dtype == .i32, packedEntry.shape == [rows, cols / 8] else {
                throw fail("weight_packed", "must be I32 of shape [\(rows), \(cols / 8)], found \(packedEntry.dtype.rawValue) \(packedEntry.shape)")
            }
            let raw = file.rawBytes(of: packedEntry)
            let words = raw.withUnsafeBytes { bytes in
                (0..<(rows * cols / 8)).map { Int32(littleEndian: bytes.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self)) }
            }
            values = unpack(words, rows: rows, cols: cols)
        } else {
            guard let weightEntry = file.entry(named: module + ".weight"), weightEntry.shape.count == 2 else {
                throw fail("weight", "missing, or not a 2-D tensor")
            }
            (rows, cols) = (weightEntry.shape[0], weightEntry.shape[1])
            values = file.rawBytes(of: weightEntry).map { Int8(bitPattern: $0) }
        }
        // One scale per row (channel), per group of a row, or one for the whole tensor.
        let scalesPerRow: Int
        if scale.count == 1 {
            scalesPerRow = 0
        } else {
            guard scale.shape.count == 2, scale.shape[0] == rows, scale.shape[1] > 0, cols % scale.shape[1] == 0 else {
                throw fail("weight_scale", "shape \(scale.shape) is not [\(rows), 1], [\(rows), groups dividing \(cols)] or [1]")
            }
            scalesPerRow = scale.shape[1]
        }
        let group = scalesPerRow == 0 ? cols : cols / scalesPerRow
        var weight = [Float](repeating: 0, count: rows * cols)
        scale.scalars.withUnsafeBufferPointer { s in
            for r in 0..<rows {
                for c in 0..<cols {
                    let step = scalesPerRow == 0 ? s[0] : s[r * scalesPerRow + c / group]
                    weight[r * cols + c] = Float(values[r * cols + c]) * step
                }
            }
        }
        return Tensor(shape: [rows, cols], scalars: weight)
    }
}
