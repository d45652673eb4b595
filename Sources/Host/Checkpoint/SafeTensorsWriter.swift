import Foundation

/// Writes safetensors files that the Python `safetensors` reader (and Hugging Face) accept:
/// 8-byte little-endian header length, a JSON header padded with spaces to a multiple of 8 bytes,
/// then the tensors back to back. Always atomic (see `AtomicFile`).
enum SafeTensorsWriter {
    /// One tensor already in its on-disk form: any dtype, little-endian bytes, row-major.
    /// The quantization stage stores I8/U8/F16 weights and F32 scales this way.
    struct Entry {
        let name: String
        let dtype: SafeTensorsDType
        let shape: [Int]
        let bytes: Data

        init(name: String, dtype: SafeTensorsDType, shape: [Int], bytes: Data) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
            self.bytes = bytes
        }

        /// A float32 tensor.
        init(name: String, tensor: Tensor) {
            self.name = name
            self.dtype = .f32
            self.shape = tensor.shape
            #if _endian(little)
            self.bytes = tensor.scalars.withUnsafeBytes { Data($0) }
            #else
            var bytes = Data(capacity: tensor.count * 4)
            for value in tensor.scalars { withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
            self.bytes = bytes
            #endif
        }
    }

    /// Writes float32 tensors.
    static func write(_ tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:], to url: URL) throws {
        try write(entries: tensors.map { Entry(name: $0.name, tensor: $0.tensor) }, metadata: metadata, to: url)
    }

    /// Writes tensors of any dtype.
    static func write(entries: [Entry], metadata: [String: String] = [:], to url: URL) throws {
        let layout = try layOut(entries, metadata: metadata, file: url.path)
        try AtomicFile.write(to: url) { append in
            try layout.prefix.withUnsafeBytes { try append($0) }
            for entry in layout.ordered { try entry.bytes.withUnsafeBytes { try append($0) } }
        }
    }

    /// The whole file in memory (tests, small files).
    static func encode(entries: [Entry], metadata: [String: String] = [:]) throws -> Data {
        let layout = try layOut(entries, metadata: metadata, file: "<memory>")
        var data = layout.prefix
        for entry in layout.ordered { data.append(entry.bytes) }
        return data
    }

    /// Checks the entries, orders them, and builds length prefix + padded header.
    private static func layOut(_ entries: [Entry], metadata: [String: String], file: String) throws -> (prefix: Data, ordered: [Entry]) {
        var seen = Set<String>()
        for entry in entries {
            guard entry.name != "__metadata__" else {
                throw CheckpointError(file: file, problem: "a tensor cannot be named '__metadata__'")
            }
            guard seen.insert(entry.name).inserted else {
                throw CheckpointError(file: file, problem: "tensor '\(entry.name)' is given twice")
            }
            guard entry.shape.allSatisfy({ $0 >= 0 }) else {
                throw CheckpointError(file: file, problem: "tensor '\(entry.name)': negative dimension in shape \(entry.shape)")
            }
            let expected = entry.shape.reduce(1, *) * entry.dtype.byteSize
            guard entry.bytes.count == expected else {
                throw CheckpointError(file: file, problem: "tensor '\(entry.name)': shape \(entry.shape) of \(entry.dtype.rawValue) needs \(expected) bytes, got \(entry.bytes.count)")
            }
        }
        // Widest elements first (stable within a width), as the Python writer does: with the header
        // padded to 8 bytes every tensor then starts at a multiple of its element size, so a reader
        // that maps the file can use the data in place.
        let ordered = entries.enumerated()
            .sorted { ($1.element.dtype.byteSize, $0.offset) < ($0.element.dtype.byteSize, $1.offset) }
            .map(\.element)

        var header: [String: JSONValue] = [:]
        var offset = 0
        for entry in ordered {
            header[entry.name] = .object([
                "dtype": .string(entry.dtype.rawValue),
                "shape": .array(entry.shape.map { .int($0) }),
                "data_offsets": .array([.int(offset), .int(offset + entry.bytes.count)]),
            ])
            offset += entry.bytes.count
        }
        if !metadata.isEmpty {
            header["__metadata__"] = .object(metadata.mapValues { .string($0) })
        }
        var json = try JSONValue.object(header).compact(sortedKeys: true)
        let padding = (8 - json.count % 8) % 8
        json.append(contentsOf: [UInt8](repeating: UInt8(ascii: " "), count: padding))
        var prefix = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { prefix.append(contentsOf: $0) }
        prefix.append(json)
        return (prefix, ordered)
    }
}
