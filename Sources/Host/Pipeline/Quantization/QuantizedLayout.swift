import Foundation

/// How a quantized classifier is stored as a Hugging Face folder: one `model.safetensors` whose
/// tensors are what `transformers` loads (compressed-tensors' layouts, or F16), and from which the
/// host rebuilds the blobs the plugin's `load` takes. There is one copy of the weights; the plugin
/// repacks them into its own panels at load time.
///
/// The mapping is the built-in Quant plugin's (blob names and meaning of its format version 1); a
/// method of another plugin has none, and its model keeps Sankshep's own format
/// (`model.quantized.safetensors`, QuantizedClassifier).
///
///     layer            method   tensors of a module <m> (N outputs, K inputs)            plugin blobs
///     encoder linear   dynamic  <m>.weight I8 (N, K), <m>.weight_scale F32 (N, 1)         weight.int8, weight.scale
///                      static   the same and <m>.input_scale F32 (1)                      … and input.scale
///                      int4     <m>.weight_packed I32 (N, K/8), <m>.weight_scale F32       weight.q4 (the same bytes),
///                               (N, K/G) = fl(s · D), <m>.weight_shape I64 (2)             weight.group_scale s, weight.scale D
///     table            dynamic  <m>.weight I8 (N, K), <m>.weight_scale F32 (N, 1)         weight.int8, weight.scale
///                      int4     <m>.weight I8 (N, K) values u − 8, <m>.weight_scale F32    weight.q4, weight.group_scale,
///                               (N, K/G)                                                   weight.scale
///     any              fp16     <m>.weight F16 (N, K)                                     weight.f16
///
/// Tables (embeddings, the head's hidden layer) are weights-only groups: Sankshep looks them up or
/// runs them in float, and so does compressed-tensors once it has decompressed them. An int4 table is
/// `int-quantized` with 4-bit values in int8 storage, because transformers cannot build an
/// `Embedding` from packed weights. INT4's channel scale D is not a compressed-tensors tensor: it is
/// kept in the layer's record (`inlineBlobs`, N floats), and s = round(scale / D) is checked to give
/// back the stored scale exactly.
///
/// The activation schemes describe what the plugin's kernels do, so a loader that simulates them
/// (compressed-tensors does) computes what Sankshep computes, up to rounding: Sankshep's activation
/// step is max|x| / 127, compressed-tensors' max|x| / 127.5. Query, key and value, one fused layer in
/// Sankshep, are three modules here: every scale is per output row, and the static input scale of
/// the fused layer (their shared input) is given to each.
enum QuantizedLayout {
    static let pluginName = "sankshep-quant"
    static let pluginFormatVersion = "1"
    /// `sankshep.layout` in the file's metadata: the plugin blobs are derived from the standard tensors.
    static let metadataTag = "huggingface/1"

    /// How one layer's weight is stored.
    enum Storage: Equatable {
        case quantized(CompressedTensorsQuantized.Scheme)
        case float16
    }

    /// The storage of a layer, nil where there is no standard layout. `groupSize` is INT4's.
    static func storage(for record: QuantizedLayerRecord, groupSize: Int?) -> Storage? {
        guard record.plugin == pluginName, record.formatVersion == pluginFormatVersion else { return nil }
        let perToken = CompressedTensorsQuantized.Arguments(numBits: 8, strategy: .token, dynamic: true)
        let channel = CompressedTensorsQuantized.Arguments(numBits: 8, strategy: .channel)
        let linear = record.role == .linear
        switch record.method {
        case "dynamic":
            return .quantized(.init(format: .intQuantized, weights: channel, inputActivations: linear ? perToken : nil))
        case "static" where linear:
            return .quantized(.init(format: .intQuantized, weights: channel, inputActivations: .init(numBits: 8, strategy: .tensor)))
        case "int4":
            guard let groupSize, groupSize > 0, record.cols % groupSize == 0 else { return nil }
            let weights = CompressedTensorsQuantized.Arguments(numBits: 4, strategy: .group, groupSize: groupSize)
            return .quantized(linear ? .init(format: .packQuantized, weights: weights, inputActivations: perToken)
                                     : .init(format: .intQuantized, weights: weights, inputActivations: nil))
        case "fp16":
            return .float16
        default:
            return nil
        }
    }

