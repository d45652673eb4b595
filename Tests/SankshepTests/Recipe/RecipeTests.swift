import Foundation
import Testing
@testable import Host

/// The methods the recipe tests validate against: the built-in plugins (magnitude, wanda, gradual),
/// found next to the test binary, plus the small C quantizer `int8-rows` compiled once per test run.
enum RecipeTestCatalog {
    static let registry: Result<PluginRegistry, PluginError> = Result {
        let folder = try PluginTestSupport.makeFolder()
        let library = try PluginTestSupport.compile(sourceFile: Fixtures.url("plugins/int8_rows_quantizer.c").path,
                                                    name: "int8_rows_quantizer", in: folder)
        return try PluginTestSupport.builtInRegistry(plus: [library])
    }.mapError { $0 as? PluginError ?? PluginError("\($0)") }

    static func get() throws -> PluginRegistry { try registry.get() }
}

/// Parses `yaml` as the file `r.yaml` and validates it; returns the error message, or nil if valid.
private func problem(_ yaml: String) throws -> String? {
    do {
        let recipe = try Recipe.parse(yaml: yaml, file: "r.yaml")
        try recipe.validate(methods: try RecipeTestCatalog.get())
        return nil
    } catch let error as RecipeError {
        #expect(!error.message.contains("\n"), "error messages are one line")
        return error.message
    }
}

