import Foundation
import ZIPFoundation

/// A storage named in a torch checkpoint's pickle: `('storage', torch.FloatStorage, '0', 'cpu', 256000)`.
struct TorchStorageReference {
    let key: String
    let dtype: SafeTensorsDType
    let count: Int
}

/// `_rebuild_tensor_v2(storage, offset, size, stride, ...)` before its storage is read.
struct TorchTensorView {
    let storage: TorchStorageReference
    let offset: Int
    let shape: [Int]
    let strides: [Int]
}

/// Reads `pytorch_model.bin` and the seed framework's `best_model_*.pt`, as `torch.save(state_dict)`
/// writes them. Since PyTorch 1.6 that is a zip (members stored, not compressed):
///
///     <prefix>/data.pkl        the pickled OrderedDict name → tensor
///     <prefix>/data/<key>      one raw little-endian storage per key
///     <prefix>/byteorder       "little"
///     <prefix>/version         serialization version
///
/// Older files (and `_use_new_zipfile_serialization=False`) are the legacy stream: a magic-number
/// pickle, the protocol version, a sys-info dict, the state dict pickle, the sorted list of storage
/// keys, then each storage as an int64 element count followed by its bytes. Many checkpoints on the
/// Hugging Face hub from 2020 and before are in this form, so it is read too.
///
/// The pickles run in `PickleMachine` with a policy that allows only the globals a state dict needs;
/// anything else (`os.system`, `builtins.eval`, ...) is refused by name before it could run.
enum TorchCheckpoint {
    /// The only globals a state dict pickle may name. Storage classes map to their element type.
    static let storageTypes: [String: SafeTensorsDType] = [
        "FloatStorage": .f32, "HalfStorage": .f16, "BFloat16Storage": .bf16, "DoubleStorage": .f64,
        "LongStorage": .i64, "IntStorage": .i32, "ShortStorage": .i16, "CharStorage": .i8,
        "ByteStorage": .u8, "BoolStorage": .bool,
    ]
    static let allowedFunctions: Set<String> = [
        "collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
    ]
    /// The legacy format's first pickle: protocol 2, LONG1 0x1950a86a20f9469cfc6c, STOP.
    static let legacyMagic: [UInt8] = [0x80, 0x02, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19, 0x2E]

    static func read(_ url: URL) throws -> StateDict {
        let path = url.path
        let head: [UInt8]
        do {
            try InputFile.checkRegular(url)
            let handle = try FileHandle(forReadingFrom: url)
            defer { try? handle.close() }
            head = [UInt8](try handle.read(upToCount: legacyMagic.count) ?? Data())
        } catch {
            throw CheckpointError(file: path, problem: "cannot read the file (\(error.localizedDescription))")
        }
        if head == legacyMagic { return try readLegacy(url) }
        return try readZip(url)
    }

    // MARK: - The zip format