    /// INT4's group size from its serialized group scales (one int8 per group per row).
    static func groupSize(record: QuantizedLayerRecord, blobs: [String: [UInt8]]) -> Int? {
        let perRow = (blobs["weight.group_scale"]?.count ?? 0) / max(record.rows, 1)
        return perRow > 0 && record.cols % perRow == 0 ? record.cols / perRow : nil
    }

    static func module(of weight: String) -> String {
        weight.hasSuffix(".weight") ? String(weight.dropLast(".weight".count)) : weight
    }

    /// What the folder holds for a model: the `quantization_config` (nil when no weight is
    /// integer-quantized, as with fp16), every tensor, and each layer's inline blobs. Nil when the
    /// model has no such layout: a head transformers has no class for (the seed framework's), removed
    /// attention heads (transformers 5 loads no `pruned_heads`), or a layer of a method without one.
    /// `blobs[i]` are `weights[i]`'s serialized blobs.
    static func contents(float: Classifier, weights: [QuantizedWeight], blobs: [[String: [UInt8]]]) throws
        -> (quantizationConfig: JSONValue?, entries: [SafeTensorsWriter.Entry], inlineBlobs: [[String: [UInt8]]])? {
        if case .seedMLP = float.network.head { return nil }
        guard float.config.prunedHeads.isEmpty else { return nil }
        let store = float.network.store
        var groups: [(targets: [String], scheme: CompressedTensorsQuantized.Scheme)] = []
        var stored: [String: [SafeTensorsWriter.Entry]] = [:]   // weight name → its module's entries
        var inline: [[String: [UInt8]]] = []
        for (weight, layerBlobs) in zip(weights, blobs) {
            let record = weight.record
            // The host quantizes layers without their bias (QuantizedEncoder): the plugin's `bias` blob is empty.
            guard layerBlobs["bias"]?.isEmpty ?? true,
                  let storage = storage(for: record, groupSize: groupSize(record: record, blobs: layerBlobs)) else { return nil }
            var firstRow = 0
            for name in record.weights {
                guard let view = store.view(named: name), view.shape.count == 2, view.shape[1] == record.cols else {
                    throw PluginError("quantized layout: layer '\(record.name)' holds '\(name)', which is not a \(record.cols)-column weight of the model")
                }
                let rows = firstRow..<(firstRow + view.shape[0])
                let module = module(of: name)
                stored[name] = try moduleEntries(module: module, record: record, blobs: layerBlobs, rows: rows, storage: storage)
                if case .quantized(let scheme) = storage {
                    if let index = groups.firstIndex(where: { $0.scheme == scheme }) { groups[index].targets.append(module) }
                    else { groups.append(([module], scheme)) }
                }
                firstRow = rows.upperBound
            }
            guard firstRow == record.rows else {
                throw PluginError("quantized layout: layer '\(record.name)' has \(record.rows) rows, its weights \(firstRow)")
            }
            // INT4's channel scales D: the one blob no standard tensor carries.
            inline.append(record.method == "int4" ? ["weight.scale": layerBlobs["weight.scale"] ?? []] : [:])
        }
        var entries: [SafeTensorsWriter.Entry] = []
        for view in store.views {
            entries += stored[view.name] ?? [SafeTensorsWriter.Entry(name: view.name, tensor: store.tensor(view.name))]
        }
        let config = groups.isEmpty ? nil
            : CompressedTensorsQuantized.quantizationConfig(groups: groups, ignore: [float.network.names.headOutput])
        return (config, entries, inline)
    }

