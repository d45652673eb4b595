import PluginAPI
import PluginSupport

// What every quantized linear layer of this plugin shares: its shape, its bias, the checks on what
// the host hands in, and the way blobs go out and come back.
//
// Shapes as PyTorch's nn.Linear: the weight is (N, K) = (rows, cols) = (out, in), the input x is
// (M, K) with M = tokens, the output y is (M, N); y = x · Wᵀ + b.

/// A failure to report through the ABI: a status and one line. `message == nil` means the host's
/// blob reader already wrote the line into the error buffer, which must then be left alone.
struct QuantFailure: Error {
    let status: sk_status
    let message: String?

    init(_ status: Int32, _ message: String?) {
        self.status = status
        self.message = message
    }

    static func invalid(_ message: String) -> QuantFailure { QuantFailure(SK_ERR_INVALID_ARGUMENT, message) }
    static func badData(_ message: String) -> QuantFailure { QuantFailure(SK_ERR_BAD_DATA, message) }
}

/// Runs `body`, turning a thrown QuantFailure into its status and one-line message.
func reporting(_ error: UnsafeMutablePointer<sk_error>?, _ body: () throws -> Void) -> sk_status {
    do {
        try body()
        return SK_OK
    } catch let failure as QuantFailure {
        if let message = failure.message { return sk_error_set(error, failure.status, message) }
        return failure.status
    } catch let other {
        return sk_error_set(error, SK_ERR_INTERNAL, "\(other)")
    }
}

/// Memory a layer owns, 64-byte aligned so SIMD loads never straddle more cache lines than needed.
/// Contents start uninitialised; `reserve` only ever grows (a scratch buffer reaches the largest
/// batch once and then forward allocates nothing).
final class AlignedBuffer<Element> {
    private(set) var pointer: UnsafeMutablePointer<Element>
    private(set) var capacity: Int

    init(count: Int) {
        capacity = max(count, 1)
        pointer = UnsafeMutableRawPointer.allocate(byteCount: capacity * MemoryLayout<Element>.stride, alignment: 64)
            .bindMemory(to: Element.self, capacity: capacity)
    }

    convenience init(copying source: UnsafeRawBufferPointer) {
        self.init(count: source.count / MemoryLayout<Element>.stride)
        UnsafeMutableRawPointer(pointer).copyMemory(from: source.baseAddress!, byteCount: source.count)
    }

    func reserve(_ count: Int) {
        guard count > capacity else { return }
        UnsafeMutableRawPointer(pointer).deallocate()
        capacity = count
        pointer = UnsafeMutableRawPointer.allocate(byteCount: capacity * MemoryLayout<Element>.stride, alignment: 64)
            .bindMemory(to: Element.self, capacity: capacity)
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }
}

/// Where `serialize` puts blobs: the host's writer.
struct BlobSink {
    let writer: UnsafeMutablePointer<sk_blob_writer>
    let error: UnsafeMutablePointer<sk_error>?

    func write(_ name: String, _ bytes: UnsafeRawBufferPointer) throws {
        guard let write = writer.pointee.write else { throw QuantFailure.invalid("the host's blob writer has no write function") }
        let status = write(writer, name, bytes.baseAddress, UInt64(bytes.count), error)
        if status != SK_OK { throw QuantFailure(status, nil) }
    }

    func write<T>(_ name: String, _ pointer: UnsafePointer<T>, count: Int) throws {
        try write(name, UnsafeRawBufferPointer(start: pointer, count: count * MemoryLayout<T>.stride))
    }

    func write<T>(_ name: String, _ values: [T]) throws {
        try values.withUnsafeBytes { try write(name, $0) }
    }
}

/// Where `deserialize` gets blobs: the host's reader, with the size checks every blob needs.
struct BlobSource {
    let reader: UnsafeMutablePointer<sk_blob_reader>
    let error: UnsafeMutablePointer<sk_error>?
    let layer: String

    /// The blob `name` as saved, whatever its size.
    func raw(_ name: String) throws -> UnsafeRawBufferPointer {
        guard let read = reader.pointee.read else { throw QuantFailure.badData("the host's blob reader has no read function") }
        var data: UnsafeRawPointer?
        var bytes: UInt64 = 0
        let status = read(reader, name, &data, &bytes, error)
        if status != SK_OK { throw QuantFailure(status, nil) }
        guard bytes == 0 || data != nil, bytes <= UInt64(Int.max) else {
            throw QuantFailure.badData("\(layer): blob '\(name)' came back without data")
        }
        return UnsafeRawBufferPointer(start: data, count: Int(bytes))
    }

