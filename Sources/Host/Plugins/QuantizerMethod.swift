import Foundation
import PluginAPI

/// A quantizer method from a plugin, called with Swift values.
struct QuantizerMethod: Sendable {
    let method: PluginMethod
    init(_ method: PluginMethod) { self.method = method }

    var name: String { method.name }
    private var table: sk_quantizer { method.quantizer }

    /// The tag saved beside every layer this method writes.
    var formatVersion: String { table.format_version.map { String(cString: $0) } ?? "" }

    /// The SK_STAT_* statistics the method needs (0 when it needs none).
    var neededStatistics: UInt32 {
        method.extension(SK_EXT_CALIBRATION, as: sk_calibration_ext.self)?.pointee.needs ?? 0
    }

    /// The element type of blob `name` as the method declares it (SK_EXT_BLOB_TYPES); raw bytes
    /// when the method has no such extension or does not know the name.
    func blobType(_ name: String) -> SafeTensorsDType {
        guard let types = method.extension(SK_EXT_BLOB_TYPES, as: sk_blob_types_ext.self),
              let blobType = types.pointee.blob_type else { return .u8 }
        switch Int32(name.withCString { blobType(method.descriptor, $0) }) {
        case SK_BLOB_I8: return .i8
        case SK_BLOB_F16: return .f16
        case SK_BLOB_F32: return .f32
        case SK_BLOB_I32: return .i32
        default: return .u8
        }
    }

    /// Quantizes a linear layer (weight and optional bias).
    func quantize(weight: WeightView, options: [String: String] = [:], stats: ActivationStats? = nil) throws -> QuantizedLayer {
        let needs = neededStatistics
        if needs != 0 {
            let missing = stats?.missing(needs) ?? ActivationStats(features: weight.cols, tokens: 0).missing(needs)
            if !missing.isEmpty {
                throw PluginError("quantizer '\(name)' needs calibration statistics (\(missing.joined(separator: ", "))) for \(weight.layerName), and none were collected")
            }
        }
        let create = table.create!
        var layer: OpaquePointer?
        try weight.withCView { view in
            try method.withCOptions(options) { options in
                if let stats {
                    try stats.withCStats(layer: weight.layerName) { stats in
                        try method.call { create(method.descriptor, view, stats, options, &layer, $0) }
                    }
                } else {
                    try method.call { create(method.descriptor, view, nil, options, &layer, $0) }
                }
            }
        }
        guard let layer else { throw PluginError("quantizer '\(name)' (\(method.file)) returned no layer") }
        return QuantizedLayer(method: self, pointer: layer, rows: weight.rows, cols: weight.cols)
    }

    /// Rebuilds a layer from blobs saved by `QuantizedLayer.serialize()` under `formatVersion`.
    func load(blobs: [String: [UInt8]], formatVersion: String, rows: Int, cols: Int,
              options: [String: String] = [:]) throws -> QuantizedLayer {
        let deserialize = table.deserialize!
        let reader = BlobReader(blobs: blobs)
        var cReader = sk_blob_reader(
            struct_size: UInt32(MemoryLayout<sk_blob_reader>.size),
            context: Unmanaged.passUnretained(reader).toOpaque(),
            read: { reader, name, data, bytes, error in
                guard let context = reader?.pointee.context, let name, let data, let bytes else {
                    return sk_error_set(error, SK_ERR_INVALID_ARGUMENT, "blob read without a name or outputs")
                }
                let source = Unmanaged<BlobReader>.fromOpaque(context).takeUnretainedValue()
                let key = String(cString: name)
                guard let blob = source.aligned(key) else {
                    return sk_error_set(error, SK_ERR_BAD_DATA, "no blob named '\(key)' was saved")
                }
                data.pointee = UnsafeRawPointer(blob.baseAddress)
                bytes.pointee = UInt64(blob.count)
                return SK_OK
            })
        var layer: OpaquePointer?
        try withExtendedLifetime(reader) {
            try formatVersion.withCString { tag in
                try method.withCOptions(options) { options in
                    try method.call {
                        deserialize(method.descriptor, tag, Int64(rows), Int64(cols), &cReader, options, &layer, $0)
                    }
                }
            }
        }
        guard let layer else { throw PluginError("quantizer '\(name)' (\(method.file)) loaded no layer") }
        return QuantizedLayer(method: self, pointer: layer, rows: rows, cols: cols)
    }
}

