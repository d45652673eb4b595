import ArgumentParser

// The stage options of `sankshep run` (`--kd_alpha 0.5`, `--prune_sparsity=0.3`, `--no_fine_tune_after_prune`,
// `--prune_option scope=global` …) are read here from the stage declarations (Recipe/Stages/), which
// name each flag, its kind and its range once; ArgumentParser hands over every argument it does not
// know itself, and `--help` lists these flags from the same declarations.

/// The stage flags given on the command line, by stage and key, checked by kind and range.
struct StageArguments: Equatable {
    var values: [String: [String: OptionValue]] = [:]

    /// Reads `arguments` (what ArgumentParser left over, in order); anything that is not a declared
    /// stage flag is refused in one line.
    init(_ arguments: [String]) throws {
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            guard argument.hasPrefix("--") else {
                throw ValidationError("unexpected argument '\(argument)'")
            }
            var name = String(argument.dropFirst(2))
            var inline: String?
            if let equals = name.firstIndex(of: "=") {
                inline = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            // The seed writes `--no_fine_tune_after_prune`; ArgumentParser's own flags are `--no-…`.
            let negated = Self.declaration(flag: name) == nil && (name.hasPrefix("no_") || name.hasPrefix("no-"))
            guard let (stage, option) = Self.declaration(flag: negated ? String(name.dropFirst(3)) : name),
                  !negated || option.kind == .flag else {
                throw ValidationError("unknown option '--\(name)'")
            }
            let value: OptionValue
            if option.kind == .flag {
                if let inline { throw ValidationError("--\(name) takes no value, got '\(inline)'") }
                value = .flag(!negated)
            } else {
                guard let text = inline ?? (index < arguments.count ? arguments[index] : nil) else {
                    throw ValidationError("--\(name) needs a value (\(option.kind.valueName))")
                }
                if inline == nil { index += 1 }
                do { value = try option.kind.value(of: text) } catch { throw ValidationError("--\(name) \(error.text)") }
                if let problem = option.problem(value) { throw ValidationError("--\(name) \(problem)") }
            }
            var stageValues = values[stage] ?? [:]
            if case .pairs(let pairs) = value, case .pairs(let earlier)? = stageValues[option.key] {
                stageValues[option.key] = .pairs(earlier.merging(pairs) { $1 })   // repeatable
            } else {
                stageValues[option.key] = value
            }
            values[stage] = stageValues
        }
    }

    /// A flag's declaration, type-erased: its stage's name, its key, kind and rule.
    struct Declared {
        let key: String
        let kind: OptionKind
        let problem: (OptionValue) -> String?
        let help: String
    }

    static func declaration(flag: String) -> (stage: String, option: Declared)? {
        for entry in allFlags where entry.flag == flag { return (entry.stage, entry.option) }
        return nil
    }

    /// Every stage flag, in catalog and declaration order.
    static var allFlags: [(stage: String, flag: String, option: Declared)] {
        StageCatalog.kinds.flatMap { kind in flags(of: kind) }
    }

    private static func flags<Stage: StageDeclaration>(of _: Stage.Type) -> [(stage: String, flag: String, option: Declared)] {
        Stage.options.compactMap { option in
            option.flag.map { (Stage.name, $0, Declared(key: option.key, kind: option.kind, problem: option.problem(with:), help: option.help)) }
        }
    }

    /// The stage flags for `--help`, grouped by stage, each with its value and default.
    static var helpText: String {
        var lines: [String] = []
        for kind in StageCatalog.kinds { lines += helpLines(of: kind) }
        return lines.joined(separator: "\n")
    }

    private static func helpLines<Stage: StageDeclaration>(of _: Stage.Type) -> [String] {
        let flagged = Stage.options.filter { $0.flag != nil }
        guard !flagged.isEmpty else { return [] }
        var lines = ["", "\(Stage.name.uppercased()) STAGE OPTIONS (\(Stage.summary)):"]
        let defaults = Stage()
        for option in flagged {
            let flag = option.flagName ?? ""
            let spelled = option.kind == .flag ? "\(flag), --no_\(flag.dropFirst(2))" : "\(flag) <\(option.kind.valueName)>"
            let shown = option.read(defaults).map { value -> String in
                if case .pairs(let pairs) = value, pairs.isEmpty { return "" }
                return " (default: \(value))"
            } ?? ""
            lines.append("  \(spelled)")
            lines.append("        \(option.help)\(shown)")
        }
        return lines
    }
}

/// No registered methods: a pipeline's stages with their defaults need none.
struct NoMethods: MethodCatalog {
    var methodSchemas: [MethodSchema] { [] }
}

extension Recipe {
    /// The recipe of `--pipeline` for these stage flags, as `sankshep run` builds it.
    static func builtIn(_ pipeline: PipelineName, arguments: [String] = [], methods: MethodCatalog = NoMethods()) throws -> Recipe {
        var notes: [String] = []
        return try builtIn(pipeline, given: try StageArguments(arguments).values, methods: methods, notes: &notes)
    }
}
