import Foundation

/// The compressed-tensors export of a quantized classifier: `compressed-tensors/` in a quantized
/// stage folder, a Hugging Face folder whose encoder linear layers keep the plugin's integer weights
/// and scales in compressed-tensors' layout (CompressedTensorsQuantized), announced by
/// `quantization_config` in its `config.json`, so `transformers` (with the `compressed-tensors`
/// package) loads it as a quantized model, and vLLM can serve it.
///
/// The mapping reads the Quant plugin's blobs, whose names and meaning are that plugin's (format
/// version 1); a method of another plugin gets no such export, only the dequantized `transformers/`.
///
///     dynamic  weight.int8 (N, K), weight.scale (N)   int-quantized: channel weights, inputs int8
///                                                     per token, dynamic (the plugin's per-row scales)
///     static   the same and input.scale (1)           int-quantized: channel weights, inputs int8 with
///                                                     the calibrated per-tensor scale
///     int4     weight.q4 (N, K/2) codes u,            pack-quantized: value u − 8, group scale s · D;
///              weight.group_scale (N, K/G) s,         inputs int8 per token, dynamic (the plugin
///              weight.scale (N) D                     quantizes rows to int8 before its product)
///     fp16     (no integer layout)                    none: its export is the dequantized one
///
/// The activation schemes describe what the plugin's kernels do, so a loader that simulates them
/// (compressed-tensors does) computes what Sankshep computes, up to rounding: Sankshep's activation
/// step is max|x| / 127, compressed-tensors' max|x| / 127.5. The INT8 weights are the same numbers
/// (q · scale in float32). The INT4 weights are s · D rounded to float32 once, then times (u − 8),
/// where Sankshep rounds ((u − 8) · s) · D once: they can differ in the last bit (relative 2⁻²⁴).
///
/// Query, key and value, fused into one layer by Sankshep, are split back into their three modules:
/// every scale is per output row, and the static input scale of the fused layer (their shared
/// input) is given to each. Embeddings, the head (in `ignore`), LayerNorms and biases are float32:
/// the embeddings with the values the quantized model looks up.
enum CompressedTensorsExport {
    static let folderName = "compressed-tensors"
    static let pluginName = "sankshep-quant"
    static let pluginFormatVersion = "1"

    /// The scheme of one quantized linear layer, nil where compressed-tensors has no layout for it.
    static func scheme(for record: QuantizedLayerRecord, blobs: [String: [UInt8]]) -> CompressedTensorsQuantized.Scheme? {
        guard record.role == .linear, record.plugin == pluginName, record.formatVersion == pluginFormatVersion else { return nil }
        let perToken = CompressedTensorsQuantized.Arguments(numBits: 8, strategy: .token, dynamic: true)
        let channel = CompressedTensorsQuantized.Arguments(numBits: 8, strategy: .channel)
        switch record.method {
        case "dynamic":
            return .init(format: .intQuantized, weights: channel, inputActivations: perToken)
        case "static":
            return .init(format: .intQuantized, weights: channel,
                         inputActivations: .init(numBits: 8, strategy: .tensor))
        case "int4":
            // The group size follows from the number of group scales per row, as the plugin reads it.
            let perRow = (blobs["weight.group_scale"]?.count ?? 0) / max(record.rows, 1)
            guard perRow > 0, record.cols % perRow == 0 else { return nil }
            return .init(format: .packQuantized, weights: .init(numBits: 4, strategy: .group, groupSize: record.cols / perRow),
                         inputActivations: perToken)
        default:
            return nil
        }
    }

