import Foundation

// Validation of a recipe before any work: order, values, methods and their options.

/// A compression method as validation needs it: name, kind and declared options. The plugin registry
/// is one; tests may bring their own.
struct MethodSchema: Sendable, Equatable {
    var name: String
    var kind: PluginMethodKind
    var plugin: String
    var version: String
    var options: [PluginOptionSpec]
}

/// Whatever knows the registered methods.
protocol MethodCatalog {
    var methodSchemas: [MethodSchema] { get }
}

extension PluginRegistry: MethodCatalog {
    var methodSchemas: [MethodSchema] {
        methods.map { MethodSchema(name: $0.name, kind: $0.kind, plugin: $0.pluginName, version: $0.version, options: $0.options) }
    }
}

/// The method a prune or quantize stage will call, with every option resolved (the given ones and
/// the declared defaults, in declared order): what provenance records.
struct ResolvedMethod: Sendable, Equatable {
    var schema: MethodSchema
    var options: [String: String]
    var orderedOptions: [(name: String, value: String)] {
        schema.options.map { ($0.name, options[$0.name] ?? $0.defaultValue) }
    }
}

extension Recipe {
    /// Checks everything that can be checked before work starts: stage order, option values, method
    /// names against `methods`, and method options against each method's schema. Returns the resolved
    /// method of each stage (nil for baseline and distill). The first problem, in stage order, is thrown.
    @discardableResult
    func validate(methods catalog: MethodCatalog) throws -> [ResolvedMethod?] {
        let schemas = catalog.methodSchemas
        guard !stages.isEmpty else {
            switch origin {
            case .file(let path): throw RecipeError("\(path): the recipe has no stages; it needs at least baseline")
            case .pipeline(let name): throw RecipeError("--pipeline \(name.rawValue): no stages")
            }
        }
        var resolved: [ResolvedMethod?] = []
        for (index, stage) in stages.enumerated() {
            try checkOrder(of: index)
            try checkValues(of: index)
            resolved.append(try stage.settings.validate(StageCheck(recipe: self, index: index, schemas: schemas)))
        }
        return resolved
    }

    /// The first stage is the catalog's first (baseline); each stage's own rule on what may come before
    /// it; nothing after the catalog's last (quantize).
    private func checkOrder(of index: Int) throws {
        let stage = stages[index]
        let first = StageCatalog.first.name
        if index == 0 {
            guard stage.name == first else {
                throw error(stage: index) { _ in "the first stage must be \(first) (it trains the teacher every later stage starts from)" }
            }
            return
        }
        let earlier = stages[..<index].map(\.name)
        if let problem = type(of: stage.settings).placementProblem(after: earlier) {
            throw error(stage: index) { _ in problem }
        }
        let last = StageCatalog.last.name
        if let ended = earlier.firstIndex(of: last) {
            throw error(stage: index) { _ in
                "\(stage.name) after \(last) is impossible: \(last) must be the last stage (stage \(ended + 1) is \(last))"
            }
        }
    }

    /// Every declared option's value against its kind and rule (a stage made in code has not been
    /// through a reader).
    private func checkValues(of index: Int) throws {
        if let (key, problem) = stages[index].settings.firstValueProblem {
            throw error(stage: index, key: key) { "\($0) \(problem)" }
        }
    }
}
