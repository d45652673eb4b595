import Foundation
import PluginAPI

/// The type of a method's option, as the plugin declares it.
enum PluginOptionType: String, Sendable {
    case int, float, string, bool, `enum`

    init?(code: UInt32) {
        switch Int32(code) {
        case SK_OPTION_INT: self = .int
        case SK_OPTION_FLOAT: self = .float
        case SK_OPTION_STRING: self = .string
        case SK_OPTION_BOOL: self = .bool
        case SK_OPTION_ENUM: self = .enum
        default: return nil
        }
    }
}

/// One option in a method's schema (copied out of the plugin's `sk_option_spec`).
struct PluginOptionSpec: Sendable, Equatable {
    let name: String
    let type: PluginOptionType
    let defaultValue: String
    let help: String
    /// For `.enum`: the allowed values.
    let choices: [String]
    /// For `.int` and `.float`: the inclusive bounds, when the plugin declares them
    /// (`min_value`/`max_value`, added within ABI 1).
    var minimum: Double? = nil
    var maximum: Double? = nil

    /// Why `value` is not valid for this option, or nil.
    func problem(with value: String) -> String? {
        switch type {
        case .int where Int64(value) == nil: "'\(value)' is not an integer"
        case .float where Double(value).map({ !$0.isFinite }) ?? true: "'\(value)' is not a finite number"
        case .bool where value != "true" && value != "false": "'\(value)' is not true or false"
        case .enum where !choices.contains(value): "'\(value)' is not one of \(choices.joined(separator: ", "))"
        case .int, .float: rangeProblem(Double(value) ?? 0, value)
        default: nil
        }
    }

    private func rangeProblem(_ number: Double, _ text: String) -> String? {
        if let minimum, number < minimum { return "'\(text)' is below the minimum \(Self.format(minimum))" }
        if let maximum, number > maximum { return "'\(text)' is above the maximum \(Self.format(maximum))" }
        return nil
    }

    private static func format(_ bound: Double) -> String {
        bound == bound.rounded() && abs(bound) < 1e15 ? String(Int64(bound)) : String(bound)
    }

    /// How `plugins list/show` print it: `name=default (type)`.
    var summary: String {
        var typeText = type == .enum ? choices.joined(separator: "|") : type.rawValue
        if minimum != nil || maximum != nil {
            typeText += " in \(minimum.map(Self.format) ?? "")...\(maximum.map(Self.format) ?? "")"
        }
        return "\(name)=\(defaultValue) (\(typeText))"
    }
}

extension PluginMethod {
    /// Checks user-given options against the schema and fills in every default, in declared order:
    /// exactly what the ABI promises a plugin it will receive.
    func resolve(options given: [String: String]) throws -> [(name: String, value: String)] {
        let declared = Set(options.map(\.name))
        if let unknown = given.keys.sorted().first(where: { !declared.contains($0) }) {
            let list = options.isEmpty ? "it declares no options" : "declared: \(options.map(\.name).joined(separator: ", "))"
            throw PluginError("\(kind) method '\(name)' has no option '\(unknown)' (\(list))")
        }
        return try options.map { spec in
            let value = given[spec.name] ?? spec.defaultValue
            if let problem = spec.problem(with: value) {
                throw PluginError("option '\(spec.name)' of method '\(name)': \(problem)")
            }
            return (spec.name, value)
        }
    }

    /// Runs `body` with the resolved options laid out as an `sk_options` table. The strings live
    /// until `body` returns, as the ABI says.
    func withCOptions<R>(_ given: [String: String], _ body: (UnsafePointer<sk_options>) throws -> R) throws -> R {
        let resolved = try resolve(options: given)
        let strings = resolved.flatMap { [strdup($0.name)!, strdup($0.value)!] }
        defer { strings.forEach { free($0) } }
        let values = (0..<resolved.count).map { i in
            sk_option_value(name: strings[2 * i], value: strings[2 * i + 1])
        }
        return try values.withUnsafeBufferPointer { values in
            var table = sk_options(struct_size: UInt32(MemoryLayout<sk_options>.size),
                                   count: UInt32(values.count), values: values.baseAddress)
            return try body(&table)
        }
    }
}
