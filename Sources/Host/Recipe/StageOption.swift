import Foundation
import Yams

// One option of a recipe stage, declared once: its recipe key, its command-line flag, what it holds
// and which values it allows, its help text, and where it lives in the stage's settings. The recipe
// reader, the command line, validation, provenance and `--help` all read these declarations; nothing
// else names an option (see docs/recipes.md, "Adding a stage").

/// A value of a stage option, however it was written (a recipe's YAML or the command line).
enum OptionValue: Equatable, CustomStringConvertible {
    case number(Double)
    case integer(Int)
    case flag(Bool)
    case text(String)
    case integers([Int])
    case pairs([String: String])

    /// As provenance records it and `--help` shows a default.
    var description: String {
        switch self {
        case .number(let value): String(value)
        case .integer(let value): String(value)
        case .flag(let value): String(value)
        case .text(let value): value
        case .integers(let values): values.map(String.init).joined(separator: ",")
        case .pairs(let pairs): pairs.keys.sorted().map { "\($0)=\(pairs[$0]!)" }.joined(separator: ",")
        }
    }
}

/// The allowed numbers of a `number` option.
enum NumberRange: Equatable {
    /// [0, 1]
    case unit
    /// [0, 1)
    case unitBelowOne
    /// > 0
    case positive
    /// ≥ 0
    case nonNegative

    func problem(with value: Double) -> String? {
        let allowed = switch self {
        case .unit: (0...1).contains(value)
        case .unitBelowOne: value >= 0 && value < 1
        case .positive: value > 0
        case .nonNegative: value >= 0
        }
        if value.isFinite && allowed { return nil }
        return switch self {
        case .unit: "must be in [0, 1], got \(value)"
        case .unitBelowOne: "must be in [0, 1), got \(value)"
        case .positive: "must be positive, got \(value)"
        case .nonNegative: "must be ≥ 0, got \(value)"
        }
    }
}

/// What an option holds, and so how it is read and checked.
enum OptionKind: Equatable {
    /// A finite number in `range`.
    case number(NumberRange)
    /// An integer ≥ `minimum` (1: positive, 0: from 0), at most `maximum` (a size the run can hold).
    case integer(minimum: Int, maximum: Int)
    /// true or false; on the command line `--flag` / `--no-flag`.
    case flag
    /// A non-empty name (a method, a preset, a path).
    case name
    /// One of these names.
    case choice([String])
    /// A list of integers ≥ 0; on the command line comma-separated.
    case integerList
    /// `{name: value, …}` passed on to a plugin method; on the command line `--flag name=value`, repeatable.
    case methodOptions

    /// The largest count any option accepts: far beyond every real run, far below what overflows a product.
    static let largestCount = 1 << 31

    /// Why `value` is not allowed, or nil; follows the option's name in an error.
    func problem(with value: OptionValue) -> String? {
        switch (self, value) {
        case (.number(let range), .number(let number)): return range.problem(with: number)
        case (.integer(let minimum, let maximum), .integer(let number)):
            if number < minimum { return minimum == 1 ? "must be positive, got \(number)" : "must be ≥ \(minimum), got \(number)" }
            if number > maximum { return "must be at most \(maximum), got \(number)" }
            return nil
        case (.choice(let names), .text(let name)):
            return names.contains(name) ? nil : "must be one of \(names.joined(separator: ", ")), got '\(name)'"
        case (.name, .text(let name)):
            return name.isEmpty ? "is empty" : nil
        default:
            return nil
        }
    }

    /// How the value is written in `--help`.
    var valueName: String {
        switch self {
        case .number: "number"
        case .integer: "n"
        case .flag: ""
        case .name: "name"
        case .choice(let names): names.joined(separator: "|")
        case .integerList: "i,j,…"
        case .methodOptions: "name=value"
        }
    }
}