@Suite("Recipes: parsing")
struct RecipeParsingTests {
    @Test("the five-stage example recipe parses into its stages with every option")
    func fiveStages() throws {
        let recipe = try Recipe.parse(yaml: """
            stages:
              - baseline: {}
              - distill: {alpha: 0.7, temperature: 4.0}
              - prune: {method: wanda, sparsity: 0.3}
              - prune: {method: gradual, sparsity: 0.6, options: {schedule: cubic}}
              - quantize: {method: int4, options: {group_size: 32}}
            """, file: "five.yaml", defaultName: "five")
        #expect(recipe.name == "five")
        #expect(recipe.stages == [
            .baseline,
            .distill(DistillStage(alpha: 0.7, temperature: 4.0)),
            .prune(PruneStage(method: "wanda", sparsity: 0.3)),
            .prune(PruneStage(method: "gradual", sparsity: 0.6, options: ["schedule": "cubic"])),
            .quantize(QuantizeStage(method: "int4", options: ["group_size": "32"])),
        ])
        #expect(recipe.locations.map(\.line) == [2, 3, 4, 5, 6])
        #expect(recipe.stageLabels == ["baseline", "distill", "prune_wanda", "prune_gradual", "quantize_int4"])
        #expect(recipe.stageTag == "final_quantized_pruned_student")
    }

    @Test("every stage key is read with its type: student from the teacher's layers, schedule window, calibration")
    func everyKey() throws {
        let recipe = try Recipe.parse(yaml: """
            name: full-options
            stages:
              - baseline
              - distill:
                  alpha: 0.5
                  temperature: 2
                  method: multi_level
                  hidden_loss_weight: 0.4
                  attention_loss_weight: 0.1
                  student_init: teacher
                  student_layers: [0, 2, 4]
                  student_hidden_size: 128
              - prune:
                  method: gradual
                  sparsity: 0.6
                  layers: ffn
                  calib_samples: 64
                  fine_tune: true
                  fine_tune_epochs: 4
                  start_epoch: 1
                  end_epoch: 2
                  frequency: 50
                  options: {schedule: linear, criterion: wanda}
              - quantize: {method: int8-rows, calibration_batches: 8}
            """, file: "full.yaml")
        #expect(recipe.name == "full-options")
        #expect(recipe.stages == [
            .baseline,
            .distill(DistillStage(alpha: 0.5, temperature: 2, method: .multi_level, hiddenLossWeight: 0.4,
                                  attentionLossWeight: 0.1, student: .teacherLayers([0, 2, 4]), studentHiddenSize: 128)),
            .prune(PruneStage(method: "gradual", sparsity: 0.6, layers: .ffn, calibSamples: 64, fineTune: true,
                              fineTuneEpochs: 4, options: ["schedule": "linear", "criterion": "wanda"],
                              startEpoch: 1, endEpoch: 2, frequency: 50)),
            .quantize(QuantizeStage(method: "int8-rows", calibrationBatches: 8)),
        ])
        let resolved = try recipe.validate(methods: try RecipeTestCatalog.get())
        #expect(resolved.map { $0?.schema.name } == [nil, nil, "gradual", "int8-rows"])
        #expect(resolved[2]?.orderedOptions.map { "\($0.name)=\($0.value)" } == ["schedule=linear", "criterion=wanda"])
    }

    @Test("a bare stage name, an empty body and a null body all take the stage's defaults")
    func defaults() throws {
        let recipe = try Recipe.parse(yaml: "stages:\n  - baseline\n  - distill:\n  - prune: {}\n", file: "d.yaml")
        #expect(recipe.stages == [.baseline, .distill(DistillStage()), .prune(PruneStage())])
        #expect(PruneStage().scheduleWindow == (0, 2, 100))
    }

    @Test("a recipe file is named after its file unless it says otherwise, and a missing file is named")
    func loadFromFile() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("recipes-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let file = folder.appendingPathComponent("wanda30.yaml")
        try "stages: [baseline, {prune: {method: wanda, sparsity: 0.3}}]\n".write(to: file, atomically: true, encoding: .utf8)
        let recipe = try Recipe.load(contentsOf: file)
        #expect(recipe.name == "wanda30")
        #expect(recipe.origin == .file(file.path))
        try recipe.validate(methods: try RecipeTestCatalog.get())
        let missing = folder.appendingPathComponent("nope.yaml")
        #expect(throws: RecipeError("\(missing.path): recipe no such file")) { try Recipe.load(contentsOf: missing) }
        let binary = folder.appendingPathComponent("bytes.yaml")
        try Data([0x73, 0x74, 0xFF, 0xFE]).write(to: binary)
        #expect(throws: RecipeError("\(binary.path): recipe is not UTF-8 text")) { try Recipe.load(contentsOf: binary) }
    }

    @Test("the example recipes in Examples/recipes parse, and their pruning methods are registered")
    func examples() throws {
        let folder = PluginTestSupport.repositoryRoot.appendingPathComponent("Examples/recipes")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".yaml") }.sorted()
        #expect(files.count >= 2)
        let registry = try RecipeTestCatalog.get()
        for file in files {
            let recipe = try Recipe.load(contentsOf: folder.appendingPathComponent(file))
            #expect(recipe.stages.first == .baseline, "\(file)")
            for prune in recipe.stages.compactMap({ $0.settings(as: PruneStage.self) }) {
                #expect(registry.methods.contains { $0.name == prune.method }, "\(file): \(prune.method)")
            }
        }
    }

    @Test("the examples validate completely once the quantizers they name are registered",
          .enabled(if: (try? RecipeTestCatalog.get().method(named: "int4", kind: .quantizer)) != nil))
    func examplesValidate() throws {
        let folder = PluginTestSupport.repositoryRoot.appendingPathComponent("Examples/recipes")
        for file in try FileManager.default.contentsOfDirectory(atPath: folder.path) where file.hasSuffix(".yaml") {
            try Recipe.load(contentsOf: folder.appendingPathComponent(file)).validate(methods: try RecipeTestCatalog.get())
        }
    }
}

