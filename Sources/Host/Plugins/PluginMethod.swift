import Foundation
import PluginAPI

/// What a method does.
enum PluginMethodKind: String, Sendable, CaseIterable, CustomStringConvertible {
    case pruner, schedule, quantizer, communicator

    init?(code: UInt32) {
        switch Int32(code) {
        case SK_METHOD_PRUNER: self = .pruner
        case SK_METHOD_SCHEDULE: self = .schedule
        case SK_METHOD_QUANTIZER: self = .quantizer
        case SK_METHOD_COMMUNICATOR: self = .communicator
        default: return nil
        }
    }

    var description: String { rawValue }
}

/// One method a loaded plugin registers: its descriptor, copied into Swift values, plus the pointer
/// to call it through. Immutable; the descriptor lives as long as the process (libraries are never
/// unloaded), so sharing it between threads is safe.
final class PluginMethod: @unchecked Sendable {
    let name: String
    let kind: PluginMethodKind
    let version: String
    let summary: String
    let options: [PluginOptionSpec]
    /// The library that registered the method.
    let file: String
    let pluginName: String
    let descriptor: UnsafePointer<sk_method>

    /// Reads and checks a plugin's descriptor. `position` is the method's index, for error messages.
    init(descriptor: UnsafePointer<sk_method>, position: Int, library: String, pluginName: String) throws {
        let method = descriptor.pointee
        let label = "\(library): method #\(position)"
        guard method.struct_size >= UInt32(MemoryLayout<sk_method>.size) else {
            throw PluginError("\(label): descriptor of \(method.struct_size) bytes is smaller than ABI v1's \(MemoryLayout<sk_method>.size)")
        }
        guard let namePointer = method.name, let name = String(validatingCString: namePointer), !name.isEmpty,
              name.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-" || $0 == "_") }) else {
            throw PluginError("\(label): the method name is missing or not made of [a-z0-9_-]")
        }
        guard let kind = PluginMethodKind(code: method.kind) else {
            throw PluginError("\(label) '\(name)': unknown kind \(method.kind) (1 pruner, 2 schedule, 3 quantizer, 4 communicator)")
        }
        let tableSize: UInt32? = switch kind {
        case .pruner: method.pruner?.pointee.struct_size
        case .schedule: method.schedule?.pointee.struct_size
        case .quantizer: method.quantizer?.pointee.struct_size
        case .communicator: communicatorTable(descriptor).map { $0.pointee.struct_size }
        }
        let needed = switch kind {
        case .pruner: MemoryLayout<sk_pruner>.size
        case .schedule: MemoryLayout<sk_schedule>.size
        case .quantizer: MemoryLayout<sk_quantizer>.size
        case .communicator: MemoryLayout<sk_communicator>.size
        }
        guard let tableSize, tableSize >= UInt32(needed) else {
            throw PluginError("\(label) '\(name)': a \(kind) without a complete \(kind) function table")
        }
        // The functions the header does not allow to be NULL: refused here, not called through later.
        let missingFunctions: [String] = switch kind {
        case .pruner: method.pruner?.pointee.prune == nil ? ["prune"] : []
        case .schedule: [method.schedule?.pointee.sparsity_at == nil ? "sparsity_at" : nil,
                         method.schedule?.pointee.criterion == nil ? "criterion" : nil].compactMap { $0 }
        case .quantizer: {
            guard let table = method.quantizer?.pointee else { return ["create"] }
            let required: [(String, Bool)] = [("create", table.create == nil), ("forward", table.forward == nil),
                                              ("saved_bytes", table.saved_bytes == nil), ("serialize", table.serialize == nil),
                                              ("deserialize", table.deserialize == nil)]
            return required.filter(\.1).map(\.0)
        }()
        case .communicator: {
            guard let table = communicatorTable(descriptor)?.pointee else { return ["open"] }
            let required: [(String, Bool)] = [("open", table.open == nil), ("rank", table.rank == nil), ("size", table.size == nil),
                                              ("allreduce_sum_f32", table.allreduce_sum_f32 == nil), ("broadcast", table.broadcast == nil),
                                              ("gather", table.gather == nil), ("barrier", table.barrier == nil), ("engine", table.engine == nil)]
            return required.filter(\.1).map(\.0)
        }()
        }
        guard missingFunctions.isEmpty else {
            throw PluginError("\(label) '\(name)': the \(kind) table has no \(missingFunctions.joined(separator: ", ")) (NULL), which the ABI requires")
        }
        var specs: [PluginOptionSpec] = []
        for i in 0..<Int(method.option_count) {
            guard let spec = method.options?[i]?.pointee, spec.struct_size >= UInt32(MemoryLayout<sk_option_spec>.size),
                  let optionName = spec.name.map({ String(cString: $0) }),
                  let type = PluginOptionType(code: spec.type), let defaultValue = spec.default_value else {
                throw PluginError("\(label) '\(name)': option #\(i) is malformed (name, type and default are required)")
            }
            var choices: [String] = []
            if type == .enum, var cursor = spec.choices {
                while let choice = cursor.pointee { choices.append(String(cString: choice)); cursor += 1 }
            }
            let option = PluginOptionSpec(name: optionName, type: type, defaultValue: String(cString: defaultValue),
                                          help: spec.help.map { String(cString: $0) } ?? "", choices: choices)
            if let problem = option.problem(with: option.defaultValue) {
                throw PluginError("\(label) '\(name)': the default of option '\(optionName)' is invalid: \(problem)")
            }
            guard !specs.contains(where: { $0.name == optionName }) else {
                throw PluginError("\(label) '\(name)': option '\(optionName)' is declared twice")
            }
            specs.append(option)
        }
        self.name = name
        self.kind = kind
        self.version = method.version.map { String(cString: $0) } ?? "?"
        self.summary = method.description.map { String(cString: $0) } ?? ""
        self.options = specs
        self.file = library
        self.pluginName = pluginName
        self.descriptor = descriptor
    }

    /// An optional feature by string id (e.g. SK_EXT_CALIBRATION), or nil when the method lacks it.
    func `extension`<T>(_ id: String, as type: T.Type) -> UnsafePointer<T>? {
        guard let lookup = descriptor.pointee.get_extension,
              let raw = id.withCString({ lookup(descriptor, $0) }) else { return nil }
        let table = raw.assumingMemoryBound(to: T.self)
        // Every extension struct begins with its size: refuse one smaller than what we read.
        guard raw.load(as: UInt32.self) >= UInt32(MemoryLayout<T>.size) else { return nil }
        return table
    }

    /// Calls into the plugin with a fresh error buffer; a status other than SK_OK becomes a
    /// `PluginError` naming the method and its file.
    func call(_ body: (UnsafeMutablePointer<sk_error>) -> sk_status) throws {
        let capacity = 1024
        let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: capacity)
        defer { buffer.deallocate() }
        buffer[0] = 0
        var error = sk_error(struct_size: UInt32(MemoryLayout<sk_error>.size), capacity: UInt32(capacity), message: buffer)
        let status = body(&error)
        guard status == SK_OK else {
            buffer[capacity - 1] = 0
            let text = String(cString: buffer)
            let reason = text.isEmpty ? "failed with status \(statusName(status)) and no message" : text
            throw PluginError("\(kind) '\(name)' (\(file)): \(reason)")
        }
    }
}

/// A communicator's table: reached through `get_extension(SK_EXT_COMMUNICATOR)`, as sk_method has no
/// field for it (see the header's "communicators" section).
func communicatorTable(_ descriptor: UnsafePointer<sk_method>) -> UnsafePointer<sk_communicator>? {
    guard let lookup = descriptor.pointee.get_extension,
          let raw = lookup(descriptor, SK_EXT_COMMUNICATOR) else { return nil }
    return raw.assumingMemoryBound(to: sk_communicator.self)
}

func statusName(_ status: sk_status) -> String {
    switch status {
    case SK_ERR_INVALID_ARGUMENT: "invalid-argument"
    case SK_ERR_UNSUPPORTED: "unsupported"
    case SK_ERR_OUT_OF_MEMORY: "out-of-memory"
    case SK_ERR_BAD_DATA: "bad-data"
    case SK_ERR_INTERNAL: "internal"
    default: "\(status)"
    }
}