/// One option of the stage settings `Stage`.
struct StageOption<Stage> {
    /// The key in a recipe file (`sparsity`).
    let key: String
    /// The `sankshep run` flag, without dashes (`prune_sparsity`); nil for a recipe-only key.
    let flag: String?
    let kind: OptionKind
    let help: String
    /// The value in `stage`, nil when unset (the stage then uses a default it computes).
    let read: (Stage) -> OptionValue?
    /// Stores a value already checked against `kind`.
    let write: (inout Stage, OptionValue) -> Void
    /// False for a command-line spelling of another key (`--prune_schedule` for `options: {schedule: …}`).
    var inRecipes = true
    /// A further rule on the value beyond its kind's, or nil.
    var rule: ((OptionValue) -> String?)? = nil

    var flagName: String? { flag.map { "--" + $0 } }

    /// Why `value` is not allowed, or nil: its kind's range, then the option's own rule.
    func problem(with value: OptionValue) -> String? {
        kind.problem(with: value) ?? rule?(value)
    }

    func only(inRecipes: Bool = true, rule: ((OptionValue) -> String?)? = nil) -> Self {
        var option = self
        option.inRecipes = inRecipes
        option.rule = rule
        return option
    }
}

// MARK: - Declaring options

extension StageOption {
    static func number(_ key: String, flag: String?, _ path: WritableKeyPath<Stage, Double>, _ range: NumberRange,
                       help: String) -> Self {
        Self(key: key, flag: flag, kind: .number(range), help: help,
             read: { .number($0[keyPath: path]) },
             write: { if case .number(let value) = $1 { $0[keyPath: path] = value } })
    }

    static func integer(_ key: String, flag: String?, _ path: WritableKeyPath<Stage, Int>, minimum: Int,
                        maximum: Int = OptionKind.largestCount, help: String) -> Self {
        Self(key: key, flag: flag, kind: .integer(minimum: minimum, maximum: maximum), help: help,
             read: { .integer($0[keyPath: path]) },
             write: { if case .integer(let value) = $1 { $0[keyPath: path] = value } })
    }

    static func integer(_ key: String, flag: String?, _ path: WritableKeyPath<Stage, Int?>, minimum: Int,
                        maximum: Int = OptionKind.largestCount, help: String) -> Self {
        Self(key: key, flag: flag, kind: .integer(minimum: minimum, maximum: maximum), help: help,
             read: { $0[keyPath: path].map(OptionValue.integer) },
             write: { if case .integer(let value) = $1 { $0[keyPath: path] = value } })
    }

    static func flag(_ key: String, flag: String?, _ path: WritableKeyPath<Stage, Bool>, help: String) -> Self {
        Self(key: key, flag: flag, kind: .flag, help: help,
             read: { .flag($0[keyPath: path]) },
             write: { if case .flag(let value) = $1 { $0[keyPath: path] = value } })
    }

    static func name(_ key: String, flag: String?, _ path: WritableKeyPath<Stage, String>, help: String) -> Self {
        Self(key: key, flag: flag, kind: .name, help: help,
             read: { .text($0[keyPath: path]) },
             write: { if case .text(let value) = $1 { $0[keyPath: path] = value } })
    }

    static func choice<T: RawRepresentable & CaseIterable>(_ key: String, flag: String?, _ path: WritableKeyPath<Stage, T>,
                                                           help: String) -> Self where T.RawValue == String {
        Self(key: key, flag: flag, kind: .choice(T.allCases.map(\.rawValue)), help: help,
             read: { .text($0[keyPath: path].rawValue) },
             write: { if case .text(let raw) = $1, let value = T(rawValue: raw) { $0[keyPath: path] = value } })
    }

    static func choice<T: RawRepresentable & CaseIterable>(_ key: String, flag: String?, _ path: WritableKeyPath<Stage, T?>,
                                                           help: String) -> Self where T.RawValue == String {
        Self(key: key, flag: flag, kind: .choice(T.allCases.map(\.rawValue)), help: help,
             read: { $0[keyPath: path].map { .text($0.rawValue) } },
             write: { if case .text(let raw) = $1, let value = T(rawValue: raw) { $0[keyPath: path] = value } })
    }

