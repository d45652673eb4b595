/// `prune`: mask with a pruner or a schedule, heal by fine-tuning, make permanent (Pipeline/Pruning).
struct PruneStage: StageDeclaration {
    /// Any registered pruner (`magnitude`, `wanda`, …) or schedule (`gradual`, …).
    var method = "magnitude"
    /// Target fraction of removed weights in the selected layers; a schedule's final sparsity.
    var sparsity = 0.5
    var layers: PruneLayers = .all
    /// Comments run through the model to collect activation statistics (for methods that need them).
    var calibSamples = 512
    var fineTune = true
    var fineTuneEpochs = 3
    /// The method's own options, as strings, checked against the schema it declares.
    var options: [String: String] = [:]
    /// Schedule methods only: the fine-tuning epochs (counted from 0) over which sparsity ramps up,
    /// and how many optimizer steps apart the masks are recomputed. nil takes the default
    /// (`scheduleWindow`).
    var startEpoch: Int?
    var endEpoch: Int?
    var frequency: Int?

    static let defaultFrequency = 100
    /// The seed's end of the schedule window on the command line: epoch 10.
    static let seedEndEpoch = 10
    /// The seed's `--prune_method structured`.
    static let structuredMethod = "structured"

    /// The schedule window with defaults filled in: from the first epoch, reaching the final sparsity
    /// at the start of the last fine-tuning epoch (which then heals at full sparsity), every 100 steps.
    var scheduleWindow: (startEpoch: Int, endEpoch: Int, frequency: Int) {
        (startEpoch ?? 0, endEpoch ?? max(fineTuneEpochs - 1, 0), frequency ?? Self.defaultFrequency)
    }

    static let name = "prune"
    static let summary = "remove weights (or whole heads and FFN neurons), heal by fine-tuning, make permanent"
    static let pipelineWord: String? = "prune"
    static let modelWord: ModelWord? = .adjective("pruned")

    static var options: [StageOption<Self>] {
        [
            .name("method", flag: "prune_method", \.method,
                  help: "Pruning method: magnitude, wanda, gradual, structured (whole attention heads and FFN neurons removed, per the pruned layers: attention → heads, ffn → FFN neurons, all or encoder → both), or any pruner a plugin registers."),
            .number("sparsity", flag: "prune_sparsity", \.sparsity, .unitBelowOne,
                    help: "Fraction of the pruned layers' weights to remove, in [0, 1)."),
            .choice("layers", flag: "prune_layers", \.layers,
                    help: "What is pruned: all (every linear layer but the final classifier row, and the word embeddings), linear (the same without the embeddings), encoder (the encoder's linear layers), attention, ffn, or embeddings (the word embeddings alone)."),
            .integer("calib_samples", flag: "calib_samples", \.calibSamples, minimum: 1,
                     help: "Calibration comments for methods that need activation statistics (wanda)."),
            .flag("fine_tune", flag: "fine_tune_after_prune", \.fineTune,
                  help: "Heal the pruned model by fine-tuning with the mask enforced."),
            .integer("fine_tune_epochs", flag: "fine_tune_epochs", \.fineTuneEpochs, minimum: 0, maximum: 100_000,
                     help: "Epochs of healing after pruning."),
            .methodOptions("options", flag: "prune_option", \.options,
                           help: "A further option of the pruning method, name=value; repeatable. Any method also takes scope=layer|global and structure=none|ffn|heads|both (whole FFN neurons, attention heads, or both removed, with a structured pruner such as magnitude)."),
            .integer("start_epoch", flag: "prune_start_epoch", \.startEpoch, minimum: 0, maximum: 100_000,
                     help: "Gradual pruning: fine-tuning epoch, from 0, where the schedule starts (default: 0)."),
            .integer("end_epoch", flag: "prune_end_epoch", \.endEpoch, minimum: 0, maximum: 100_000,
                     help: "Gradual pruning: epoch by which the final sparsity is reached (default on the command line: 10; at or past the fine-tuning epochs it is reached at the start of the last one)."),
            .integer("frequency", flag: "prune_frequency", \.frequency, minimum: 1,
                     help: "Gradual pruning: optimizer steps between mask updates (default: 100)."),
            StageOption(key: "options.schedule", flag: "prune_schedule", kind: .choice(PruneScheduleName.allCases.map(\.rawValue)),
                        help: "Schedule of gradual pruning: cubic, linear or exponential (default: cubic). One-shot pruners ignore it, as the schedule options above.",
                        read: { _ in nil },
                        write: { if case .text(let schedule) = $1 { $0.options["schedule"] = schedule } })
                .only(inRecipes: false),
        ]
    }