    private static func readZip(_ url: URL) throws -> StateDict {
        let path = url.path
        let archive: Archive
        do { archive = try Archive(url: url, accessMode: .read) } catch {
            throw CheckpointError(file: path, problem: "neither a torch.save zip nor a legacy torch.save file")
        }
        guard let pickleEntry = archive.first(where: { $0.path == "data.pkl" || $0.path.hasSuffix("/data.pkl") }) else {
            throw CheckpointError(file: path, problem: "the zip holds no data.pkl, so it is not a torch.save checkpoint")
        }
        let prefix = String(pickleEntry.path.dropLast("data.pkl".count))   // "pytorch_model/" (or "")

        // The size of the file itself, not of a symbolic link to it (Hugging Face's cache links its blobs).
        let fileSize = (try? FileManager.default.attributesOfItem(atPath: url.resolvingSymlinksInPath().path)[.size] as? NSNumber)?.uint64Value ?? 0
        func member(_ name: String) throws -> Data? {
            guard let entry = archive[prefix + name] else { return nil }
            // The sizes in a zip (zip64 ones too) are claims: torch.save stores members uncompressed,
            // so none may be larger than the real file. A deflated member may expand, but
            // not beyond deflate's limit (1032:1).
            let (expandable, _) = entry.compressedSize.multipliedReportingOverflow(by: 1032)
            let limit = entry.isCompressed ? expandable : entry.compressedSize
            guard entry.compressedSize <= fileSize, entry.uncompressedSize <= limit else {
                throw CheckpointError(file: path, problem: "zip member \(prefix + name) claims \(entry.uncompressedSize) bytes (\(entry.compressedSize) stored), which do not fit in the file's \(fileSize) bytes")
            }
            var data = Data()
            data.reserveCapacity(Int(entry.uncompressedSize))
            do {
                // No CRC pass: it made loading a bert-base checkpoint 4x slower, and a truncated or
                // mislabelled storage is still caught by the size checks.
                _ = try archive.extract(entry, bufferSize: 1 << 22, skipCRC32: true) { data.append($0) }
            } catch {
                throw CheckpointError(file: path, problem: "cannot read zip member \(prefix + name) (\(error))")
            }
            return data
        }

        if let order = try member("byteorder") {
            let text = String(decoding: order, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard text == "little" else {
                throw CheckpointError(file: path, problem: "storages are \(text)-endian; only little-endian checkpoints are supported")
            }
        }
        guard let pickle = try member("data.pkl") else {
            throw CheckpointError(file: path, problem: "cannot read \(pickleEntry.path)")
        }
        let value = try machine(file: path, member: pickleEntry.path).run(pickle).value
        return try stateDict(from: value, file: path) { storage in
            guard let data = try member("data/\(storage.key)") else {
                throw CheckpointError(file: path, problem: "storage \(storage.key) is named in data.pkl but \(prefix)data/\(storage.key) is not in the zip")
            }
            return data
        }
    }

    // MARK: - The legacy stream

    private static func readLegacy(_ url: URL) throws -> StateDict {
        let path = url.path
        let data: Data
        do { data = try InputFile.read(url, mapped: true) } catch {
            throw CheckpointError(file: path, problem: "cannot read the file (\(error.localizedDescription))")
        }
        let machine = machine(file: path, member: nil)
        var position = legacyMagic.count
        let (version, afterVersion) = try machine.run(data, from: position)
        guard case .int(1001) = version else {
            throw CheckpointError(file: path, problem: "legacy torch.save protocol version \(version.kind) is not 1001")
        }
        let (systemInfo, afterInfo) = try machine.run(data, from: afterVersion)
        if case .dict(let info) = systemInfo, case .bool(false)? = info[.string("little_endian")] {
            throw CheckpointError(file: path, problem: "storages are big-endian; only little-endian checkpoints are supported")
        }
        let (value, afterState) = try machine.run(data, from: afterInfo)
        let (keyList, afterKeys) = try machine.run(data, from: afterState)
        guard case .list(let keys) = keyList else {
            throw CheckpointError(file: path, problem: "the storage key list is \(keyList.kind), not a list")
        }
        position = afterKeys

        // The storages follow in key-list order, each as an int64 element count and the elements.
        // Their element sizes are known only from the references in the pickle.
        var references: [String: TorchStorageReference] = [:]
        func collect(_ value: PickleValue) {
            switch value {
            case .tensor(let view): references[view.storage.key] = view.storage
            case .dict(let dict): dict.values.forEach(collect)
            default: break
            }
        }
        collect(value)
        var storages: [String: Data] = [:]
        for item in keys.items {
            guard case .string(let key) = item else {
                throw CheckpointError(file: path, problem: "the storage key list holds \(item.kind), not a string")
            }
            guard let reference = references[key] else {
                throw CheckpointError(file: path, problem: "storage \(key) is stored but no tensor in the pickle names it, so its element size is unknown")
            }
            guard data.count - position >= 8 else {
                throw CheckpointError(file: path, problem: "truncated: the file ends before storage \(key)")
            }
            let count = data.withUnsafeBytes { Int64(littleEndian: $0.loadUnaligned(fromByteOffset: position, as: Int64.self)) }
            let (byteCount, overflow) = Int(clamping: count).multipliedReportingOverflow(by: reference.dtype.byteSize)
            guard count >= 0, !overflow, byteCount <= data.count - position - 8 else {
                throw CheckpointError(file: path, problem: "truncated: storage \(key) claims \(count) elements but the file ends first")
            }
            storages[key] = data.subdata(in: (position + 8)..<(position + 8 + byteCount))
            position += 8 + byteCount
        }
        return try stateDict(from: value, file: path) { storage in
            guard let bytes = storages[storage.key] else {
                throw CheckpointError(file: path, problem: "storage \(storage.key) is named in the pickle but not stored in the file")
            }
            return bytes
        }
    }

    // MARK: - What both formats share

    /// The restricted machine: it resolves only allowed globals, turns persistent ids into storage
    /// references and REDUCE of `_rebuild_tensor_v2` into views, and refuses everything else.
    private static func machine(file path: String, member: String?) -> PickleMachine {
        PickleMachine(
            file: member.map { "\(path) (\($0))" } ?? path,
            resolveGlobal: { module, name in
                let qualified = "\(module).\(name)"
                guard allowedFunctions.contains(qualified) || (module == "torch" && storageTypes[name] != nil) else {
                    throw CheckpointError(file: path, problem: "the pickle asks for the global '\(qualified)'; only tensor rebuilding (collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter, torch.*Storage) is allowed, so the file is refused")
                }
                return .global(module: module, name: name)
            },
            persistentLoad: { id in
                // ('storage', <storage class>, key, location, element count[, view metadata (legacy)])
                guard case .tuple(let fields) = id, fields.count == 5 || fields.count == 6, case .string("storage") = fields[0],
                      case .global("torch", let className) = fields[1], let dtype = storageTypes[className],
                      case .string(let key) = fields[2], case .int(let count) = fields[4], count >= 0 else {
                    throw CheckpointError(file: path, problem: "the pickle has a persistent id that is not a torch storage")
                }
                // The element count comes from the file: its byte size must be a number before any
                // size check or allocation uses it.
                guard !count.multipliedReportingOverflow(by: dtype.byteSize).overflow else {
                    throw CheckpointError(file: path, problem: "storage \(key) claims \(count) elements, more bytes than any file holds")
                }
                if fields.count == 6, case .none = fields[5] {} else if fields.count == 6 {
                    throw CheckpointError(file: path, problem: "storage \(key) is a view of another storage (PyTorch before 0.4); re-save the checkpoint")
                }
                return .storage(TorchStorageReference(key: key, dtype: dtype, count: count))
            },
            call: { callable, arguments in
                guard case .global(let module, let name) = callable else {
                    throw CheckpointError(file: path, problem: "the pickle calls \(callable.kind), which is not a function")
                }
                switch "\(module).\(name)" {
                case "collections.OrderedDict":
                    guard arguments.isEmpty else {
                        throw CheckpointError(file: path, problem: "the pickle builds an OrderedDict from arguments; a state dict starts empty")
                    }
                    return .dict(PickleDict())
                case "torch._utils._rebuild_tensor_v2":
                    return .tensor(try tensorView(arguments, file: path))
                case "torch._utils._rebuild_parameter":
                    // (data, requires_grad, backward_hooks): a Parameter is its data here.
                    guard let first = arguments.first, case .tensor = first else {
                        throw CheckpointError(file: path, problem: "_rebuild_parameter is not given a tensor")
                    }
                    return first
                default:
                    throw CheckpointError(file: path, problem: "the pickle calls \(module).\(name), which does not rebuild a tensor")
                }
            }
        )
    }

    /// Checks the arguments of `_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
    /// backward_hooks[, metadata])`: the view must lie inside its storage.
    private static func tensorView(_ arguments: [PickleValue], file: String) throws -> TorchTensorView {
        func integers(_ value: PickleValue) -> [Int]? {
            guard case .tuple(let items) = value else { return nil }
            var result: [Int] = []
            for item in items { guard case .int(let value) = item else { return nil }; result.append(value) }
            return result
        }
        guard arguments.count >= 4, case .storage(let storage) = arguments[0], case .int(let offset) = arguments[1],
              let shape = integers(arguments[2]), let strides = integers(arguments[3]), shape.count == strides.count else {
            throw CheckpointError(file: file, problem: "_rebuild_tensor_v2 is called with arguments that are not (storage, offset, size, stride, ...)")
        }
        guard offset >= 0, shape.allSatisfy({ $0 >= 0 }), strides.allSatisfy({ $0 >= 0 }) else {
            throw CheckpointError(file: file, problem: "a view of storage \(storage.key) has a negative offset, size or stride (offset \(offset), size \(shape), stride \(strides))")
        }
        var count = 1
        for dimension in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            guard !overflow else { throw CheckpointError(file: file, problem: "a view of storage \(storage.key) has an impossible size \(shape)") }
            count = product
        }
        if count > 0 {
            // The last element the view touches must lie inside the storage.
            var last = offset
            for (dimension, stride) in zip(shape, strides) {
                let (step, overflow1) = (dimension - 1).multipliedReportingOverflow(by: stride)
                let (sum, overflow2) = last.addingReportingOverflow(step)
                guard !overflow1, !overflow2 else { throw CheckpointError(file: file, problem: "a view of storage \(storage.key) has impossible strides \(strides)") }
                last = sum
            }
            guard last < storage.count else {
                throw CheckpointError(file: file, problem: "a view of storage \(storage.key) (offset \(offset), size \(shape), stride \(strides)) reaches element \(last) of a storage of \(storage.count) elements")
            }
        }
        return TorchTensorView(storage: storage, offset: offset, shape: shape, strides: strides)
    }

