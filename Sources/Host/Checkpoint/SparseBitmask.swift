import Foundation

/// Sparse weights stored compactly, in the `sparse-bitmask` layout of Neural Magic's
/// compressed-tensors (what vLLM and `transformers`' compressed-tensors integration read).
///
/// A 2-D weight `<module>.weight` of shape (R, C) becomes four tensors:
///
///     <module>.shape        I64 (2)              the dense shape [R, C]
///     <module>.compressed   F32 (nnz)            the non-zero values, row-major
///     <module>.bitmask      U8  (R, ceil(C/8))   1 = non-zero; bit j%8 of byte j/8 (little bit order)
///     <module>.row_offsets  I64 (R)              index in `compressed` of each row's first value
///
/// At 50% sparsity a float32 weight takes 4·N/2 + N/8 + 8·R bytes instead of 4·N: about 0.53×.
///
/// Which weights are stored this way is said by the model's `config.json`, as compressed-tensors
/// says it: `quantization_config.sparsity_config` with `format: sparse-bitmask` and `targets`
/// (here the module names, e.g. `bert.encoder.layer.0.intermediate.dense`). Writing a folder honours
/// that entry; reading a safetensors file expands every complete group of four back to the dense
/// weight, so loading is transparent.
enum SparseBitmask {
    static let format = "sparse-bitmask"
    static let parts = ["shape", "compressed", "bitmask", "row_offsets"]

    // MARK: - Compressing

    /// The four entries of one dense (R, C) weight; `module` is the weight's name without `.weight`.
    static func compress(module: String, tensor: Tensor) -> [SafeTensorsWriter.Entry] {
        precondition(tensor.shape.count == 2, "sparse-bitmask stores 2-D weights")
        let rows = tensor.shape[0], cols = tensor.shape[1]
        let bytesPerRow = (cols + 7) / 8
        var values: [Float] = []
        var bitmask = [UInt8](repeating: 0, count: rows * bytesPerRow)
        var rowOffsets = [Int64](repeating: 0, count: rows)
        tensor.scalars.withUnsafeBufferPointer { w in
            for r in 0..<rows {
                rowOffsets[r] = Int64(values.count)
                for c in 0..<cols where w[r * cols + c] != 0 {
                    values.append(w[r * cols + c])
                    bitmask[r * bytesPerRow + c / 8] |= UInt8(1) << UInt8(c % 8)
                }
            }
        }
        return [
            SafeTensorsWriter.Entry(name: module + ".shape", dtype: .i64, shape: [2], bytes: littleEndianBytes([Int64(rows), Int64(cols)])),
            SafeTensorsWriter.Entry(name: module + ".compressed", tensor: Tensor(shape: [values.count], scalars: values)),
            SafeTensorsWriter.Entry(name: module + ".bitmask", dtype: .u8, shape: [rows, bytesPerRow], bytes: Data(bitmask)),
            SafeTensorsWriter.Entry(name: module + ".row_offsets", dtype: .i64, shape: [rows], bytes: littleEndianBytes(rowOffsets)),
        ]
    }

    /// The entries of a whole state dict: weights of `targets` (module names) compressed, the rest dense.
    static func entries(_ tensors: [(name: String, tensor: Tensor)], targets: Set<String>) -> [SafeTensorsWriter.Entry] {
        tensors.flatMap { name, tensor -> [SafeTensorsWriter.Entry] in
            if name.hasSuffix(".weight"), tensor.shape.count == 2, targets.contains(String(name.dropLast(".weight".count))) {
                return compress(module: String(name.dropLast(".weight".count)), tensor: tensor)
            }
            return [SafeTensorsWriter.Entry(name: name, tensor: tensor)]
        }
    }

