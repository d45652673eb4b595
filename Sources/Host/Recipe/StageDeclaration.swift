import Foundation

// What a kind of recipe stage declares about itself, in one file of its own (Recipe/Stages/): its
// name, its options, where it may stand in a recipe, what it makes of the model's name, how it is
// checked and what runs it. `StageCatalog.kinds` lists the kinds; adding a stage is one file plus one
// line there (docs/recipes.md, "Adding a stage").

protocol StageDeclaration: Equatable, Sendable {
    /// The stage's name in recipes (`- prune: {…}`), in errors and in provenance.
    static var name: String { get }
    /// One line for `--help`.
    static var summary: String { get }
    /// `--pipeline` names containing this word run the stage (`_kd`, `prune`, `quant`); nil: recipes only.
    static var pipelineWord: String? { get }
    /// Every option of the stage, declared once, in the order errors and `--help` list them.
    static var options: [StageOption<Self>] { get }
    /// The word the stage adds to the model's name once it has run (`pruned`, `quantized`); a stage
    /// that makes a new model instead names it (`student`).
    static var modelWord: ModelWord? { get }

    /// The stage with every option at its default.
    init()

    /// Checks between options, once each option has been read and range-checked: `given` holds the keys
    /// that were written; `place` names them and makes errors at their place.
    mutating func finish(given: Set<String>, place: OptionPlace) throws

    /// Why the stage cannot stand after `earlier` (the names of the stages before it), or nil.
    static func placementProblem(after earlier: [String]) -> String?

    /// Checks the stage against the loaded methods; returns the plugin method it will call, if any.
    func validate(_ check: StageCheck) throws -> ResolvedMethod?

    /// The stage as the command line's `--pipeline` builds it from the flags given (`given`, by key),
    /// for the seed framework's conventions (defaults that differ from a recipe's). `notes` collects
    /// what the user should read about how the flags were understood.
    static func fromCommandLine(_ given: [String: OptionValue], methods: MethodCatalog, notes: inout [String]) throws -> Self

    /// The label of the stage's summary row before repeats are numbered (`prune_wanda`).
    var label: String { get }

    /// What runs the stage; nil for the baseline, which the pipeline runs itself.
    func implementation() -> CompressionStage?
}

/// How a stage changes the name of the model it hands on.
enum ModelWord: Equatable {
    /// A word in front of the model's name (`pruned` teacher).
    case adjective(String)
    /// A new model: the name's last word (`student` instead of `teacher`).
    case noun(String)
}

extension StageDeclaration {
    static var summary: String { "" }
    static var pipelineWord: String? { nil }
    static var modelWord: ModelWord? { nil }
    mutating func finish(given: Set<String>, place: OptionPlace) throws {}
    var label: String { Self.name }

    /// Applies `values` (checked by kind and range) in declared order, then `finish`.
    static func make(_ values: [String: OptionValue], place: OptionPlace) throws -> Self {
        var stage = Self()
        for option in options {
            guard let value = values[option.key] else { continue }
            if let problem = option.problem(with: value) { throw place.fail(option.key, problem) }
            option.write(&stage, value)
        }
        try stage.finish(given: Set(values.keys), place: place)
        return stage
    }

    static func fromCommandLine(_ given: [String: OptionValue], methods: MethodCatalog, notes: inout [String]) throws -> Self {
        try make(given, place: commandLinePlace)
    }

    /// Errors about command-line values name the flag.
    static var commandLinePlace: OptionPlace {
        OptionPlace(name: commandLineName(of:)) { key, problem in RecipeError("\(commandLineName(of: key)) \(problem)") }
    }

    /// The flag of `key` (`--prune_sparsity`), or the stage and key when it has none.
    static func commandLineName(of key: String) -> String {
        options.first { $0.key == key }?.flagName ?? "\(name) \(key)"
    }