    /// The unpickled object must be a dict of name → tensor (or hold one under `state_dict` /
    /// `model_state_dict`, as training loops that save more than the weights do). Each view is
    /// materialised as a dense row-major float32 tensor; a storage is decoded once even when several
    /// tensors view it (tied weights).
    private static func stateDict(from value: PickleValue, file: String, storageBytes: (TorchStorageReference) throws -> Data) throws -> StateDict {
        guard case .dict(var dict) = value else {
            throw CheckpointError(file: file, problem: "the pickle holds \(value.kind), not a state dict")
        }
        let holdsTensors = dict.values.contains { if case .tensor = $0 { true } else { false } }
        for wrapper in ["state_dict", "model_state_dict"] where !holdsTensors {
            if case .dict(let inner)? = dict[.string(wrapper)] { dict = inner; break }
        }

        var decoded: [String: [Float]] = [:]
        func scalars(of storage: TorchStorageReference) throws -> [Float] {
            if let cached = decoded[storage.key] {
                // Each view was checked against the element count its own reference claims: a storage
                // named twice with two counts would let the larger claim read past the decoded values.
                guard cached.count == storage.count else {
                    throw CheckpointError(file: file, problem: "storage \(storage.key) is referenced with \(cached.count) and with \(storage.count) elements")
                }
                return cached
            }
            let data = try storageBytes(storage)
            let (needed, overflow) = storage.count.multipliedReportingOverflow(by: storage.dtype.byteSize)
            guard !overflow, data.count >= needed else {
                throw CheckpointError(file: file, problem: "storage \(storage.key) should hold \(storage.count) \(storage.dtype.rawValue) elements (\(storage.count * storage.dtype.byteSize) bytes) but has \(data.count) bytes")
            }
            var values = [Float](repeating: 0, count: storage.count)
            if storage.count > 0 {
                data.withUnsafeBytes { raw in
                    values.withUnsafeMutableBufferPointer { storage.dtype.decode(raw.baseAddress!, count: storage.count, into: $0.baseAddress!) }
                }
            }
            decoded[storage.key] = values
            return values
        }

        var result = StateDict()
        for (key, item) in zip(dict.keys, dict.values) {
            guard case .string(let name) = key else {
                throw CheckpointError(file: file, problem: "state dict key \(key) is not a string")
            }
            guard case .tensor(let view) = item else {
                throw CheckpointError(file: file, problem: "state dict entry '\(name)' is \(item.kind), not a tensor")
            }
            result[name] = materialise(view, from: try scalars(of: view.storage))
        }
        return result
    }

