import Foundation
import Testing
@testable import Host

/// Every stage option is declared once (Recipe/Stages/); these tests walk the declarations and check
/// that each option reaches the recipe reader, the command line, validation, provenance and `--help`
/// from there alone, so an option added to a declaration is covered without a line here.
@Suite("Stage options: one declaration each")
struct StageDeclarationTests {
    /// One option of one kind of stage, type-erased for the walk.
    struct Declared: CustomStringConvertible {
        let stage: String
        let key: String
        let flag: String?
        let kind: OptionKind
        let inRecipes: Bool
        let help: String
        let problem: (OptionValue) -> String?
        /// Builds the stage from these values (by key) as a recipe file would and reads the option back.
        let readBack: ([String: OptionValue]) throws -> OptionValue?
        /// The stage as provenance records it.
        let recorded: ([String: OptionValue]) throws -> [String: String]
        var description: String { "\(stage).\(key)" }
    }

    static func declared<Stage: StageDeclaration>(_: Stage.Type) -> [Declared] {
        Stage.options.map { option in
            let place = OptionPlace(name: { $0 }) { key, problem in RecipeError("\(key) \(problem)") }
            return Declared(stage: Stage.name, key: option.key, flag: option.flagName, kind: option.kind,
                            inRecipes: option.inRecipes, help: option.help, problem: option.problem(with:),
                            readBack: { option.read(try Stage.make($0, place: place)) },
                            recorded: { try Stage.make($0, place: place).recordedOptions })
        }
    }

    static var all: [Declared] { StageCatalog.kinds.flatMap { declared($0) } }

    /// The options' names (`prune.sparsity`), as test arguments.
    static func names(_ include: (Declared) -> Bool) -> [String] { all.filter(include).map(\.description) }