    private static func littleEndianBytes(_ values: [Int64]) -> Data {
        var data = Data(capacity: values.count * 8)
        for value in values { withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) } }
        return data
    }

    // MARK: - The config entry

    /// The `quantization_config` that announces sparse-bitmask weights for `targets` (module names).
    static func quantizationConfig(targets: [String], globalSparsity: Double) -> JSONValue {
        .object([
            "quant_method": .string("compressed-tensors"),
            "format": .string("dense"),
            "config_groups": .object([:]),
            "sparsity_config": .object([
                "format": .string(format),
                "global_sparsity": .double(globalSparsity),
                "sparsity_structure": .string("unstructured"),
                "registry_requires_subclass": .bool(false),
                "targets": .array(targets.map { .string($0) }),
                "ignore": .array([]),
            ]),
        ])
    }

    /// The module names a config's `sparsity_config` stores as sparse-bitmask, or nil when it has none.
    static func targets(in config: ModelConfig) -> Set<String>? {
        guard let sparsity = config.raw["quantization_config"]?.objectValue?["sparsity_config"]?.objectValue,
              sparsity["format"]?.stringValue == format,
              let targets = sparsity["targets"]?.arrayValue else { return nil }
        return Set(targets.compactMap(\.stringValue))
    }

    // MARK: - Reading

    /// Every tensor of a safetensors file as float32, with each complete sparse-bitmask group
    /// (`.shape`, `.compressed`, `.bitmask`, `.row_offsets`) expanded to its dense `<module>.weight`,
    /// in the place of its first part. Inconsistent groups are errors naming the file and tensor.
    static func denseStateDict(_ file: SafeTensorsFile) throws -> StateDict {
        let names = Set(file.entries.map(\.name))
        func module(of name: String) -> String? {
            guard name.hasSuffix(".bitmask") else { return nil }
            let module = String(name.dropLast(".bitmask".count))
            return parts.allSatisfy { names.contains(module + "." + $0) } ? module : nil
        }
        let modules = Set(file.entries.compactMap { module(of: $0.name) })
        var stateDict = StateDict()
        for entry in file.entries {
            if let dot = entry.name.lastIndex(of: "."), parts.contains(String(entry.name[entry.name.index(after: dot)...])),
               modules.contains(String(entry.name[..<dot])) {
                let module = String(entry.name[..<dot])
                if stateDict[module + ".weight"] == nil {
                    stateDict[module + ".weight"] = try decompress(module: module, file: file)
                }
                continue
            }
            stateDict[entry.name] = file.convertedToFloat(entry)
        }
        return stateDict
    }

    /// The dense weight of one sparse-bitmask group.
    static func decompress(module: String, file: SafeTensorsFile) throws -> Tensor {
        func fail(_ problem: String) -> CheckpointError { CheckpointError(file: file.path, problem: "sparse-bitmask '\(module)': \(problem)") }
        let (shapeShape, shape) = try file.integers(named: module + ".shape")
        guard shapeShape == [2], shape.allSatisfy({ $0 >= 0 }) else { throw fail("shape \(shape) is not a 2-D shape") }
        let rows = shape[0], cols = shape[1]
        let bytesPerRow = (cols + 7) / 8
        let (offsetShape, rowOffsets) = try file.integers(named: module + ".row_offsets")
        guard offsetShape == [rows] else { throw fail("row_offsets has shape \(offsetShape), expected [\(rows)]") }
        guard let bitmaskEntry = file.entry(named: module + ".bitmask"), bitmaskEntry.dtype == .u8,
              bitmaskEntry.shape == [rows, bytesPerRow] else {
            throw fail("bitmask must be U8 of shape [\(rows), \(bytesPerRow)]")
        }
        let bitmask = [UInt8](file.rawBytes(of: bitmaskEntry))
        let values = try file.tensor(named: module + ".compressed")
        guard values.shape.count == 1 else { throw fail("compressed has shape \(values.shape), expected one dimension") }
        var dense = [Float](repeating: 0, count: rows * cols)
        var next = 0
        for r in 0..<rows {
            guard rowOffsets[r] == next else { throw fail("row_offsets[\(r)] is \(rowOffsets[r]) but the bitmask puts row \(r) at \(next)") }
            for c in 0..<cols where bitmask[r * bytesPerRow + c / 8] & (UInt8(1) << UInt8(c % 8)) != 0 {
                guard next < values.count else { throw fail("the bitmask marks more values than the \(values.count) stored") }
                dense[r * cols + c] = values.scalars[next]
                next += 1
            }
        }
        guard next == values.count else { throw fail("\(values.count) values stored but the bitmask marks \(next)") }
        return Tensor(shape: [rows, cols], scalars: dense)
    }
}
