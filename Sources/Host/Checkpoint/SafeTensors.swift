import Foundation

/// The element types a safetensors file may declare (torch storages map onto the same set).
enum SafeTensorsDType: String, Sendable, CaseIterable {
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

    var isFloatingPoint: Bool { self == .f64 || self == .f32 || self == .f16 || self == .bf16 }

    /// Converts `count` little-endian elements at `source` (any alignment) to float32.
    /// Integers convert exactly up to 2^24, which covers every buffer a state dict holds (position ids).
    func decode(_ source: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Float>) {
        switch self {
        case .f32:
            #if _endian(little)
            UnsafeMutableRawPointer(out).copyMemory(from: source, byteCount: count * 4)
            #else
            for i in 0..<count { out[i] = Float(bitPattern: UInt32(littleEndian: source.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))) }
            #endif
        case .f16:
            for i in 0..<count { out[i] = Float(Float16(bitPattern: UInt16(littleEndian: source.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)))) }
        case .bf16:
            // bfloat16 is the top half of a float32.
            for i in 0..<count { out[i] = Float(bitPattern: UInt32(UInt16(littleEndian: source.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))) << 16) }
        case .f64:
            for i in 0..<count { out[i] = Float(Double(bitPattern: UInt64(littleEndian: source.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)))) }
        case .i64:
            for i in 0..<count { out[i] = Float(Int64(littleEndian: source.loadUnaligned(fromByteOffset: i * 8, as: Int64.self))) }
        case .i32:
            for i in 0..<count { out[i] = Float(Int32(littleEndian: source.loadUnaligned(fromByteOffset: i * 4, as: Int32.self))) }
        case .i16:
            for i in 0..<count { out[i] = Float(Int16(littleEndian: source.loadUnaligned(fromByteOffset: i * 2, as: Int16.self))) }
        case .i8:
            for i in 0..<count { out[i] = Float(source.load(fromByteOffset: i, as: Int8.self)) }
        case .u8, .bool:
            for i in 0..<count { out[i] = Float(source.load(fromByteOffset: i, as: UInt8.self)) }
        }
    }
}

/// An error in a checkpoint file: always names the file and what is wrong with it.
struct CheckpointError: Error, CustomStringConvertible {
    let file: String
    let problem: String
    var description: String { oneLine("\(file): \(problem)") }
}

/// A safetensors file read into memory: an 8-byte little-endian header length, a JSON header
/// `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}`, then the data.
///
/// Everything the header claims is checked before any tensor is touched, as the Python reader does:
/// the header fits in the file, every dtype/shape/offset is well-formed, every tensor's byte range
/// matches its shape and lies inside the data section, and the ranges tile the data section exactly
/// (no overlap, no gap, nothing after the last tensor). A lying or truncated file is refused with one
/// line naming the file and the tensor.
struct SafeTensorsFile {
    struct Entry: Sendable {
        let name: String
        let dtype: SafeTensorsDType
        let shape: [Int]
        /// Byte range inside the data section (after the header).
        let range: Range<Int>
        var count: Int { shape.reduce(1, *) }
    }

    /// The Python reader refuses headers above 100 MB; so do we, before parsing them.
    static let maximumHeaderLength = 100_000_000

    let path: String
    let metadata: [String: String]
    /// Entries in data order (by offset).
    let entries: [Entry]
    private let byName: [String: Int]
    private let bytes: Data
    private let dataStart: Int

    init(contentsOf url: URL) throws {
        let path = url.path
        let bytes: Data
        do { bytes = try InputFile.read(url, mapped: true) } catch {
            throw CheckpointError(file: path, problem: "cannot read the file (\(error.localizedDescription))")
        }
        try self.init(bytes: bytes, path: path)
    }

    init(bytes: Data, path: String) throws {
        // Data slices keep their parent's indices; work on a zero-based copy of the indices.
        let bytes = bytes.startIndex == 0 ? bytes : Data(bytes)
        self.path = path
        self.bytes = bytes
        func fail(_ problem: String) -> CheckpointError { CheckpointError(file: path, problem: problem) }

        guard bytes.count >= 8 else {
            throw fail("truncated: \(bytes.count) bytes, shorter than the 8-byte header length")
        }
        let headerLength = bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard headerLength <= UInt64(bytes.count - 8) else {
            throw fail("header length \(headerLength) runs past the end of the file (\(bytes.count) bytes): truncated or not a safetensors file")
        }
        guard headerLength <= UInt64(Self.maximumHeaderLength) else {
            throw fail("header length \(headerLength) is above the \(Self.maximumHeaderLength)-byte limit")
        }
        let headerEnd = 8 + Int(headerLength)
        let header: [String: JSONValue]
        do {
            guard let object = try JSONValue.parse(bytes.subdata(in: 8..<headerEnd)).objectValue else {
                throw fail("header is not a JSON object")
            }
            header = object
        } catch let error as CheckpointError { throw error } catch {
            throw fail("header is not valid JSON (\(headerLength) bytes after the length prefix)")
        }
        self.dataStart = headerEnd
        let dataLength = bytes.count - headerEnd

        var metadata: [String: String] = [:]
        var entries: [Entry] = []
        for (name, value) in header {
            if name == "__metadata__" {
                guard let object = value.objectValue else { throw fail("__metadata__ is not a JSON object") }
                for (key, item) in object {
                    guard let text = item.stringValue else { throw fail("__metadata__ value of '\(key)' is \(item.summary), not a string") }
                    metadata[key] = text
                }
                continue
            }
            entries.append(try Self.parseEntry(name: name, value: value, dataLength: dataLength, fail: fail))
        }

        // The tensors must tile the data section: sorted by offset, each starts where the previous ended.
        let sorted = entries.sorted { ($0.range.lowerBound, $0.range.upperBound, $0.name) < ($1.range.lowerBound, $1.range.upperBound, $1.name) }
        var end = 0
        var previous: Entry?
        for entry in sorted {
            if entry.range.lowerBound < end, let previous {
                throw fail("tensors '\(previous.name)' (bytes \(previous.range.lowerBound)..<\(previous.range.upperBound)) and '\(entry.name)' (bytes \(entry.range.lowerBound)..<\(entry.range.upperBound)) overlap in the data section")
            }
            if entry.range.lowerBound > end {
                throw fail("bytes \(end)..<\(entry.range.lowerBound) of the data section belong to no tensor (before '\(entry.name)')")
            }
            end = entry.range.upperBound
            previous = entry
        }
        guard end == dataLength else {
            throw fail("\(dataLength - end) bytes after the last tensor belong to no tensor")
        }
        self.entries = sorted
        self.metadata = metadata
        self.byName = Dictionary(uniqueKeysWithValues: sorted.enumerated().map { ($1.name, $0) })
    }

