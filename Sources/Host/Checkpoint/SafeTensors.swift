import Foundation

/// The element types a safetensors file may declare.
enum SafeTensorsDType: String, Sendable {
    case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u8 = "U8", bool = "BOOL"

    var byteSize: Int {
        switch self {
        case .f64, .i64: 8
        case .f32, .i32: 4
        case .f16, .bf16, .i16: 2
        case .i8, .u8, .bool: 1
        }
    }
}

/// An error in a checkpoint file: always names the file and what is wrong with it.
struct CheckpointError: Error, CustomStringConvertible {
    let file: String
    let problem: String
    var description: String { "\(file): \(problem)" }
}

/// A safetensors file read into memory: an 8-byte little-endian header length, a JSON header
/// `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}`, then the data.
struct SafeTensorsFile {
    struct Entry: Sendable {
        let name: String
        let dtype: SafeTensorsDType
        let shape: [Int]
        /// Byte range inside the data section (after the header).
        let range: Range<Int>
    }

    let path: String
    let metadata: [String: String]
    /// Entries in file order.
    let entries: [Entry]
    private let byName: [String: Int]
    private let bytes: Data
    private let dataStart: Int

    init(contentsOf url: URL) throws {
        let path = url.path
        let bytes: Data
        do { bytes = try Data(contentsOf: url, options: .alwaysMapped) } catch {
            throw CheckpointError(file: path, problem: "cannot read the file (\(error.localizedDescription))")
        }
        try self.init(bytes: bytes, path: path)
    }

    init(bytes: Data, path: String) throws {
        self.path = path
        self.bytes = bytes
        guard bytes.count >= 8 else {
            throw CheckpointError(file: path, problem: "truncated: \(bytes.count) bytes, shorter than the 8-byte header length")
        }
        let headerLength = bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard headerLength <= UInt64(bytes.count - 8) else {
            throw CheckpointError(file: path, problem: "header length \(headerLength) runs past the end of the file (\(bytes.count) bytes)")
        }
        let headerEnd = 8 + Int(headerLength)
        let json: Any
        do { json = try JSONSerialization.jsonObject(with: bytes.subdata(in: 8..<headerEnd)) } catch {
            throw CheckpointError(file: path, problem: "header is not valid JSON")
        }
        guard let header = json as? [String: Any] else {
            throw CheckpointError(file: path, problem: "header is not a JSON object")
        }
        self.dataStart = headerEnd
        let dataLength = bytes.count - headerEnd
        var metadata: [String: String] = [:]
        var entries: [Entry] = []
        for (name, value) in header {
            if name == "__metadata__" {
                for (key, item) in (value as? [String: Any]) ?? [:] { metadata[key] = "\(item)" }
                continue
            }
            guard let info = value as? [String: Any],
                  let dtypeName = info["dtype"] as? String,
                  let shape = (info["shape"] as? [NSNumber])?.map(\.intValue),
                  let offsets = (info["data_offsets"] as? [NSNumber])?.map(\.intValue), offsets.count == 2
            else { throw CheckpointError(file: path, problem: "tensor '\(name)': malformed header entry") }
            guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
                throw CheckpointError(file: path, problem: "tensor '\(name)': unsupported dtype \(dtypeName)")
            }
            guard shape.allSatisfy({ $0 >= 0 }) else {
                throw CheckpointError(file: path, problem: "tensor '\(name)': negative dimension in shape \(shape)")
            }
            let begin = offsets[0], end = offsets[1]
            guard begin >= 0, end >= begin, end <= dataLength else {
                throw CheckpointError(file: path, problem: "tensor '\(name)': data offsets [\(begin), \(end)] lie outside the \(dataLength)-byte data section")
            }
            let expected = shape.reduce(1, *) * dtype.byteSize
            guard end - begin == expected else {
                throw CheckpointError(file: path, problem: "tensor '\(name)': shape \(shape) of \(dtypeName) needs \(expected) bytes, offsets give \(end - begin)")
            }
            entries.append(Entry(name: name, dtype: dtype, shape: shape, range: begin..<end))
        }
        // Tensors must not overlap: sort by offset and compare neighbours.
        let sorted = entries.sorted { $0.range.lowerBound < $1.range.lowerBound }
        for (previous, next) in zip(sorted, sorted.dropFirst()) where previous.range.overlaps(next.range) {
            throw CheckpointError(file: path, problem: "tensors '\(previous.name)' and '\(next.name)' overlap in the data section")
        }
        self.entries = sorted
        self.metadata = metadata
        self.byName = Dictionary(uniqueKeysWithValues: sorted.enumerated().map { ($1.name, $0) })
    }

    var names: [String] { entries.map(\.name) }

    func entry(named name: String) -> Entry? { byName[name].map { entries[$0] } }

    /// The raw bytes of one tensor.
    func rawBytes(of entry: Entry) -> Data {
        bytes.subdata(in: (dataStart + entry.range.lowerBound)..<(dataStart + entry.range.upperBound))
    }

    /// A floating-point tensor converted to float32 (F32, F16, BF16, F64 are accepted).
    func tensor(named name: String) throws -> Tensor {
        guard let entry = entry(named: name) else {
            throw CheckpointError(file: path, problem: "missing tensor '\(name)'")
        }
        let count = entry.shape.reduce(1, *)
        var scalars = [Float](repeating: 0, count: count)
        let start = dataStart + entry.range.lowerBound
        bytes.withUnsafeBytes { raw in
            let base = raw.baseAddress!.advanced(by: start)
            scalars.withUnsafeMutableBufferPointer { out in
                switch entry.dtype {
                case .f32:
                    for i in 0..<count { out[i] = Float(bitPattern: UInt32(littleEndian: base.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))) }
                case .f16:
                    for i in 0..<count { out[i] = Float(Float16(bitPattern: UInt16(littleEndian: base.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)))) }
                case .bf16:
                    for i in 0..<count { out[i] = Float(bitPattern: UInt32(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))) << 16) }
                case .f64:
                    for i in 0..<count { out[i] = Float(Double(bitPattern: UInt64(littleEndian: base.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)))) }
                default:
                    break
                }
            }
        }
        switch entry.dtype {
        case .f32, .f16, .bf16, .f64: return Tensor(shape: entry.shape, scalars: scalars)
        default: throw CheckpointError(file: path, problem: "tensor '\(name)': expected a floating-point dtype, found \(entry.dtype.rawValue)")
        }
    }

    /// An integer tensor (I64, I32) as Int, e.g. token ids in a reference file.
    func integers(named name: String) throws -> (shape: [Int], values: [Int]) {
        guard let entry = entry(named: name) else {
            throw CheckpointError(file: path, problem: "missing tensor '\(name)'")
        }
        let count = entry.shape.reduce(1, *)
        let start = dataStart + entry.range.lowerBound
        let values: [Int] = try bytes.withUnsafeBytes { raw in
            let base = raw.baseAddress!.advanced(by: start)
            switch entry.dtype {
            case .i64: return (0..<count).map { Int(Int64(littleEndian: base.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self))) }
            case .i32: return (0..<count).map { Int(Int32(littleEndian: base.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self))) }
            default: throw CheckpointError(file: path, problem: "tensor '\(name)': expected an integer dtype, found \(entry.dtype.rawValue)")
            }
        }
        return (entry.shape, values)
    }
}