    /// The folder's scheme, `ignore` list and tensors, or nil when the model has no such export: a
    /// head `transformers` has no class for (the seed framework's), or linear layers of a method
    /// without a layout, or of more than one scheme. `blobs[i]` are `weights[i]`'s serialized blobs.
    static func contents(float: Classifier, weights: [QuantizedWeight], blobs: [[String: [UInt8]]]) throws
        -> (scheme: CompressedTensorsQuantized.Scheme, ignore: [String], entries: [SafeTensorsWriter.Entry])? {
        if case .seedMLP = float.network.head { return nil }
        let store = float.network.store, names = float.network.names
        var scheme: CompressedTensorsQuantized.Scheme?
        var quantized: [String: [SafeTensorsWriter.Entry]] = [:]   // weight name → its module's entries
        for (weight, layerBlobs) in zip(weights, blobs) where weight.record.role == .linear {
            guard let layerScheme = Self.scheme(for: weight.record, blobs: layerBlobs), scheme == nil || scheme == layerScheme else { return nil }
            scheme = layerScheme
            var firstRow = 0
            for name in weight.record.weights {
                guard let view = store.view(named: name), view.shape.count == 2, view.shape[1] == weight.record.cols else {
                    throw PluginError("compressed-tensors export: layer '\(weight.record.name)' holds '\(name)', which is not a \(weight.record.cols)-column weight of the model")
                }
                let rows = firstRow..<(firstRow + view.shape[0])
                quantized[name] = try moduleEntries(module: String(name.dropLast(".weight".count)), record: weight.record,
                                                    blobs: layerBlobs, rows: rows, scheme: layerScheme)
                firstRow = rows.upperBound
            }
            guard firstRow == weight.record.rows else {
                throw PluginError("compressed-tensors export: layer '\(weight.record.name)' has \(weight.record.rows) rows, its weights \(firstRow)")
            }
        }
        guard let scheme else { return nil }
        var entries: [SafeTensorsWriter.Entry] = []
        for view in store.views {
            if let moduleEntries = quantized[view.name] {
                entries += moduleEntries
            } else {
                entries.append(SafeTensorsWriter.Entry(name: view.name, tensor: store.tensor(view.name)))
            }
        }
        // The head's linear layers run in float in Sankshep (its hidden weight dequantized).
        return (scheme, [names.headHidden, names.headOutput], entries)
    }

    /// The compressed-tensors entries of output rows `rows` of a plugin layer.
    static func moduleEntries(module: String, record: QuantizedLayerRecord, blobs: [String: [UInt8]], rows: Range<Int>,
                              scheme: CompressedTensorsQuantized.Scheme) throws -> [SafeTensorsWriter.Entry] {
        let cols = record.cols
        func blob(_ name: String, bytes: Int) throws -> [UInt8] {
            guard let data = blobs[name], data.count == bytes else {
                throw PluginError("compressed-tensors export: layer '\(record.name)': blob '\(name)' has \(blobs[name].map { "\($0.count) bytes" } ?? "no data"), expected \(bytes) bytes")
            }
            return data
        }
        func floats(_ data: [UInt8]) -> [Float] {
            data.withUnsafeBytes { raw in (0..<(data.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) } }
        }
        let channelScales = floats(try blob("weight.scale", bytes: record.rows * 4))
        switch scheme.format {
        case .intQuantized:
            let codes = try blob("weight.int8", bytes: record.rows * cols)
            let inputScale = scheme.inputActivations?.dynamic == false ? floats(try blob("input.scale", bytes: 4))[0] : nil
            return CompressedTensorsQuantized.intQuantized(
                module: module, codes: codes[(rows.lowerBound * cols)..<(rows.upperBound * cols)].map { Int8(bitPattern: $0) },
                rows: rows.count, cols: cols, scales: Array(channelScales[rows]), inputScale: inputScale)
        case .packQuantized:
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
            return CompressedTensorsQuantized.packQuantized(module: module, values: values, rows: rows.count, cols: cols, scales: scales)
        }
    }

    /// Writes the export into `directory` (config, weights, tokenizer files, `sankshep.json`) and
    /// returns true, or removes a stale one and returns false when the model has none.
    static func write(float: Classifier, weights: [QuantizedWeight], blobs: [[String: [UInt8]]], to directory: URL,
                      settings: SankshepSettings) throws -> Bool {
        // A head-pruned model has none: transformers 5 loads no `pruned_heads`, and putting the removed
        // heads back as zero columns would regroup INT4's column groups, which no scale can express
        // exactly. Its dense `transformers/` export (TransformersExport) is what loads there.
        guard float.config.prunedHeads.isEmpty,
              let (scheme, ignore, entries) = try contents(float: float, weights: weights, blobs: blobs) else {
            // A folder left by an earlier run with another method must not pass for this model's export.
            if FileManager.default.fileExists(atPath: directory.path) { try? FileManager.default.removeItem(at: directory) }
            return false
        }
        var config = float.config
        // Replaces any sparse-bitmask entry of a pruned model: the quantized weights are stored dense.
        config.raw["quantization_config"] = CompressedTensorsQuantized.quantizationConfig(scheme, ignore: ignore)
        try HuggingFaceDirectory.write(config: config, entries: entries, tokenizerFiles: float.tokenizerFiles, to: directory)
        var exportSettings = settings
        exportSettings.extra["format"] = "compressed-tensors \(scheme.format.rawValue)"
        try exportSettings.write(to: directory)
        return true
    }
}