    /// The flags a one-shot pruner ignores, as the seed does.
    static let scheduleKeys = ["options.schedule", "start_epoch", "end_epoch", "frequency"]

    /// Healing needs an epoch.
    mutating func finish(given: Set<String>, place: OptionPlace) throws {
        if fineTune, fineTuneEpochs < 1 {
            throw place.fail("fine_tune_epochs", "must be at least 1, got \(fineTuneEpochs)")
        }
    }

    /// Anywhere after the baseline, but not after quantize.
    static func placementProblem(after earlier: [String]) -> String? {
        earlier.firstIndex(of: QuantizeStage.name).map {
            "prune after quantize is impossible: quantized weights cannot be pruned and healed (stage \($0 + 1) is quantize)"
        }
    }

    var label: String { "prune_" + method }

    /// The seed's conventions: `--prune_method structured` is magnitude over whole units; a schedule
    /// method gets the seed's window (cubic, epochs 0 to 10 within the fine-tuning, every 100 steps); a
    /// one-shot pruner ignores the schedule flags.
    static func fromCommandLine(_ given: [String: OptionValue], methods: MethodCatalog, notes: inout [String]) throws -> Self {
        var given = given
        let schemas = methods.methodSchemas
        func integer(_ key: String) -> Int? { if case .integer(let value)? = given[key] { value } else { nil } }
        // The seed checks its window whatever the method.
        let (seedStart, seedEnd) = (integer("start_epoch") ?? 0, integer("end_epoch") ?? seedEndEpoch)
        guard seedEnd >= seedStart else {
            throw RecipeError("--prune_end_epoch must be ≥ --prune_start_epoch (\(seedStart)), got \(seedEnd)")
        }
        var method: String { if case .text(let name)? = given["method"] { name } else { Self().method } }
        if method == structuredMethod, !schemas.contains(where: { $0.name == structuredMethod }) {
            try mapStructured(&given)
            let structure = if case .pairs(let pairs)? = given["options"] { pairs["structure"] ?? "none" } else { "none" }
            let layers = if case .text(let layers)? = given["layers"] { layers } else { PruneLayers.all.rawValue }
            notes.append("--prune_method structured: whole units ranked by magnitude, structure=\(structure) in the \(layers) layers")
        }
        if schemas.first(where: { $0.name == method })?.kind == .schedule {
            let hasSchedule = if case .pairs(let pairs)? = given["options"] { pairs["schedule"] != nil } else { false }
            if given["options.schedule"] == nil, !hasSchedule { given["options.schedule"] = .text(PruneScheduleName.cubic.rawValue) }
            let start = seedStart
            let fineTuneEpochs = integer("fine_tune_epochs") ?? Self().fineTuneEpochs
            // The seed ramps over the whole fine-tuning whatever its end epoch (10 by default): an end
            // at or past the last fine-tuning epoch reaches the sparsity where that epoch starts.
            let end = min(seedEnd, max(fineTuneEpochs - 1, start))
            if end != seedEnd {
                notes.append("--prune_end_epoch \(seedEnd) is past the \(fineTuneEpochs) fine-tuning epochs: the final sparsity is reached where epoch \(end) (from 0) starts")
            }
            given["start_epoch"] = .integer(start)
            given["end_epoch"] = .integer(end)
            given["frequency"] = given["frequency"] ?? .integer(defaultFrequency)
        } else {
            let ignored = scheduleKeys.filter { given[$0] != nil }
            if !ignored.isEmpty {
                notes.append("\(ignored.map(commandLineName(of:)).joined(separator: ", ")): only schedule methods such as gradual use them; '\(method)' prunes at once")
                for key in ignored { given[key] = nil }
            }
        }
        return try make(given, place: commandLinePlace)
    }