    /// Copies a strided view into a dense row-major tensor (bounds were checked in `tensorView`).
    private static func materialise(_ view: TorchTensorView, from source: [Float]) -> Tensor {
        let shape = view.shape, strides = view.strides
        let count = shape.reduce(1, *)
        if count == 0 { return Tensor(shape: shape, scalars: []) }
        var contiguous = [Int](repeating: 1, count: shape.count)
        for axis in stride(from: shape.count - 2, through: 0, by: -1) { contiguous[axis] = contiguous[axis + 1] * shape[axis + 1] }
        // Strides of axes of length 1 never matter.
        if zip(zip(shape, strides), contiguous).allSatisfy({ $0.0.0 == 1 || $0.0.1 == $0.1 }) {
            return Tensor(shape: shape, scalars: Array(source[view.offset..<(view.offset + count)]))
        }
        // Walk the view in row-major order with an odometer over the indices.
        var values = [Float](repeating: 0, count: count)
        var index = [Int](repeating: 0, count: shape.count)
        var position = view.offset
        for i in 0..<count {
            values[i] = source[position]
            var axis = shape.count - 1
            while axis >= 0 {
                index[axis] += 1
                position += strides[axis]
                if index[axis] < shape[axis] { break }
                position -= strides[axis] * shape[axis]
                index[axis] = 0
                axis -= 1
            }
        }
        return Tensor(shape: shape, scalars: values)
    }
}