    /// The entries of output rows `rows` of a plugin layer, module `module`.
    static func moduleEntries(module: String, record: QuantizedLayerRecord, blobs: [String: [UInt8]], rows: Range<Int>,
                              storage: Storage) throws -> [SafeTensorsWriter.Entry] {
        let cols = record.cols
        func blob(_ name: String, bytes: Int) throws -> [UInt8] {
            guard let data = blobs[name], data.count == bytes else {
                throw PluginError("quantized layout: layer '\(record.name)': blob '\(name)' has \(blobs[name].map { "\($0.count) bytes" } ?? "no data"), expected \(bytes) bytes")
            }
            return data
        }
        guard case .quantized(let scheme) = storage else {
            let halves = try blob("weight.f16", bytes: record.rows * cols * 2)
            return [SafeTensorsWriter.Entry(name: module + ".weight", dtype: .f16, shape: [rows.count, cols],
                                            bytes: Data(halves[(rows.lowerBound * cols * 2)..<(rows.upperBound * cols * 2)]))]
        }
        let channelScales = floats(try blob("weight.scale", bytes: record.rows * 4))
        if scheme.weights.numBits == 8 {
            let codes = try blob("weight.int8", bytes: record.rows * cols)
            let inputScale = scheme.inputActivations?.dynamic == false ? floats(try blob("input.scale", bytes: 4))[0] : nil
            return CompressedTensorsQuantized.intQuantized(
                module: module, codes: codes[(rows.lowerBound * cols)..<(rows.upperBound * cols)].map { Int8(bitPattern: $0) },
                rows: rows.count, cols: cols, scales: Array(channelScales[rows]), inputScale: inputScale)
        }
        let codes = try blob("weight.q4", bytes: record.rows * cols / 2)
        let group = scheme.weights.groupSize ?? cols
        let groups = cols / group
        let groupScales = try blob("weight.group_scale", bytes: record.rows * groups)
        var values = [Int8](repeating: 0, count: rows.count * cols)
        var scales = [Float](repeating: 0, count: rows.count * groups)
        for (r, row) in rows.enumerated() {
            for c in 0..<cols {
                // Input 2i in the low nibble of byte i, 2i + 1 in the high one; u − 8 is the value.
                let byte = codes[row * cols / 2 + c / 2]
                values[r * cols + c] = Int8(Int(c % 2 == 0 ? byte & 0xF : byte >> 4) - 8)
            }
            for g in 0..<groups {
                scales[r * groups + g] = Float(Int8(bitPattern: groupScales[row * groups + g])) * channelScales[row]
            }
        }
        if scheme.format == .packQuantized {
            return CompressedTensorsQuantized.packQuantized(module: module, values: values, rows: rows.count, cols: cols, scales: scales)
        }
        return CompressedTensorsQuantized.intQuantized(module: module, codes: values, rows: rows.count, cols: cols,
                                                       scales: scales, inputScale: nil)
    }

    // MARK: - Reading back