    /// The blob `name`, which must hold exactly `count` values of `T` (or, with `allowEmpty`, none).
    func read<T>(_ name: String, as type: T.Type, count: Int, allowEmpty: Bool = false) throws -> UnsafeRawBufferPointer {
        let blob = try raw(name)
        let expected = count * MemoryLayout<T>.stride
        if allowEmpty && blob.isEmpty { return blob }
        guard blob.count == expected else {
            throw QuantFailure.badData("\(layer): blob '\(name)' has \(blob.count) bytes, expected \(expected)")
        }
        return blob
    }

    func floats(_ name: String, count: Int, allowEmpty: Bool = false) throws -> [Float] {
        let raw = try read(name, as: Float.self, count: count, allowEmpty: allowEmpty)
        let values = raw.isEmpty ? [] : (0..<count).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }
        if let bad = values.firstIndex(where: { !$0.isFinite }) {
            throw QuantFailure.badData("\(layer): blob '\(name)' value \(bad) is \(values[bad]), not a finite number")
        }
        return values
    }
}

/// A quantized linear layer: the object behind an `sk_quant_layer` pointer.
class QuantizedLinear {
    let rows: Int       // N, output features
    let cols: Int       // K, input features
    let bias: [Float]   // (N), or empty when the layer has none
    let name: String    // for error messages

    init(rows: Int, cols: Int, bias: [Float], name: String) {
        self.rows = rows
        self.cols = cols
        self.bias = bias
        self.name = name
    }

    /// y (tokens, N) = x (tokens, K) · Wᵀ + b. `tokens` >= 1 and fits Int32 (checked by the caller).
    func forward(_ x: UnsafePointer<Float>, tokens: Int, _ y: UnsafeMutablePointer<Float>) throws {
        fatalError("subclasses implement forward")
    }

    /// Bytes of the blobs `serialize` writes.
    var savedBytes: Int { fatalError("subclasses implement savedBytes") }

    func serialize(to sink: BlobSink) throws { fatalError("subclasses implement serialize") }

    /// The weight as stored, back in float: W (N, K) row-major into `weight`.
    func dequantize(into weight: UnsafeMutablePointer<Float>) { fatalError("subclasses implement dequantize") }

    /// The bias blob: N float32, or zero bytes for a layer without bias.
    func writeBias(to sink: BlobSink) throws { try sink.write("bias", bias) }
    var biasBytes: Int { bias.count * MemoryLayout<Float>.stride }

    /// Runs `body` with the bias pointer the kernels take (NULL when there is none).
    func withBias<R>(_ body: (UnsafePointer<Float>?) throws -> R) rethrows -> R {
        if bias.isEmpty { return try body(nil) }
        return try bias.withUnsafeBufferPointer { try body($0.baseAddress) }
    }
}

/// The weight view as checked Swift values: its name, shape, data and bias.
struct CheckedWeight {
    let name: String
    let rows: Int
    let cols: Int
    let data: UnsafePointer<Float>
    let bias: [Float]

    init(_ view: UnsafePointer<sk_weight_view>?) throws {
        guard let view = view?.pointee, let data = view.data else { throw QuantFailure.invalid("no weight given") }
        name = view.layer_name.map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "(unnamed layer)"
        guard view.rows > 0, view.cols > 0, view.rows <= Int64(Int32.max), view.cols <= Int64(Int32.max),
              view.rows * view.cols <= Int64(Int32.max) else {
            throw QuantFailure.invalid("\(name): weight of \(view.rows) x \(view.cols) is empty or too large for the kernels")
        }
        rows = Int(view.rows)
        cols = Int(view.cols)
        self.data = data
        for i in 0..<(rows * cols) where !data[i].isFinite {
            throw QuantFailure.invalid("\(name): weight at row \(i / cols), column \(i % cols) is \(data[i]), not a finite number")
        }
        if let b = view.bias {
            bias = Array(UnsafeBufferPointer(start: b, count: rows))
            if let bad = bias.firstIndex(where: { !$0.isFinite }) {
                throw QuantFailure.invalid("\(name): bias \(bad) is \(bias[bad]), not a finite number")
            }
        } else {
            bias = []
        }
    }
}

/// The shape given to `deserialize`, checked as `create` checks a weight's.
func checkedShape(_ rows: Int64, _ cols: Int64, layer: String) throws -> (rows: Int, cols: Int) {
    guard rows > 0, cols > 0, rows * cols <= Int64(Int32.max) else {
        throw QuantFailure.badData("\(layer): cannot load a layer of \(rows) x \(cols)")
    }
    return (Int(rows), Int(cols))
}