@Suite("Recipes: validation errors")
struct RecipeValidationTests {
    @Test("an unknown stage is refused with the known ones")
    func unknownStage() throws {
        #expect(try problem("stages:\n  - baseline\n  - distil: {alpha: 0.5}\n")
            == "r.yaml:3: stage 2: unknown stage 'distil' (known: baseline, distill, prune, quantize)")
    }

    @Test("an unknown key, in a stage or at the top, is refused with the known ones")
    func unknownKeys() throws {
        #expect(try problem("stages:\n  - baseline\n  - prune:\n      method: wanda\n      sparsty: 0.3\n")
            == "r.yaml:5: stage 2 (prune): unknown key 'sparsty' (known: method, sparsity, layers, calib_samples, fine_tune, fine_tune_epochs, options, start_epoch, end_epoch, frequency)")
        #expect(try problem("stage:\n  - baseline\n") == "r.yaml:1: unknown key 'stage' (known: name, stages)")
        #expect(try problem("stages:\n  - baseline: {epochs: 3}\n")
            == "r.yaml:2: stage 1 (baseline): unknown key 'epochs' (baseline takes no keys; its training options come from the command line)")
    }

    @Test("an unknown pruning method is refused, listing the registered pruners and schedules")
    func unknownPruner() throws {
        #expect(try problem("stages:\n  - baseline\n  - prune: {method: sparsegpt}\n")
            == "r.yaml:3: stage 2 (prune): method 'sparsegpt' is not a registered pruner or schedule method; known: gradual, magnitude, wanda")
    }

    @Test("an unknown quantizer is refused, listing the registered quantizers; a method of another kind says what it is")
    func unknownQuantizer() throws {
        let unknown = try #require(try problem("stages:\n  - baseline\n  - quantize: {method: int3}\n"))
        #expect(unknown.hasPrefix("r.yaml:3: stage 2 (quantize): method 'int3' is not a registered quantizer method; known: "))
        #expect(unknown.contains("int8-rows"))
        #expect(try problem("stages:\n  - baseline\n  - quantize: {method: wanda}\n")
            == "r.yaml:3: stage 2 (quantize): method 'wanda' is a pruner (sankshep-wanda), not a quantizer")
    }

    @Test("an option the method does not declare is refused with the declared ones, at the option's line")
    func undeclaredOption() throws {
        #expect(try problem("stages:\n  - baseline\n  - prune:\n      method: wanda\n      options:\n        grop: layer\n")
            == "r.yaml:6: stage 2 (prune): options: pruner method 'wanda' has no option 'grop' (declared: group)")
        #expect(try problem("stages:\n  - baseline\n  - prune: {method: wanda, options: {group: column}}\n")
            == "r.yaml:3: stage 2 (prune): options: option 'group' of method 'wanda': 'column' is not one of row, layer")
    }

    @Test("a schedule's criterion must be a registered pruner")
    func criterion() throws {
        #expect(try problem("stages:\n  - baseline\n  - prune: {method: gradual, options: {criterion: random}}\n")
            == "r.yaml:3: stage 2 (prune): options: 'random' is not a registered pruner (known: magnitude, wanda)")
    }

    @Test("sparsity outside [0, 1), alpha outside [0, 1] and a temperature ≤ 0 are refused with the value")
    func badValues() throws {
        let base = "stages:\n  - baseline\n"
        #expect(try problem(base + "  - prune: {sparsity: 1.0}\n") == "r.yaml:3: stage 2 (prune): sparsity must be in [0, 1), got 1.0")
        #expect(try problem(base + "  - prune: {sparsity: -0.1}\n") == "r.yaml:3: stage 2 (prune): sparsity must be in [0, 1), got -0.1")
        #expect(try problem(base + "  - prune: {sparsity: 0}\n") == nil)
        #expect(try problem(base + "  - distill: {alpha: 1.5}\n") == "r.yaml:3: stage 2 (distill): alpha must be in [0, 1], got 1.5")
        #expect(try problem(base + "  - distill: {alpha: 1}\n") == nil)
        #expect(try problem(base + "  - distill: {temperature: 0}\n") == "r.yaml:3: stage 2 (distill): temperature must be positive, got 0.0")
        #expect(try problem(base + "  - distill: {temperature: -2}\n") == "r.yaml:3: stage 2 (distill): temperature must be positive, got -2.0")
        #expect(try problem(base + "  - quantize: {method: int8-rows, calibration_batches: 0}\n")
            == "r.yaml:3: stage 2 (quantize): calibration_batches must be positive, got 0")
        #expect(try problem(base + "  - prune: {calib_samples: 0}\n") == "r.yaml:3: stage 2 (prune): calib_samples must be positive, got 0")
    }

    @Test("a value of the wrong type is refused naming the key and the value")
    func wrongTypes() throws {
        let base = "stages:\n  - baseline\n"
        #expect(try problem(base + "  - prune:\n      sparsity: high\n") == "r.yaml:4: stage 2 (prune): sparsity must be a number, got 'high'")
        #expect(try problem(base + "  - prune: {fine_tune: maybe}\n") == "r.yaml:3: stage 2 (prune): fine_tune must be true or false, got 'maybe'")
        #expect(try problem(base + "  - prune: {layers: mlp}\n") == "r.yaml:3: stage 2 (prune): layers must be one of all, linear, attention, ffn, encoder, embeddings, got 'mlp'")
        #expect(try problem(base + "  - distill: {method: soft}\n") == "r.yaml:3: stage 2 (distill): method must be one of logit, hidden, attention, multi_level, got 'soft'")
        #expect(try problem(base + "  - prune: {options: [1, 2]}\n") == "r.yaml:3: stage 2 (prune): options must be a mapping of method options, e.g. {group_size: 32}")
        #expect(try problem(base + "  - distill: {student_layers: [0, two]}\n") == "r.yaml:3: stage 2 (distill): student_layers must be a list of integers, got 'two' in it")
    }

    @Test("the student is chosen once: preset, folder, or the teacher's layers")
    func studentChoice() throws {
        let base = "stages:\n  - baseline\n"
        #expect(try problem(base + "  - distill: {student_path: /models/distilbert, student_init: teacher}\n")
            == "r.yaml:3: stage 2 (distill): student_init and student_path both choose the student; keep one")
        #expect(try problem(base + "  - distill: {student_layers: [0, 2]}\n") == "r.yaml:3: stage 2 (distill): student_layers needs student_init: teacher")
        #expect(try problem(base + "  - distill: {student_init: teacher, student_layers: [2, 0]}\n")
            == "r.yaml:3: stage 2 (distill): student_layers must be teacher layer indices from 0, increasing, got [2, 0]")
        #expect(try problem(base + "  - distill: {student_init: random}\n")
            == "r.yaml:3: stage 2 (distill): student_init must be teacher (a preset or a folder is chosen with student_preset or student_path), got 'random'")
    }

    @Test("schedule keys belong to schedule methods, inside the fine-tuning epochs")
    func scheduleWindow() throws {
        let base = "stages:\n  - baseline\n"
        #expect(try problem(base + "  - prune: {method: wanda, start_epoch: 1}\n")
            == "r.yaml:3: stage 2 (prune): start_epoch applies only to schedule methods such as gradual; 'wanda' is a pruner")
        #expect(try problem(base + "  - prune: {method: gradual, fine_tune_epochs: 3, end_epoch: 3}\n")
            == "r.yaml:3: stage 2 (prune): end_epoch must be below fine_tune_epochs (3; epochs count from 0), got 3")
        #expect(try problem(base + "  - prune: {method: gradual, start_epoch: 2, end_epoch: 1}\n")
            == "r.yaml:3: stage 2 (prune): end_epoch must be ≥ start_epoch (2), got 1")
        #expect(try problem(base + "  - prune: {method: gradual, fine_tune: false}\n")
            == "r.yaml:3: stage 2 (prune): fine_tune must be true for the schedule method 'gradual': it prunes while fine-tuning")
        #expect(try problem(base + "  - prune: {method: gradual, frequency: 0}\n") == "r.yaml:3: stage 2 (prune): frequency must be positive, got 0")
    }

    @Test("impossible orders are refused: baseline not first, distill after prune or quantize, anything after quantize")
    func impossibleOrders() throws {
        #expect(try problem("stages:\n  - prune: {}\n  - baseline\n")
            == "r.yaml:2: stage 1 (prune): the first stage must be baseline (it trains the teacher every later stage starts from)")
        #expect(try problem("stages:\n  - baseline\n  - baseline\n") == "r.yaml:3: stage 2 (baseline): baseline can only be the first stage")
        #expect(try problem("stages:\n  - baseline\n  - prune: {}\n  - distill: {}\n")
            == "r.yaml:4: stage 3 (distill): distill must come before prune and quantize (stage 2 is prune): the student is trained from scratch or from the unpruned teacher")
        #expect(try problem("stages:\n  - baseline\n  - quantize: {method: int8-rows}\n  - distill: {}\n")
            == "r.yaml:4: stage 3 (distill): distill after quantize is impossible: quantize must be the last stage (stage 2 is quantize)")
        #expect(try problem("stages:\n  - baseline\n  - quantize: {method: int8-rows}\n  - prune: {}\n")
            == "r.yaml:4: stage 3 (prune): prune after quantize is impossible: quantized weights cannot be pruned and healed (stage 2 is quantize)")
        #expect(try problem("stages:\n  - baseline\n  - quantize: {method: int8-rows}\n  - quantize: {method: int8-rows}\n")
            == "r.yaml:4: stage 3 (quantize): a second quantize stage: a model is quantized once (stage 2 is quantize)")
        #expect(try problem("stages:\n  - baseline\n  - distill: {}\n  - distill: {}\n")
            == "r.yaml:4: stage 3 (distill): only one distill stage is supported (stage 2 is distill)")
        #expect(try problem("stages:\n  - baseline\n  - prune: {}\n  - prune: {method: gradual}\n  - quantize: {method: int8-rows}\n") == nil)
    }

    @Test("a malformed file is refused in one line: YAML syntax, duplicate keys, empty, no stages, not a list")
    func malformed() throws {
        let syntax = try #require(try problem("stages:\n  - prune: {sparsity: 0.3\n"))
        #expect(syntax.hasPrefix("r.yaml:3:"), "\(syntax)")
        #expect(syntax.contains("YAML syntax error"))
        let duplicate = try #require(try problem("stages:\n  - baseline\n  - prune: {sparsity: 0.3, sparsity: 0.5}\n"))
        #expect(duplicate == "r.yaml:3: duplicate key 'sparsity'")
        #expect(try problem("") == "r.yaml: the recipe is empty; it needs a 'stages:' list starting with baseline")
        #expect(try problem("name: x\n") == "r.yaml: the recipe has no 'stages:' list")
        #expect(try problem("stages: baseline\n") == "r.yaml:1: stages must be a list, e.g. '- baseline: {}'")
        #expect(try problem("stages: []\n") == "r.yaml: the recipe has no stages; it needs at least baseline")
        #expect(try problem("name: ../x\nstages: [baseline]\n")
            == "r.yaml:1: name must be letters, digits, '-', '_' or '.' (it becomes part of file names)")
        #expect(try problem("stages:\n  - {baseline: {}, prune: {}}\n")
            == "r.yaml:2: stage 1: expected one stage name with its options, e.g. '- prune: {method: wanda, sparsity: 0.3}'")
    }
}