    private static func parseEntry(name: String, value: JSONValue, dataLength: Int, fail: (String) -> CheckpointError) throws -> Entry {
        guard let info = value.objectValue else { throw fail("tensor '\(name)': header entry is \(value.summary), not an object") }
        guard let dtypeName = info["dtype"]?.stringValue else { throw fail("tensor '\(name)': no dtype in the header") }
        guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
            throw fail("tensor '\(name)': unsupported dtype \(dtypeName)")
        }
        guard let shapeItems = info["shape"]?.arrayValue else { throw fail("tensor '\(name)': no shape list in the header") }
        var shape: [Int] = []
        for item in shapeItems {
            guard let dimension = item.intValue, dimension >= 0 else {
                throw fail("tensor '\(name)': shape entry \(item.summary) is not a non-negative integer")
            }
            shape.append(dimension)
        }
        guard let offsetItems = info["data_offsets"]?.arrayValue, offsetItems.count == 2,
              let begin = offsetItems[0].intValue, let end = offsetItems[1].intValue else {
            throw fail("tensor '\(name)': data_offsets must be two integers [begin, end]")
        }
        guard begin >= 0, end >= begin, end <= dataLength else {
            throw fail("tensor '\(name)': data offsets [\(begin), \(end)] lie outside the \(dataLength)-byte data section (truncated file or lying header)")
        }
        // A lying shape must not overflow into a plausible byte count.
        var expected = dtype.byteSize
        for dimension in shape {
            let (product, overflow) = expected.multipliedReportingOverflow(by: dimension)
            guard !overflow else { throw fail("tensor '\(name)': shape \(shape) is impossibly large") }
            expected = product
        }
        guard end - begin == expected else {
            throw fail("tensor '\(name)': shape \(shape) of \(dtypeName) needs \(expected) bytes, offsets give \(end - begin)")
        }
        return Entry(name: name, dtype: dtype, shape: shape, range: begin..<end)
    }

    var names: [String] { entries.map(\.name) }

    func entry(named name: String) -> Entry? { byName[name].map { entries[$0] } }

    /// The raw bytes of one tensor (for quantized layers stored as I8/U8/F16).
    func rawBytes(of entry: Entry) -> Data {
        bytes.subdata(in: (dataStart + entry.range.lowerBound)..<(dataStart + entry.range.upperBound))
    }

    /// A floating-point tensor converted to float32 (F32, F16, BF16, F64 are accepted).
    func tensor(named name: String) throws -> Tensor {
        guard let entry = entry(named: name) else {
            throw CheckpointError(file: path, problem: "missing tensor '\(name)'")
        }
        guard entry.dtype.isFloatingPoint else {
            throw CheckpointError(file: path, problem: "tensor '\(name)': expected a floating-point dtype, found \(entry.dtype.rawValue)")
        }
        return convertedToFloat(entry)
    }

    /// Any tensor converted to float32; integer buffers (position ids) convert exactly.
    func convertedToFloat(_ entry: Entry) -> Tensor {
        let count = entry.count
        var scalars = [Float](repeating: 0, count: count)
        if count > 0 {
            bytes.withUnsafeBytes { raw in
                scalars.withUnsafeMutableBufferPointer { out in
                    entry.dtype.decode(raw.baseAddress! + dataStart + entry.range.lowerBound, count: count, into: out.baseAddress!)
                }
            }
        }
        return Tensor(shape: entry.shape, scalars: scalars)
    }

    /// An integer tensor (I64, I32) as Int, e.g. token ids in a reference file.
    func integers(named name: String) throws -> (shape: [Int], values: [Int]) {
        guard let entry = entry(named: name) else {
            throw CheckpointError(file: path, problem: "missing tensor '\(name)'")
        }
        let count = entry.count
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