    /// The blobs of one layer, rebuilt from the standard tensors of `file` and the record's inline
    /// blobs: what `moduleEntries` wrote, inverted. Every inconsistency is one line naming the file
    /// and the tensor.
    static func blobs(for record: QuantizedLayerRecord, in file: SafeTensorsFile) throws -> [String: [UInt8]] {
        func fail(_ problem: String) -> CheckpointError {
            CheckpointError(file: file.path, problem: "layer '\(record.name)': \(problem)")
        }
        func tensor(_ name: String, _ dtype: SafeTensorsDType, _ shape: [Int]) throws -> [UInt8] {
            guard let entry = file.entry(named: name) else { throw fail("no tensor '\(name)'") }
            guard entry.dtype == dtype, entry.shape == shape else {
                throw fail("tensor '\(name)' is \(entry.dtype.rawValue) \(entry.shape), expected \(dtype.rawValue) \(shape)")
            }
            return [UInt8](file.rawBytes(of: entry))
        }
        // Layers are quantized without their bias (QuantizedEncoder), which the plugin saves as empty.
        var blobs: [String: [UInt8]] = ["bias": []]
        for (name, text) in record.inlineBlobs ?? [:] {
            guard let data = Data(base64Encoded: text) else { throw fail("inline blob '\(name)' is not base64") }
            blobs[name] = [UInt8](data)
        }
        let modules = record.weights.map(module(of:))
        guard !modules.isEmpty else { throw fail("the record names no weights") }
        // Each module's row count, from its standard weight tensor.
        var moduleRows: [Int] = []
        for module in modules {
            let entry = file.entry(named: module + ".weight") ?? file.entry(named: module + ".weight_packed")
            guard let rows = entry?.shape.first else { throw fail("no tensor '\(module).weight' or '\(module).weight_packed'") }
            moduleRows.append(rows)
        }
        guard moduleRows.reduce(0, +) == record.rows else {
            throw fail("its tensors have \(moduleRows.reduce(0, +)) rows, the record says \(record.rows)")
        }
        let cols = record.cols
        switch record.method {
        case "fp16":
            blobs["weight.f16"] = try zip(modules, moduleRows).flatMap { try tensor($0 + ".weight", .f16, [$1, cols]) }
        case "dynamic", "static":
            blobs["weight.int8"] = try zip(modules, moduleRows).flatMap { try tensor($0 + ".weight", .i8, [$1, cols]) }
            blobs["weight.scale"] = try zip(modules, moduleRows).flatMap { try tensor($0 + ".weight_scale", .f32, [$1, 1]) }
            if record.method == "static" { blobs["input.scale"] = try tensor(modules[0] + ".input_scale", .f32, [1]) }
        case "int4":
            guard let channelBytes = blobs["weight.scale"], channelBytes.count == record.rows * 4 else {
                throw fail("no inline blob 'weight.scale' of \(record.rows) floats (INT4's channel scales)")
            }
            let channelScales = floats(channelBytes)
            guard let firstScale = file.entry(named: modules[0] + ".weight_scale"), firstScale.shape.count == 2, firstScale.shape[1] > 0,
                  cols % firstScale.shape[1] == 0, (cols / firstScale.shape[1]) % 2 == 0 else {
                throw fail("tensor '\(modules[0]).weight_scale' is not (rows, groups dividing \(cols))")
            }
            let groups = firstScale.shape[1]
            var codes: [UInt8] = [], groupScales: [UInt8] = []
            var row = 0
            for (module, rows) in zip(modules, moduleRows) {
                if record.role == .linear {
                    // The packed words' little-endian bytes are the plugin's nibbles.
                    codes += try tensor(module + ".weight_packed", .i32, [rows, cols / 8])
                } else {
                    let values = try tensor(module + ".weight", .i8, [rows, cols])
                    for pair in stride(from: 0, to: values.count, by: 2) {
                        let low = Int(Int8(bitPattern: values[pair])) + 8, high = Int(Int8(bitPattern: values[pair + 1])) + 8
                        guard (0...15).contains(low), (0...15).contains(high) else { throw fail("tensor '\(module).weight' has a value outside [-8, 7]") }
                        codes.append(UInt8(low | high << 4))
                    }
                }
                let scales = floats(try tensor(module + ".weight_scale", .f32, [rows, groups]))
                for r in 0..<rows {
                    let channel = channelScales[row + r]
                    for g in 0..<groups {
                        let scale = scales[r * groups + g]
                        let step = channel == 0 ? 0 : (scale / channel).rounded()
                        guard abs(step) <= 127, Float(step) * channel == scale else {
                            throw fail("tensor '\(module).weight_scale' [\(r), \(g)] = \(scale) is no integer multiple of the channel scale \(channel)")
                        }
                        groupScales.append(UInt8(bitPattern: Int8(step)))
                    }
                }
                row += rows
            }
            blobs["weight.q4"] = codes
            blobs["weight.group_scale"] = groupScales
        default:
            throw fail("method '\(record.method)' has no standard layout")
        }
        return blobs
    }

    static func floats(_ data: [UInt8]) -> [Float] {
        data.withUnsafeBytes { raw in (0..<(data.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) } }
    }
}