/// A quantized linear layer owned by its plugin; destroyed through the plugin when released.
final class QuantizedLayer {
    let method: QuantizerMethod
    let rows: Int
    let cols: Int
    private let pointer: OpaquePointer

    fileprivate init(method: QuantizerMethod, pointer: OpaquePointer, rows: Int, cols: Int) {
        self.method = method
        self.pointer = pointer
        self.rows = rows
        self.cols = cols
    }

    deinit { method.method.quantizer.destroy?(pointer) }

    private var table: sk_quantizer { method.method.quantizer }

    /// y (tokens, rows) = x (tokens, cols) W^T + b.
    func forward(_ x: UnsafeBufferPointer<Float>, tokens: Int, into y: UnsafeMutableBufferPointer<Float>) throws {
        guard x.count == tokens * cols, y.count == tokens * rows else {
            throw PluginError("quantized layer (\(rows) x \(cols)): input of \(x.count) or output of \(y.count) values for \(tokens) tokens")
        }
        let forward = table.forward!
        try method.method.call { forward(pointer, x.baseAddress, Int64(tokens), y.baseAddress, $0) }
    }

    func forward(_ x: [Float], tokens: Int) throws -> [Float] {
        var y = [Float](repeating: 0, count: tokens * rows)
        try x.withUnsafeBufferPointer { x in
            try y.withUnsafeMutableBufferPointer { try forward(x, tokens: tokens, into: $0) }
        }
        return y
    }

    /// Whether the method can give the weight back in float (`dequantize`, added after ABI v1.0:
    /// NULL in the host's copy of a table too short to hold it).
    var canDequantize: Bool { table.dequantize != nil }

    /// The weight (rows, cols) as the method reconstructs it, without the bias.
    func dequantize() throws -> [Float] {
        guard let dequantize = table.dequantize else {
            throw PluginError("quantizer '\(method.name)' (\(method.method.file)) cannot dequantize its layers (its table has no dequantize)")
        }
        var weight = [Float](repeating: 0, count: rows * cols)
        try weight.withUnsafeMutableBufferPointer { out in
            try method.method.call { dequantize(pointer, out.baseAddress, $0) }
        }
        return weight
    }

    /// Bytes the layer takes on disk.
    var savedBytes: Int { Int(table.saved_bytes?(pointer) ?? 0) }

    /// The layer as named blobs, to be stored with the method's name and `method.formatVersion`.
    func serialize() throws -> [String: [UInt8]] {
        let serialize = table.serialize!
        let sink = BlobSink()
        var writer = sk_blob_writer(
            struct_size: UInt32(MemoryLayout<sk_blob_writer>.size),
            context: Unmanaged.passUnretained(sink).toOpaque(),
            write: { writer, name, data, bytes, error in
                guard let context = writer?.pointee.context, let name else {
                    return sk_error_set(error, SK_ERR_INVALID_ARGUMENT, "blob written without a name")
                }
                let sink = Unmanaged<BlobSink>.fromOpaque(context).takeUnretainedValue()
                let key = String(cString: name)
                guard sink.blobs[key] == nil else {
                    return sk_error_set(error, SK_ERR_INVALID_ARGUMENT, "blob '\(key)' written twice")
                }
                sink.blobs[key] = bytes == 0 ? [] : Array(UnsafeRawBufferPointer(start: data, count: Int(bytes)))
                return SK_OK
            })
        try withExtendedLifetime(sink) {
            try method.method.call { serialize(pointer, &writer, $0) }
        }
        return sink.blobs
    }
}

private final class BlobSink {
    var blobs: [String: [UInt8]] = [:]
}

/// Blobs for `deserialize`, each copied once into 64-byte-aligned memory as the ABI promises.
private final class BlobReader {
    let blobs: [String: [UInt8]]
    private var copies: [String: UnsafeMutableRawBufferPointer] = [:]

    init(blobs: [String: [UInt8]]) { self.blobs = blobs }

    func aligned(_ name: String) -> UnsafeMutableRawBufferPointer? {
        if let copy = copies[name] { return copy }
        guard let blob = blobs[name] else { return nil }
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(blob.count, 1), alignment: 64)
        copy.copyBytes(from: blob)
        let view = UnsafeMutableRawBufferPointer(rebasing: copy[0 ..< blob.count])
        copies[name] = view
        return view
    }

    deinit { copies.values.forEach { $0.deallocate() } }
}