    /// Every option with its current value, as provenance records them.
    var recordedOptions: [String: String] {
        var recorded: [String: String] = [:]
        for option in Self.options {
            guard let value = option.read(self) else { continue }
            recorded[option.key] = "\(value)"
        }
        return recorded
    }
}

/// Where a stage's options were written, for errors: `name(key)` is how the user wrote the key (itself
/// in a file, its flag on the command line), `fail(key, problem)` the error at its place.
struct OptionPlace {
    let name: (String) -> String
    let fail: (String, String) -> RecipeError
}

/// One stage of a recipe: any declared kind with its settings.
struct RecipeStage: Equatable, Sendable {
    let settings: any StageDeclaration

    init(_ settings: any StageDeclaration) { self.settings = settings }

    var name: String { type(of: settings).name }
    var label: String { settings.label }

    /// The settings of a stage of kind `T`, or nil.
    func settings<T: StageDeclaration>(as _: T.Type) -> T? { settings as? T }

    func `is`<T: StageDeclaration>(_: T.Type) -> Bool { settings is T }

    static func == (lhs: RecipeStage, rhs: RecipeStage) -> Bool {
        lhs.settings.isEqual(to: rhs.settings)
    }

    // The built-in kinds by name, as recipes and tests write them.
    static let baseline = RecipeStage(BaselineSettings())
    static func distill(_ settings: DistillStage) -> RecipeStage { RecipeStage(settings) }
    static func prune(_ settings: PruneStage) -> RecipeStage { RecipeStage(settings) }
    static func quantize(_ settings: QuantizeStage) -> RecipeStage { RecipeStage(settings) }
}

/// What a stage's `validate` needs: the stage's place for errors and the registered methods.
struct StageCheck {
    let recipe: Recipe
    let index: Int
    let schemas: [MethodSchema]

    /// An error about `key`, worded as `keyName problem` (the key in a file, the flag on the command line).
    func fail(_ key: String, _ problem: String) -> RecipeError {
        recipe.error(stage: index, key: key) { "\($0) \(problem)" }
    }

    /// An error about a method option `options.<name>`: `problem` follows "options:" / the flag.
    func failOption(_ name: String, _ problem: String) -> RecipeError {
        recipe.error(stage: index, key: "options.\(name)") { "\($0): \(problem)" }
    }

    /// The method called `name` among `kinds`, or an error listing the known methods of those kinds.
    func lookUp(_ name: String, kinds: [PluginMethodKind]) throws -> MethodSchema {
        let kindText = kinds.map(\.rawValue).joined(separator: " or ")
        if let method = schemas.first(where: { $0.name == name }) {
            guard kinds.contains(method.kind) else {
                throw fail("method", "'\(name)' is a \(method.kind) (\(method.plugin)), not a \(kindText)")
            }
            return method
        }
        let known = schemas.filter { kinds.contains($0.kind) }.map(\.name).sorted()
        let list = known.isEmpty ? "no \(kindText) methods are loaded (check --plugin-path and SANKSHEP_PLUGIN_PATH)"
                                 : "known: \(known.joined(separator: ", "))"
        throw fail("method", "'\(name)' is not a registered \(kindText) method; \(list)")
    }

    /// Checks given method options against the declared schema, as the plugin will receive them.
    func resolve(_ given: [String: String], for method: MethodSchema) throws -> ResolvedMethod {
        let declared = method.options.map(\.name)
        for name in given.keys.sorted() where !declared.contains(name) {
            let list = declared.isEmpty ? "it declares no options" : "declared: \(declared.joined(separator: ", "))"
            throw failOption(name, "\(method.kind) method '\(method.name)' has no option '\(name)' (\(list))")
        }
        for spec in method.options {
            if let value = given[spec.name], let problem = spec.problem(with: value) {
                throw failOption(spec.name, "option '\(spec.name)' of method '\(method.name)': \(problem)")
            }
        }
        var options: [String: String] = [:]
        for spec in method.options { options[spec.name] = given[spec.name] ?? spec.defaultValue }
        return ResolvedMethod(schema: method, options: options)
    }
}