    static func methodOptions(_ key: String, flag: String?, _ path: WritableKeyPath<Stage, [String: String]>,
                              help: String) -> Self {
        Self(key: key, flag: flag, kind: .methodOptions, help: help,
             read: { .pairs($0[keyPath: path]) },
             write: { if case .pairs(let pairs) = $1 { $0[keyPath: path].merge(pairs) { $1 } } })
    }
}

// MARK: - Reading a value

/// Why a written value does not fit an option; follows the option's name (key or flag) in an error.
struct OptionProblem: Error {
    let text: String
    init(_ text: String) { self.text = text }
}

extension OptionKind {
    /// The value of a recipe's YAML node, checked against the kind (not yet against its range).
    func value(of node: Node) throws(OptionProblem) -> OptionValue {
        func shown(_ node: Node) -> String { node.scalar?.string ?? "a \(node.mapping != nil ? "mapping" : "list")" }
        switch self {
        case .number:
            guard node.scalar != nil, let value = node.float else { throw OptionProblem("must be a number, got '\(shown(node))'") }
            return .number(value)
        case .integer:
            guard node.scalar != nil, let value = node.int else { throw OptionProblem("must be an integer, got '\(shown(node))'") }
            return .integer(value)
        case .flag:
            guard node.scalar != nil, let value = node.bool else { throw OptionProblem("must be true or false, got '\(shown(node))'") }
            return .flag(value)
        case .name, .choice:
            guard let scalar = node.scalar, node.null == nil, !scalar.string.isEmpty else {
                throw OptionProblem("must be a name, got '\(shown(node))'")
            }
            return .text(scalar.string)
        case .integerList:
            guard let items = node.sequence else { throw OptionProblem("must be a list of integers, e.g. [0, 2, 4]") }
            var values: [Int] = []
            for item in items {
                guard item.scalar != nil, let value = item.int else {
                    throw OptionProblem("must be a list of integers, got '\(shown(item))' in it")
                }
                values.append(value)
            }
            return .integers(values)
        case .methodOptions:
            if node.null != nil { return .pairs([:]) }
            guard let mapping = node.mapping else { throw OptionProblem("must be a mapping of method options, e.g. {group_size: 32}") }
            var pairs: [String: String] = [:]
            for (keyNode, value) in mapping {
                let name = keyNode.string ?? ""
                guard let scalar = value.scalar, value.null == nil else {
                    throw OptionProblem("'\(name)' must have a single value, got '\(shown(value))'")
                }
                pairs[name] = scalar.string
            }
            return .pairs(pairs)
        }
    }

    /// The value of a command-line argument (`nil` for a flag given bare or as `--no-…`, see `flagValue`).
    func value(of text: String) throws(OptionProblem) -> OptionValue {
        switch self {
        case .number:
            guard let value = Double(text) else { throw OptionProblem("must be a number, got '\(text)'") }
            return .number(value)
        case .integer:
            guard let value = Int(text) else { throw OptionProblem("must be an integer, got '\(text)'") }
            return .integer(value)
        case .flag:
            guard let value = Bool(text) else { throw OptionProblem("must be true or false, got '\(text)'") }
            return .flag(value)
        case .name, .choice:
            return .text(text)
        case .integerList:
            let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !parts.isEmpty, parts.allSatisfy({ $0 != nil }) else {
                throw OptionProblem("expected comma-separated integers, got '\(text)'")
            }
            return .integers(parts.compactMap { $0 })
        case .methodOptions:
            guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
                throw OptionProblem("\(text): expected name=value")
            }
            return .pairs([String(text[..<equals]): String(text[text.index(after: equals)...])])
        }
    }
}