    static func option(_ name: String) throws -> Declared { try #require(all.first { $0.description == name }) }

    /// A value the option accepts, in both spellings: YAML and command line.
    static func sample(_ option: Declared) -> (value: OptionValue, yaml: String, text: String) {
        switch option.kind {
        case .number: return (.number(0.25), "0.25", "0.25")
        case .integer(let minimum, _): return (.integer(minimum + 1), "\(minimum + 1)", "\(minimum + 1)")
        case .flag: return (.flag(false), "false", "false")
        case .choice(let names): return (.text(names.last ?? ""), names.last ?? "", names.last ?? "")
        case .name:
            let name = ["teacher", "some-name"].first { option.problem(.text($0)) == nil } ?? "some-name"
            return (.text(name), name, name)
        case .integerList: return (.integers([0, 2]), "[0, 2]", "0,2")
        case .methodOptions: return (.pairs(["group_size": "32"]), "{group_size: 32}", "group_size=32")
        }
    }

    /// A value the option's kind refuses, if it has a range.
    static func outOfRange(_ option: Declared) -> (yaml: String, text: String)? {
        switch option.kind {
        case .number: ("-1.5", "-1.5")
        case .integer(let minimum, let maximum): minimum > Int.min ? ("\(minimum - 1)", "\(minimum - 1)") : ("\(maximum)1", "\(maximum)1")
        case .choice: ("no-such-choice", "no-such-choice")
        default: nil
        }
    }

    /// Options a key needs beside it (student_layers goes with student_init).
    static func companions(_ option: Declared) -> [String: (value: OptionValue, yaml: String)] {
        option.key == "student_layers" ? ["student_init": (.text("teacher"), "teacher")] : [:]
    }

    @Test("every option is read from a recipe file with its kind and lands in the stage", arguments: names(\.inRecipes))
    func recipeFile(_ name: String) throws {
        let option = try Self.option(name)
        let sample = Self.sample(option)
        let body = ([(option.key, sample.yaml)] + Self.companions(option).map { ($0.key, $0.value.yaml) })
            .map { "\($0.0): \($0.1)" }.joined(separator: ", ")
        let yaml = option.stage == BaselineSettings.name ? "stages:\n  - baseline\n"
            : "stages:\n  - baseline\n  - \(option.stage): {\(body)}\n"
        let recipe = try Recipe.parse(yaml: yaml, file: "r.yaml")
        let stage = try #require(recipe.stages.last)
        #expect(Provenance.options(of: stage, method: nil)[option.key] == "\(sample.value)", "provenance records \(option)")
        var values = [option.key: sample.value]
        for (key, companion) in Self.companions(option) { values[key] = companion.value }
        #expect(try option.readBack(values) == sample.value)
        #expect(try option.recorded(values)[option.key] == "\(sample.value)")
    }

    @Test("every flag is read from the command line into its stage's key", arguments: names { $0.flag != nil })
    func commandLine(_ name: String) throws {
        let option = try Self.option(name)
        let flag = try #require(option.flag)
        let sample = Self.sample(option)
        let arguments = option.kind == .flag ? (sample.value == .flag(false) ? ["--no_" + flag.dropFirst(2)] : [flag])
                                             : [flag, sample.text]
        let given = try StageArguments(arguments).values
        #expect(given[option.stage]?[option.key] == sample.value, "\(arguments)")
        let inline = option.kind == .flag ? arguments : ["\(flag)=\(sample.text)"]
        #expect(try StageArguments(inline).values[option.stage]?[option.key] == sample.value, "\(inline)")
    }

    @Test("a value out of an option's range is refused in one line, in a recipe and on the command line",
          arguments: names { outOfRange($0) != nil })
    func refusedOutOfRange(_ name: String) throws {
        let option = try Self.option(name)
        let bad = try #require(Self.outOfRange(option))
        if let flag = option.flag {
            do {
                _ = try StageArguments([flag, bad.text])
                Issue.record("\(flag) \(bad.text) accepted")
            } catch {
                let message = RunCommand.message(for: error)
                #expect(message.hasPrefix(flag) && !message.contains("\n"), "\(message)")
            }
        }
        if option.inRecipes {
            let yaml = "stages:\n  - baseline\n  - \(option.stage): {\(option.key): \(bad.yaml)}\n"
            #expect(throws: RecipeError.self, "\(option) = \(bad.yaml)") { try Recipe.parse(yaml: yaml, file: "r.yaml") }
            do { _ = try Recipe.parse(yaml: yaml, file: "r.yaml") } catch let error as RecipeError {
                #expect(error.message.hasPrefix("r.yaml:3: stage 2 (\(option.stage)): \(option.key) "), "\(error.message)")
            }
        }
    }

    @Test("run --help lists every flag with its help text, grouped by stage")
    func help() {
        let help = RunCommand.helpMessage(columns: 10_000)
        for option in Self.all {
            guard let flag = option.flag else { continue }
            #expect(help.contains(flag), "\(flag) missing from --help")
            #expect(help.contains(option.help), "the help of \(flag) missing from --help")
        }
        for kind in StageCatalog.kinds where !StageArguments.allFlags.filter({ $0.stage == kind.name }).isEmpty {
            #expect(help.contains("\(kind.name.uppercased()) STAGE OPTIONS"), "\(kind.name)")
        }
    }

    @Test("a recipe file lists exactly the declared keys as known; an unknown stage is refused in one line")
    func knownKeys() throws {
        for kind in StageCatalog.kinds where kind.name != BaselineSettings.name {
            let keys = Self.all.filter { $0.stage == kind.name && $0.inRecipes }.map(\.key)
            do {
                _ = try Recipe.parse(yaml: "stages:\n  - baseline\n  - \(kind.name): {no_such_key: 1}\n", file: "r.yaml")
                Issue.record("\(kind.name): an unknown key was accepted")
            } catch let error as RecipeError {
                #expect(error.message.hasSuffix("unknown key 'no_such_key' (known: \(keys.joined(separator: ", ")))"), "\(error.message)")
            }
        }
        #expect(throws: RecipeError("r.yaml:3: stage 2: unknown stage 'compress' (known: \(StageCatalog.kinds.map { $0.name }.joined(separator: ", ")))")) {
            try Recipe.parse(yaml: "stages:\n  - baseline\n  - compress: {}\n", file: "r.yaml")
        }
        #expect(throws: (any Error).self) { try StageArguments(["--compress_level", "3"]) }
    }

    @Test("the command line and a recipe with the same values make the same stages")
    func sameStages() throws {
        let registry = try RecipeTestCatalog.get()
        let fromFlags = try Recipe.builtIn(.baseline_kd_prune_quant, arguments: [
            "--kd_alpha", "0.4", "--kd_method", "multi_level", "--student_hidden_size", "64",
            "--prune_method", "wanda", "--prune_sparsity", "0.3", "--prune_layers", "ffn", "--calib_samples", "64",
            "--no_fine_tune_after_prune", "--fine_tune_epochs", "0",
            "--quant_method", "int8-rows", "--quant_calibration_batches", "4"], methods: registry)
        let fromFile = try Recipe.parse(yaml: """
            stages:
              - baseline
              - distill: {alpha: 0.4, method: multi_level, student_hidden_size: 64}
              - prune: {method: wanda, sparsity: 0.3, layers: ffn, calib_samples: 64, fine_tune: false, fine_tune_epochs: 0}
              - quantize: {method: int8-rows, calibration_batches: 4}
            """, file: "same.yaml")
        #expect(fromFlags.stages == fromFile.stages)
        try fromFlags.validate(methods: registry)
        try fromFile.validate(methods: registry)
    }
}
