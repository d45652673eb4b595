import Foundation
import PluginAPI

/// What a method does.
enum PluginMethodKind: String, Sendable, CaseIterable, CustomStringConvertible {
    case pruner, schedule, quantizer

    init?(code: UInt32) {
        switch Int32(code) {
        case SK_METHOD_PRUNER: self = .pruner
        case SK_METHOD_SCHEDULE: self = .schedule
        case SK_METHOD_QUANTIZER: self = .quantizer
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
    /// The kind's function table, copied at load with absent trailing fields zero (NULL); the
    /// tables of the other kinds are all zero.
    let pruner: sk_pruner
    let schedule: sk_schedule
    let quantizer: sk_quantizer

    /// Options the pruning stage reads itself (and removes before calling the pruner), so a pruner
    /// option of the same name would never reach the plugin.
    static var hostPrunerOptions: Set<String> { Set(PruningStage.hostOptions.keys) }

    /// Reads and checks a plugin's descriptor. `position` is the method's index, for error messages.
    init(descriptor: UnsafePointer<sk_method>, position: Int, library: String, pluginName: String) throws {
        let label = "\(library): method #\(position)"
        var method = sk_method()
        guard copyTable(descriptor, minimum: ABIMinimumSize.method, into: &method) else {
            throw PluginError("\(label): descriptor of \(UnsafeRawPointer(descriptor).load(as: UInt32.self)) bytes is smaller than ABI v1.0's \(ABIMinimumSize.method)")
        }
        guard let namePointer = method.name, let name = String(validatingCString: namePointer), !name.isEmpty,
              name.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-" || $0 == "_") }) else {
            throw PluginError("\(label): the method name is missing or not made of [a-z0-9_-]")
        }
        guard let kind = PluginMethodKind(code: method.kind) else {
            throw PluginError("\(label) '\(name)': unknown kind \(method.kind) (1 pruner, 2 schedule, 3 quantizer)")
        }
        // The kind's table, copied into a host-side struct: a plugin built against an older header
        // has a shorter table, whose missing trailing fields read as zero (NULL) instead of as
        // whatever follows the plugin's struct in its memory.
        var pruner = sk_pruner(), schedule = sk_schedule(), quantizer = sk_quantizer()
        let copied: Bool = switch kind {
        case .pruner: copyTable(method.pruner, minimum: ABIMinimumSize.pruner, into: &pruner)
        case .schedule: copyTable(method.schedule, minimum: ABIMinimumSize.schedule, into: &schedule)
        case .quantizer: copyTable(method.quantizer, minimum: ABIMinimumSize.quantizer, into: &quantizer)
        }
        guard copied else {
            throw PluginError("\(label) '\(name)': a \(kind) without a complete \(kind) function table (ABI v1.0's fields at least)")
        }
        // The functions the header does not allow to be NULL: refused here, not called through later.
        let missingFunctions: [String] = switch kind {
        case .pruner: pruner.prune == nil ? ["prune"] : []
        case .schedule: [schedule.sparsity_at == nil ? "sparsity_at" : nil,
                         schedule.criterion == nil ? "criterion" : nil].compactMap { $0 }
        case .quantizer: [("create", quantizer.create == nil), ("forward", quantizer.forward == nil),
                          ("saved_bytes", quantizer.saved_bytes == nil), ("serialize", quantizer.serialize == nil),
                          ("deserialize", quantizer.deserialize == nil)].filter(\.1).map(\.0)
        }
        guard missingFunctions.isEmpty else {
            throw PluginError("\(label) '\(name)': the \(kind) table has no \(missingFunctions.joined(separator: ", ")) (NULL), which the ABI requires")
        }
        if kind == .pruner, let raw = method.get_extension.flatMap({ lookup in SK_EXT_CALIBRATION.withCString { lookup(descriptor, $0) } }),
           raw.load(as: UInt32.self) >= UInt32(MemoryLayout<sk_calibration_ext>.size),
           raw.assumingMemoryBound(to: sk_calibration_ext.self).pointee.needs & UInt32(SK_STAT_INPUT_SAMPLES) != 0 {
            throw PluginError("\(label) '\(name)': a pruner cannot ask for SK_STAT_INPUT_SAMPLES (the host gives pruners L2 norms, abs-max and range only)")
        }
        var specs: [PluginOptionSpec] = []
        for i in 0..<Int(method.option_count) {
            var spec = sk_option_spec()
            guard let source = method.options?[i], copyTable(source, minimum: ABIMinimumSize.optionSpec, into: &spec),
                  let optionName = spec.name.map({ String(cString: $0) }),
                  let type = PluginOptionType(code: spec.type), let defaultValue = spec.default_value else {
                throw PluginError("\(label) '\(name)': option #\(i) is malformed (name, type and default are required)")
            }
            if kind == .pruner, PluginMethod.hostPrunerOptions.contains(optionName) {
                throw PluginError("\(label) '\(name)': option '\(optionName)' is the pruning stage's own (\(PluginMethod.hostPrunerOptions.sorted().joined(separator: ", "))); a pruner cannot declare it")
            }
            var choices: [String] = []
            if type == .enum, var cursor = spec.choices {
                while let choice = cursor.pointee { choices.append(String(cString: choice)); cursor += 1 }
            }
            let bound = { (text: UnsafePointer<CChar>?, which: String) throws -> Double? in
                guard let text else { return nil }
                let value = String(cString: text)
                guard type == .int || type == .float, let number = Double(value), number.isFinite else {
                    throw PluginError("\(label) '\(name)': option '\(optionName)' has \(which) '\(value)', but only int and float options take a finite numeric \(which)")
                }
                return number
            }
            let option = PluginOptionSpec(name: optionName, type: type, defaultValue: String(cString: defaultValue),
                                          help: spec.help.map { String(cString: $0) } ?? "", choices: choices,
                                          minimum: try bound(spec.min_value, "min_value"), maximum: try bound(spec.max_value, "max_value"))
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
        self.pruner = pruner
        self.schedule = schedule
        self.quantizer = quantizer
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

/// The size of each table as ABI v1.0 defined it: a plugin built against that header fills in no
/// less, and the host reads the fields added since (the header marks them "added in ABI 1, after
/// the fields above") only where `struct_size` covers them, as zero (NULL) otherwise.
enum ABIMinimumSize {
    static let entry = end(of: \sk_plugin_entry.method_at)
    static let method = end(of: \sk_method.plugin_data)
    static let pruner = end(of: \sk_pruner.prune_structured)
    static let schedule = end(of: \sk_schedule.criterion)
    /// v1.0 ends at `destroy`; `dequantize` came later.
    static let quantizer = end(of: \sk_quantizer.destroy)
    /// v1.0 ends at `choices`; `min_value` and `max_value` came later.
    static let optionSpec = end(of: \sk_option_spec.choices)

    static func end<T, F>(of field: KeyPath<T, F>) -> Int {
        (MemoryLayout<T>.offset(of: field) ?? MemoryLayout<T>.size) + MemoryLayout<F>.size
    }
}

/// Copies the plugin's table at `source` (its own `struct_size` bytes, the first field) into
/// `table`, which starts zeroed, so fields past the plugin's size stay zero. False when there is
/// no table or it is smaller than `minimum`.
func copyTable<T>(_ source: UnsafePointer<T>?, minimum: Int, into table: inout T) -> Bool {
    guard let source else { return false }
    let size = Int(UnsafeRawPointer(source).load(as: UInt32.self))
    guard size >= minimum else { return false }
    withUnsafeMutableBytes(of: &table) { target in
        target.copyMemory(from: UnsafeRawBufferPointer(start: UnsafeRawPointer(source), count: min(size, target.count)))
    }
    return true
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