    /// `--prune_method structured`: whole attention heads and FFN neurons, ranked by magnitude, per
    /// `--prune_layers` (attention → heads, ffn → FFN neurons, all / encoder / linear → both). Only
    /// the encoder's layers are selected, so nothing else is pruned weight by weight.
    private static func mapStructured(_ given: inout [String: OptionValue]) throws {
        let layers = if case .text(let raw)? = given["layers"] { PruneLayers(rawValue: raw) ?? .all } else { PruneLayers.all }
        let structure: PruningPlan.Structure
        switch layers {
        case .attention: structure = .heads
        case .ffn: structure = .ffn
        case .all, .encoder, .linear:
            structure = .both
            given["layers"] = .text(PruneLayers.encoder.rawValue)
        case .embeddings:
            throw RecipeError("--prune_method structured removes attention heads and FFN neurons; --prune_layers embeddings selects neither")
        }
        var pairs: [String: String] = if case .pairs(let pairs)? = given["options"] { pairs } else { [:] }
        if let chosen = pairs["structure"], chosen != structure.rawValue {
            throw RecipeError("--prune_method structured with --prune_layers \(layers.rawValue) removes structure=\(structure.rawValue); --prune_option structure=\(chosen) disagrees")
        }
        pairs["structure"] = structure.rawValue
        given["options"] = .pairs(pairs)
        given["method"] = .text("magnitude")
    }

    func validate(_ check: StageCheck) throws -> ResolvedMethod? {
        guard fineTuneEpochs >= (fineTune ? 1 : 0) else {
            throw check.fail("fine_tune_epochs", "must be at least \(fineTune ? 1 : 0), got \(fineTuneEpochs)")
        }
        let method = try check.lookUp(self.method, kinds: [.pruner, .schedule])
        if method.kind == .schedule {
            guard fineTune else {
                throw check.fail("fine_tune", "must be true for the schedule method '\(method.name)': it prunes while fine-tuning")
            }
            let window = scheduleWindow
            guard window.endEpoch >= window.startEpoch else {
                throw check.fail("end_epoch", "must be ≥ start_epoch (\(window.startEpoch)), got \(window.endEpoch)")
            }
            guard window.endEpoch < fineTuneEpochs else {
                throw check.fail("end_epoch", "must be below fine_tune_epochs (\(fineTuneEpochs); epochs count from 0), got \(window.endEpoch)")
            }
        } else {
            let scheduleKeys: [(String, Int?)] = [("start_epoch", startEpoch), ("end_epoch", endEpoch), ("frequency", frequency)]
            if let (key, _) = scheduleKeys.first(where: { $0.1 != nil }) {
                throw check.fail(key, "applies only to schedule methods such as gradual; '\(method.name)' is a pruner")
            }
        }
        // Options the pruning stage reads itself (scope, structure) apply to every method.
        var methodOptions = options
        var hostOptions: [String: String] = [:]
        for (name, choices) in PruningStage.hostOptions {
            guard let value = methodOptions.removeValue(forKey: name) else { continue }
            guard choices.contains(value) else {
                throw check.failOption(name, "option '\(name)' must be one of \(choices.joined(separator: ", ")), got '\(value)'")
            }
            hostOptions[name] = value
        }
        // Whole units need the layers that hold them: refused here, not after a trained baseline.
        if let structure = hostOptions["structure"].flatMap(PruningPlan.Structure.init(rawValue:)) {
            let holdsHeads = ![PruneLayers.ffn, .embeddings].contains(layers)
            let holdsFFN = ![PruneLayers.attention, .embeddings].contains(layers)
            if structure.removesHeads && !holdsHeads || structure.removesFFN && !holdsFFN {
                throw check.fail("layers", "\(layers.rawValue) holds no \(structure.removesHeads && !holdsHeads ? "attention heads" : "FFN neurons") for structure=\(structure.rawValue)")
            }
        }
        var resolved = try check.resolve(methodOptions, for: method)
        resolved.options.merge(hostOptions) { method, _ in method }
        // A schedule delegates scoring to a named criterion: it must be a registered pruner.
        if method.kind == .schedule, let criterion = resolved.options["criterion"] {
            let pruners = check.schemas.filter { $0.kind == .pruner }.map(\.name)
            guard pruners.contains(criterion) else {
                throw check.failOption("criterion", "'\(criterion)' is not a registered pruner (known: \(pruners.joined(separator: ", ")))")
            }
        }
        return resolved
    }

    func implementation() -> CompressionStage? { PruningStage(stage: self) }
}