@Suite("Recipes: built-in pipelines")
struct BuiltInRecipeTests {
    static let expected: [PipelineName: (stages: [String], tag: String)] = [
        .baseline: (["baseline"], "final_teacher"),
        .baseline_kd: (["baseline", "distill"], "final_student"),
        .baseline_prune: (["baseline", "prune"], "final_pruned_teacher"),
        .baseline_quant: (["baseline", "quantize"], "final_quantized_teacher"),
        .baseline_kd_prune: (["baseline", "distill", "prune"], "final_pruned_student"),
        .baseline_kd_quant: (["baseline", "distill", "quantize"], "final_quantized_student"),
        .baseline_prune_quant: (["baseline", "prune", "quantize"], "final_quantized_pruned_teacher"),
        .baseline_kd_prune_quant: (["baseline", "distill", "prune", "quantize"], "final_quantized_pruned_student"),
    ]

    @Test("every --pipeline name is a valid recipe with its stages in order and its final folder name",
          arguments: PipelineName.allCases)
    func pipelines(_ pipeline: PipelineName) throws {
        let recipe = try Recipe.builtIn(pipeline, arguments: ["--quant_method", "int8-rows"])
        let expected = try #require(Self.expected[pipeline])
        #expect(recipe.name == pipeline.rawValue)
        #expect(recipe.stages.map(\.name) == expected.stages)
        #expect(recipe.stageTag == expected.tag)
        try recipe.validate(methods: try RecipeTestCatalog.get())
    }

