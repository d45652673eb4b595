import Foundation
import ZIPFoundation

/// A storage named in a torch checkpoint's pickle: `('storage', torch.FloatStorage, '0', 'cpu', 256000)`.
/// The bytes live in the zip member `<prefix>/data/<key>`.
struct TorchStorageReference {
    let key: String
    let dtype: SafeTensorsDType
    let count: Int
}

/// Reads `pytorch_model.bin` and the seed framework's `best_model_*.pt`: what `torch.save(state_dict)`
/// writes since PyTorch 1.6, a zip (stored, not compressed) holding
///
///     <prefix>/data.pkl        the pickled OrderedDict name → tensor
///     <prefix>/data/<key>      one raw little-endian storage per key
///     <prefix>/byteorder       "little"
///     <prefix>/version         serialization version
///
/// The pickle runs in `PickleMachine` with a policy that allows only the globals a state dict
/// needs; anything else (`os.system`, `builtins.eval`, ...) is refused by name before it could run.
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

    static func read(_ url: URL) throws -> StateDict {
        let path = url.path
        let archive: Archive
        do { archive = try Archive(url: url, accessMode: .read) } catch {
            throw CheckpointError(file: path, problem: "not a zip archive, so not a torch.save checkpoint (files from PyTorch before 1.6 must be re-saved)")
        }
        guard let pickleEntry = archive.first(where: { $0.path == "data.pkl" || $0.path.hasSuffix("/data.pkl") }) else {
            throw CheckpointError(file: path, problem: "the zip holds no data.pkl, so it is not a torch.save checkpoint")
        }
        let prefix = String(pickleEntry.path.dropLast("data.pkl".count))   // "pytorch_model/" (or "")

        func member(_ name: String) throws -> Data? {
            guard let entry = archive[prefix + name] else { return nil }
            var data = Data()
            data.reserveCapacity(Int(entry.uncompressedSize))
            do {
                _ = try archive.extract(entry) { data.append($0) }
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

        // Storages are decoded to float32 once, even when several tensors view the same one (tied weights).
        var storages: [String: [Float]] = [:]
        func scalars(of storage: TorchStorageReference) throws -> [Float] {
            if let cached = storages[storage.key] { return cached }
            guard let data = try member("data/\(storage.key)") else {
                throw CheckpointError(file: path, problem: "storage \(storage.key) is named in data.pkl but \(prefix)data/\(storage.key) is not in the zip")
            }
            guard data.count >= storage.count * storage.dtype.byteSize else {
                throw CheckpointError(file: path, problem: "storage \(storage.key) should hold \(storage.count) \(storage.dtype.rawValue) elements (\(storage.count * storage.dtype.byteSize) bytes) but has \(data.count) bytes")
            }
            var values = [Float](repeating: 0, count: storage.count)
            if storage.count > 0 {
                data.withUnsafeBytes { raw in
                    values.withUnsafeMutableBufferPointer { storage.dtype.decode(raw.baseAddress!, count: storage.count, into: $0.baseAddress!) }
                }
            }
            storages[storage.key] = values
            return values
        }

        let machine = PickleMachine(
            file: "\(path) (\(pickleEntry.path))",
            resolveGlobal: { module, name in
                let qualified = "\(module).\(name)"
                guard allowedFunctions.contains(qualified) || (module == "torch" && storageTypes[name] != nil) else {
                    throw CheckpointError(file: path, problem: "the pickle asks for the global '\(qualified)'; only tensor rebuilding (collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter, torch.*Storage) is allowed, so the file is refused")
                }
                return .global(module: module, name: name)
            },
            persistentLoad: { id in
                // ('storage', <storage class>, key, location, element count)
                guard case .tuple(let fields) = id, fields.count == 5, case .string("storage") = fields[0],
                      case .global("torch", let className) = fields[1], let dtype = storageTypes[className],
                      case .string(let key) = fields[2], case .int(let count) = fields[4], count >= 0 else {
                    throw CheckpointError(file: path, problem: "data.pkl has a persistent id that is not a torch storage")
                }
                return .storage(TorchStorageReference(key: key, dtype: dtype, count: count))
            },
            call: { callable, arguments in
                guard case .global(let module, let name) = callable else {
                    throw CheckpointError(file: path, problem: "data.pkl calls \(callable.kind), which is not a function")
                }
                switch "\(module).\(name)" {
                case "collections.OrderedDict":
                    guard arguments.isEmpty else {
                        throw CheckpointError(file: path, problem: "data.pkl builds an OrderedDict from arguments; a state dict starts empty")
                    }
                    return .dict(PickleDict())
                case "torch._utils._rebuild_tensor_v2":
                    return .tensor(try rebuildTensor(arguments, file: path, scalars: scalars))
                case "torch._utils._rebuild_parameter":
                    // (data, requires_grad, backward_hooks): a Parameter is its data here.
                    guard let first = arguments.first, case .tensor(let tensor) = first else {
                        throw CheckpointError(file: path, problem: "_rebuild_parameter is not given a tensor")
                    }
                    return .tensor(tensor)
                default:
                    throw CheckpointError(file: path, problem: "data.pkl calls \(module).\(name), which does not rebuild a tensor")
                }
            }
        )
        guard let pickle = try member("data.pkl") else {
            throw CheckpointError(file: path, problem: "the zip holds no data.pkl, so it is not a torch.save checkpoint")
        }
        return try stateDict(from: try machine.run(pickle), file: path)
    }

    /// `_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])`.
    /// Views with any strides and offset are materialised as a dense row-major tensor.
    private static func rebuildTensor(_ arguments: [PickleValue], file: String, scalars: (TorchStorageReference) throws -> [Float]) throws -> Tensor {
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
        if count == 0 { return Tensor(shape: shape, scalars: []) }
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
        let source = try scalars(storage)

        var contiguous = [Int](repeating: 1, count: shape.count)
        for axis in stride(from: shape.count - 2, through: 0, by: -1) { contiguous[axis] = contiguous[axis + 1] * shape[axis + 1] }
        let isContiguous = zip(zip(shape, strides), contiguous).allSatisfy { $0.0.0 == 1 || $0.0.1 == $0.1 }
        if isContiguous {
            return Tensor(shape: shape, scalars: Array(source[offset..<(offset + count)]))
        }
        // Walk the view in row-major order with an odometer over the indices.
        var values = [Float](repeating: 0, count: count)
        var index = [Int](repeating: 0, count: shape.count)
        var sourcePosition = offset
        for i in 0..<count {
            values[i] = source[sourcePosition]
            var axis = shape.count - 1
            while axis >= 0 {
                index[axis] += 1
                sourcePosition += strides[axis]
                if index[axis] < shape[axis] { break }
                sourcePosition -= strides[axis] * shape[axis]
                index[axis] = 0
                axis -= 1
            }
        }
        return Tensor(shape: shape, scalars: values)
    }

    /// The unpickled object must be a dict of name → tensor (or hold one under `state_dict` /
    /// `model_state_dict`, as training loops that save more than the weights do).
    private static func stateDict(from value: PickleValue, file: String) throws -> StateDict {
        guard case .dict(let dict) = value else {
            throw CheckpointError(file: file, problem: "data.pkl holds \(value.kind), not a state dict")
        }
        for wrapper in ["state_dict", "model_state_dict"] {
            if let inner = dict[.string(wrapper)], case .dict = inner,
               !dict.values.contains(where: { if case .tensor = $0 { true } else { false } }) {
                return try stateDict(from: inner, file: file)
            }
        }
        var result = StateDict()
        for (key, item) in zip(dict.keys, dict.values) {
            guard case .string(let name) = key else {
                throw CheckpointError(file: file, problem: "state dict key \(key) is not a string")
            }
            guard case .tensor(let tensor) = item else {
                throw CheckpointError(file: file, problem: "state dict entry '\(name)' is \(item.kind), not a tensor")
            }
            result[name] = tensor
        }
        return result
    }
}