    @Test("the seed framework's options land in the stages")
    func optionsMapped() throws {
        let arguments = ["--kd_alpha", "0.5", "--kd_temperature=2", "--kd_method", "hidden", "--student_path", "/models/distilbert",
                         "--prune_method", "gradual", "--prune_schedule", "exponential", "--prune_sparsity", "0.6",
                         "--prune_layers", "encoder", "--prune_end_epoch", "1", "--fine_tune_epochs", "2",
                         "--quant_method", "int8-rows", "--quant_calibration_batches", "10"]
        let recipe = try Recipe.builtIn(.baseline_kd_prune_quant, arguments: arguments, methods: try RecipeTestCatalog.get())
        #expect(recipe.stages == [
            .baseline,
            .distill(DistillStage(alpha: 0.5, temperature: 2, method: .hidden, student: .path("/models/distilbert"))),
            .prune(PruneStage(method: "gradual", sparsity: 0.6, layers: .encoder, fineTuneEpochs: 2,
                              options: ["schedule": "exponential"], startEpoch: 0, endEpoch: 1, frequency: 100)),
            .quantize(QuantizeStage(method: "int8-rows", calibrationBatches: 10)),
        ])
        try recipe.validate(methods: try RecipeTestCatalog.get())
    }

    @Test("an impossible CLI value is refused naming the option, not a recipe key")
    func commandLineErrors() throws {
        let registry = try RecipeTestCatalog.get()
        func message(_ pipeline: PipelineName, _ arguments: [String]) -> String? {
            do {
                try Recipe.builtIn(pipeline, arguments: ["--quant_method", "int8-rows"] + arguments, methods: registry).validate(methods: registry)
                return nil
            } catch { return "\(error)" }
        }
        // Each value is checked where the flag is read, whatever the pipeline (as the seed does) …
        #expect(message(.baseline_prune, ["--prune_sparsity", "1.2"]) == "--prune_sparsity must be in [0, 1), got 1.2")
        #expect(message(.baseline, ["--kd_alpha", "-0.1"]) == "--kd_alpha must be in [0, 1], got -0.1")
        #expect(message(.baseline_kd, ["--kd_temperature", "0"]) == "--kd_temperature must be positive, got 0.0")
        #expect(message(.baseline_kd, ["--kd_temperature", "warm"]) == "--kd_temperature must be a number, got 'warm'")
        #expect(message(.baseline_quant, ["--quant_calibration_batches", "9223372036854775807"])
            == "--quant_calibration_batches must be at most 1000000, got 9223372036854775807")
        #expect(message(.baseline_prune, ["--prune_layers", "mlp"])
            == "--prune_layers must be one of all, linear, attention, ffn, encoder, embeddings, got 'mlp'")
        #expect(message(.baseline, ["--prune_sparsty", "0.3"]) == "unknown option '--prune_sparsty'")
        // … and against the methods for the stages the pipeline runs.
        #expect(message(.baseline_prune, ["--prune_option", "schedule=linear"])
            == "--pipeline baseline_prune: --prune_option: pruner method 'magnitude' has no option 'schedule' (declared: norm)")
        #expect(message(.baseline_prune, ["--prune_method", "obs"])
            == "--pipeline baseline_prune: --prune_method 'obs' is not a registered pruner or schedule method; known: gradual, magnitude, wanda")
        #expect(message(.baseline_quant, ["--quant_option", "bits=3"])
            == "--pipeline baseline_quant: --quant_option: quantizer method 'int8-rows' has no option 'bits' (it declares no options)")
        #expect(message(.baseline_kd, ["--student_init", "teacher", "--student_path", "/m"])
            == "--student_init and --student_path both choose the student; keep one")
        #expect(message(.baseline_kd, ["--student_layers", "0,2"]) == "--student_layers needs --student_init: teacher")
        #expect(message(.baseline_kd, ["--student_init", "teacher", "--student_layers", "2,0"])
            == "--pipeline baseline_kd: --student_layers must be teacher layer indices from 0, increasing, got [2, 0]")
        // Options of stages the pipeline does not run are checked, not looked at further.
        #expect(message(.baseline, ["--prune_method", "obs"]) == nil)
    }

    @Test("stage labels are unique: a method used twice gets a number")
    func labels() throws {
        let recipe = try Recipe.parse(yaml: "stages: [baseline, {prune: {sparsity: 0.2}}, {prune: {sparsity: 0.4}}, {prune: {method: wanda}}]\n", file: "l.yaml")
        #expect(recipe.stageLabels == ["baseline", "prune_magnitude", "prune_magnitude_2", "prune_wanda"])
        #expect((0..<4).map(recipe.modelTag(afterStage:)) == ["teacher", "pruned_teacher", "pruned_teacher", "pruned_teacher"])
        #expect(recipe.stageTag == "final_pruned_teacher")
    }
}
