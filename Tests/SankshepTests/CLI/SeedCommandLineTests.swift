import Foundation
import Testing
@testable import Host

/// The seed framework's `python main.py` options, as its option table lists them: in one place, so
/// the tests below can check that every one of them is used at least once.
enum SeedOptions {
    static let all = [
        "--pipeline", "--batch", "--lr", "--epochs", "--dataset_path", "--max_length", "--num_folds", "--seed",
        "--stratification_type", "--data_fraction", "--skip_baseline", "--teacher_checkpoint", "--model_path",
        "--freeze_base", "--dropout", "--weight_decay", "--warmup_ratio", "--gradient_clip_norm",
        "--early_stopping_patience", "--use_class_weights", "--scheduler_type", "--loss_type", "--pooling_type",
        "--student_path", "--student_hidden_size", "--kd_alpha", "--kd_temperature", "--kd_method",
        "--hidden_loss_weight", "--attention_loss_weight", "--prune_method", "--prune_sparsity", "--prune_schedule",
        "--prune_start_epoch", "--prune_end_epoch", "--prune_frequency", "--prune_layers", "--calib_samples",
        "--fine_tune_after_prune", "--no_fine_tune_after_prune", "--fine_tune_epochs", "--quant_method",
        "--quant_dtype", "--quant_calibration_batches", "--output_dir", "--save_huggingface", "--cache_dir",
    ]
    /// The seed's MLflow options, which come with Sankshep's MLflow tracking.
    static let mlflow = ["--author_name", "--mlflow_experiment_name"]
}

/// Seed-style command lines, as its users write them, shortened to a slice of the data for speed.
/// `{out}` and `{cache}` are the test's folders.
enum SeedCommandLines {
    static let data = Fixtures.bundledData.path
    static let slice = ["--data_fraction", "0.03", "--num_folds", "2", "--threads", "1"]

    /// The full pipeline, WANDA at 70 % and INT4 (epochs and fine-tuning shortened).
    static let fullPipeline = [
        "--pipeline", "baseline_kd_prune_quant", "--dataset_path", data, "--prune_method", "wanda",
        "--prune_sparsity", "0.7", "--quant_method", "int4", "--quant_dtype", "int4", "--epochs", "1",
        "--kd_alpha", "0.7", "--kd_temperature", "4.0", "--kd_method", "multi_level", "--hidden_loss_weight", "0.3",
        "--attention_loss_weight", "0.2", "--student_hidden_size", "256", "--prune_layers", "all",
        "--calib_samples", "64", "--fine_tune_after_prune", "--fine_tune_epochs", "1", "--save_huggingface",
        "--author_name", "someone", "--mlflow_experiment_name", "Bangla-HateSpeech-Detection",
    ] + slice

    /// A baseline alone (the seed's users run it with `--epochs 15 --num_folds 5`), every training option set.
    static let baseline = [
        "--pipeline", "baseline", "--dataset_path", data, "--epochs", "1", "--batch", "16", "--lr", "1e-3",
        "--max_length", "64", "--seed", "7", "--stratification_type", "none", "--dropout", "0.2",
        "--weight_decay", "0.0", "--warmup_ratio", "1.0", "--gradient_clip_norm", "0.5",
        "--early_stopping_patience", "2", "--use_class_weights", "--scheduler_type", "cosine", "--loss_type", "focal",
        "--pooling_type", "mean", "--freeze_base",
    ] + slice

    /// The seed's own checkpoint as teacher, structured pruning (heads and FFN neurons at once), static INT8.
    static let seedTeacherStructured = [
        "--pipeline", "baseline_prune_quant", "--dataset_path", data, "--skip_baseline",
        "--teacher_checkpoint", Fixtures.url("seed-checkpoint/best_model_fold0.pt").path,
        "--model_path", Fixtures.url("seed-checkpoint").path, "--max_length", "64",
        "--prune_method", "structured", "--prune_layers", "all", "--prune_sparsity", "0.5",
        "--no_fine_tune_after_prune", "--quant_method", "static", "--quant_dtype", "int8",
        "--quant_calibration_batches", "2",
    ] + slice

    /// A Hugging Face folder as teacher, gradual pruning with the seed's schedule options.
    static let folderTeacherGradual = [
        "--pipeline", "baseline_prune", "--dataset_path", data, "--skip_baseline",
        "--teacher_checkpoint", Fixtures.url("bert-tiny").path, "--max_length", "64", "--batch", "16",
        "--prune_method", "gradual", "--prune_schedule", "exponential", "--prune_start_epoch", "0",
        "--prune_end_epoch", "10", "--prune_frequency", "3", "--prune_layers", "encoder", "--prune_sparsity", "0.5",
        "--fine_tune_epochs", "2", "--lr", "1e-3",
    ] + slice

    /// Options whose effect is checked elsewhere, here parsed only (a hub student cannot be downloaded).
    static let studentFolder = [
        "--pipeline", "baseline_kd", "--dataset_path", data, "--student_path", Fixtures.url("distilbert-tiny").path,
        "--output_dir", "./outputs", "--cache_dir", "./cache",
    ]

    static let all = [fullPipeline, baseline, seedTeacherStructured, folderTeacherGradual, studentFolder]

    static func run(_ arguments: [String], in folder: URL) throws {
        let command = try RunCommand.parseAsRoot(arguments + ["--output_dir", folder.appendingPathComponent("out").path,
                                                              "--cache_dir", folder.appendingPathComponent("cache").path])
        try #require(command as? RunCommand).run()
    }
}

@Suite("Seed command lines run through sankshep run", .serialized)
struct SeedCommandLineTests {
    @Test("the command lines below use every option of the seed's table at least once")
    func everyOptionUsed() {
        let used = Set(SeedCommandLines.all.flatMap { $0 } + SeedCommandLines.studentFolder)
        let missing = (SeedOptions.all + SeedOptions.mlflow).filter { !used.contains($0) }
        #expect(missing.isEmpty, "not exercised: \(missing)")
    }

    @Test("run --help names every option of the seed's table")
    func helpNamesEveryOption() {
        let help = RunCommand.helpMessage(columns: 400)
        for option in SeedOptions.all { #expect(help.contains(option), "\(option) missing from --help") }
        #expect(help.contains("--data_path"), "the old name stays as an alias")
    }

    @Test("run --help names the seed's MLflow options")
    func helpNamesMLflowOptions() {
        let help = RunCommand.helpMessage(columns: 400)
        for option in SeedOptions.mlflow { #expect(help.contains(option), "\(option) missing from --help") }
    }

    @Test("a seed command line with the MLflow options starts")
    func mlflowOptionsParse() throws {
        let command = try #require(try RunCommand.parseAsRoot(SeedCommandLines.fullPipeline
            + ["--author_name", "someone", "--mlflow_experiment_name", "Bangla-HateSpeech-Detection"]) as? RunCommand)
        #expect(command.pipeline == .baseline_kd_prune_quant)
    }

    @Test("the full pipeline with WANDA at 70 % and INT4 runs every stage and writes the final folder and the folds")
    func fullPipeline() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try SeedCommandLines.run(SeedCommandLines.fullPipeline, in: folder)
        let out = folder.appendingPathComponent("out")
        let summary = try PipelineSummary.read(from: out.appendingPathComponent("pipeline_summary_baseline_kd_prune_quant.csv"))
        #expect(summary.rows.map(\.stage) == ["baseline", "distill", "prune_wanda", "quantize_int4"])
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("final_quantized_pruned_student/config.json").path))
        let folds = try String(contentsOf: out.appendingPathComponent("folds_baseline_kd_prune_quant.csv"), encoding: .utf8)
        #expect(folds.hasPrefix("row,fold\n"))
    }

    @Test("a baseline with every training option runs; a rerun reads the tokenized data from the cache and writes the same folds")
    func baselineWithTrainingOptions() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try SeedCommandLines.run(SeedCommandLines.baseline, in: folder)
        let out = folder.appendingPathComponent("out")
        let command = try #require(try RunCommand.parseAsRoot(SeedCommandLines.baseline) as? RunCommand)
        #expect(command.training.warmupRatio == 1 && command.training.poolingType == .mean && command.training.freezeBase)
        let fold = try String(contentsOf: out.appendingPathComponent("fold_summary_baseline.csv"), encoding: .utf8)
        #expect(fold.split(separator: "\n").count == 3)
        let cache = folder.appendingPathComponent("cache")
        let cacheFiles = try FileManager.default.contentsOfDirectory(atPath: cache.path)
        #expect(cacheFiles.count == 1)
        let cacheFile = cache.appendingPathComponent(try #require(cacheFiles.first))
        let written = try FileManager.default.attributesOfItem(atPath: cacheFile.path)[.modificationDate] as? Date
        let folds = try Data(contentsOf: out.appendingPathComponent("folds_baseline.csv"))

        try SeedCommandLines.run(SeedCommandLines.baseline + ["--resume"], in: folder)
        #expect(try FileManager.default.contentsOfDirectory(atPath: cache.path) == cacheFiles)
        #expect(try FileManager.default.attributesOfItem(atPath: cacheFile.path)[.modificationDate] as? Date == written,
                "the cache file was read, not written again")
        #expect(try Data(contentsOf: out.appendingPathComponent("folds_baseline.csv")) == folds)
    }

    @Test("--skip_baseline with a seed best_model_*.pt and --model_path trains no baseline; structured pruning removes heads and FFN neurons at once")
    func seedCheckpointTeacherWithStructuredPruning() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try SeedCommandLines.run(SeedCommandLines.seedTeacherStructured, in: folder)
        let out = folder.appendingPathComponent("out")
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("fold_summary_baseline_prune_quant.csv").path),
                "no baseline fold was trained")
        let summary = try PipelineSummary.read(from: out.appendingPathComponent("pipeline_summary_baseline_prune_quant.csv"))
        #expect(summary.rows.map(\.stage) == ["baseline", "prune_magnitude", "quantize_static"])
        // The teacher is the checkpoint's weights, its head included (not a fresh one).
        let teacher = try Classifier.load(from: out.appendingPathComponent("best_model_baseline_prune_quant"))
        let seed = try StateDict.read(Fixtures.url("seed-checkpoint/best_model_fold0.pt"))
        #expect(teacher.network.store.tensor("classifier.3.weight").scalars == seed["classifier.3.weight"]?.scalars)
        let pruned = try ModelConfig.read(out.appendingPathComponent("final_quantized_pruned_teacher/config.json"))
        #expect(pruned.intermediateSize == 32, "half of the 64 FFN neurons are gone")
        #expect(pruned.prunedHeads.values.map(\.count) == [2, 2], "two of the four heads of each layer are gone")
        // The held-out rows are fold 1's validation split.
        let folds = try String(contentsOf: out.appendingPathComponent("folds_baseline_prune_quant.csv"), encoding: .utf8)
        let inFold1 = folds.split(separator: "\n").dropFirst().filter { $0.hasSuffix(",1") }.count
        let provenance = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("final_quantized_pruned_teacher/provenance.json"))) as? [String: Any]
        #expect(provenance?["heldOutRows"] as? Int == inFold1)
        #expect(provenance?["teacherFold"] as? Int == 1)
    }

    @Test("--skip_baseline with a Hugging Face folder as teacher runs gradual pruning with the seed's schedule options")
    func folderTeacherWithGradualPruning() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try SeedCommandLines.run(SeedCommandLines.folderTeacherGradual, in: folder)
        let out = folder.appendingPathComponent("out")
        let summary = try PipelineSummary.read(from: out.appendingPathComponent("pipeline_summary_baseline_prune.csv"))
        #expect(summary.rows.map(\.stage) == ["baseline", "prune_gradual"])
        // The schedule reached the final sparsity in the encoder's linear layers.
        let sparsity = try String(contentsOf: out.appendingPathComponent("sparsity_baseline_prune.csv"), encoding: .utf8)
        let total = try #require(sparsity.split(separator: "\n").last { $0.hasPrefix("total,") })
        #expect(total.hasSuffix(",0.5000"), "\(total)")
    }

    @Test("--skip_baseline with a .safetensors of the teacher preset's architecture takes its weights")
    func presetWeightsTeacher() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let preset = try #require(ModelPreset.named("teacher-small"))
        let saved = try Classifier.fromPreset(preset, tokenizerDirectory: Fixtures.bundledTokenizer, dropout: 0.1, pooling: .cls, seed: 5)
        try saved.save(to: folder.appendingPathComponent("trained"))
        let weights = folder.appendingPathComponent("trained/model.safetensors")
        try SeedCommandLines.run(["--pipeline", "baseline", "--dataset_path", SeedCommandLines.data, "--skip_baseline",
                                  "--teacher_checkpoint", weights.path] + SeedCommandLines.slice, in: folder)
        let teacher = try Classifier.load(from: folder.appendingPathComponent("out/best_model_baseline"))
        #expect(teacher.namedTensors().map(\.tensor) == saved.namedTensors().map(\.tensor))
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("out/final_teacher/config.json").path))
    }

    @Test("options checked by other tests parse into their values")
    func parsedOnly() throws {
        let command = try #require(try RunCommand.parseAsRoot(SeedCommandLines.studentFolder) as? RunCommand)
        #expect(try StageArguments(command.stageFlags).values["distill"]?["student_path"] == .text(Fixtures.url("distilbert-tiny").path))
        #expect(command.data.dataPath == SeedCommandLines.data)
        #expect(command.output.cacheDir == "./cache" && command.output.outputDir == "./outputs")
        let old = try #require(try RunCommand.parseAsRoot(["--data_path", SeedCommandLines.data]) as? RunCommand)
        #expect(old.data.dataPath == SeedCommandLines.data)
    }
}

@Suite("Seed option values")
struct SeedOptionValueTests {
    static func refusal(_ arguments: [String]) -> String? {
        do {
            _ = try RunCommand.parseAsRoot(arguments)
            return nil
        } catch {
            return RunCommand.message(for: error)
        }
    }

    /// The values the seed refuses (its ranges and choices), and Sankshep's own checks of the same options.
    static let impossible: [(arguments: [String], option: String)] = [
        (["--pipeline", "baseline_distill"], "pipeline"), (["--batch", "0"], "--batch"), (["--lr", "0"], "--lr"),
        (["--lr", "-1e-5"], "--lr"), (["--epochs", "0"], "--epochs"), (["--num_folds", "1"], "--num_folds"),
        (["--max_length", "2"], "--max_length"), (["--stratification_type", "label"], "stratification_type"),
        (["--data_fraction", "0"], "--data_fraction"), (["--data_fraction", "1.01"], "--data_fraction"),
        (["--dropout", "1"], "--dropout"), (["--dropout", "-0.1"], "--dropout"),
        (["--warmup_ratio", "1.5"], "--warmup_ratio"), (["--warmup_ratio", "-0.1"], "--warmup_ratio"),
        (["--weight_decay", "-1"], "--weight_decay"), (["--gradient_clip_norm", "-1"], "--gradient_clip_norm"),
        (["--early_stopping_patience", "0"], "--early_stopping_patience"), (["--scheduler_type", "step"], "scheduler_type"),
        (["--loss_type", "hinge"], "loss_type"), (["--pooling_type", "sum"], "pooling_type"),
        (["--kd_alpha", "1.1"], "--kd_alpha"), (["--kd_alpha", "-0.1"], "--kd_alpha"),
        (["--kd_temperature", "0"], "--kd_temperature"), (["--kd_method", "feature"], "kd_method"),
        (["--hidden_loss_weight", "-1"], "--hidden_loss_weight"), (["--attention_loss_weight", "-1"], "--attention_loss_weight"),
        (["--student_hidden_size", "0"], "--student_hidden_size"),
        (["--prune_sparsity", "1"], "--prune_sparsity"), (["--prune_sparsity", "-0.1"], "--prune_sparsity"),
        (["--prune_schedule", "cosine"], "prune_schedule"), (["--prune_layers", "heads"], "prune_layers"),
        (["--prune_start_epoch", "-1"], "--prune_start_epoch"), (["--prune_start_epoch", "11"], "--prune_end_epoch"),
        (["--prune_frequency", "0"], "--prune_frequency"), (["--calib_samples", "0"], "--calib_samples"),
        (["--fine_tune_epochs", "0"], "--fine_tune_epochs"), (["--quant_method", "qat"], "quantization-aware training"),
        (["--quant_dtype", "int2"], "quant_dtype"), (["--quant_method", "int4", "--quant_dtype", "int8"], "--quant_dtype"),
        (["--quant_method", "dynamic", "--quant_dtype", "fp16"], "--quant_dtype"),
        (["--quant_method", "fp16", "--quant_dtype", "int4"], "--quant_dtype"),
        (["--quant_calibration_batches", "0"], "--quant_calibration_batches"),
        (["--skip_baseline"], "--teacher_checkpoint"),
        (["--teacher_checkpoint", Fixtures.url("seed-checkpoint/best_model_fold0.pt").path], "--skip_baseline"),
        (["--skip_baseline", "--teacher_checkpoint", "no/such/best_model_fold0.pt"], "no such file"),
    ]

    @Test("an impossible value is refused in one line naming the option", arguments: impossible)
    func refused(_ arguments: [String], option: String) {
        let message = Self.refusal(arguments)
        #expect(message?.contains(option) == true, "\(arguments): \(message ?? "accepted")")
        #expect(message?.contains("\n") == false, "\(message ?? "")")
    }

    @Test("a refusal that needs the plugins comes in one line before any output is written",
          arguments: [["--pipeline", "baseline_prune", "--prune_method", "structured", "--prune_layers", "embeddings"],
                      ["--pipeline", "baseline_prune", "--prune_option", "structure=both", "--prune_layers", "ffn"],
                      ["--pipeline", "baseline_prune", "--prune_method", "obs"]])
    func refusedBeforeWork(_ arguments: [String]) throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let out = folder.appendingPathComponent("out")
        // Refused where the flags are read (the plugins' own names aside), or once the plugins are loaded.
        do {
            let command = try #require(try RunCommand.parseAsRoot(arguments + ["--output_dir", out.path]) as? RunCommand)
            try command.run()
            Issue.record("\(arguments) ran")
        } catch {
            let message = RunCommand.message(for: error)
            #expect(message.contains("--prune_"), "\(message)")
            #expect(!message.contains("\n"), "\(message)")
        }
        #expect(!FileManager.default.fileExists(atPath: out.path))
    }

    @Test("the ends of the seed's ranges are accepted",
          arguments: [["--warmup_ratio", "1"], ["--warmup_ratio", "0"], ["--kd_alpha", "0"], ["--kd_alpha", "1"],
                      ["--prune_sparsity", "0"], ["--data_fraction", "1"], ["--dropout", "0"],
                      ["--quant_method", "static", "--quant_dtype", "int8"], ["--quant_method", "dynamic", "--quant_dtype", "int8"],
                      ["--quant_method", "int4", "--quant_dtype", "int4"], ["--quant_method", "fp16", "--quant_dtype", "fp16"],
                      ["--no_fine_tune_after_prune", "--fine_tune_epochs", "0"], ["--save_huggingface"]])
    func accepted(_ arguments: [String]) {
        #expect(Self.refusal(arguments) == nil, "\(arguments)")
    }

    @Test("the seed's defaults are Sankshep's")
    func defaults() throws {
        let command = try #require(try RunCommand.parseAsRoot([]) as? RunCommand)
        #expect(command.pipeline == .baseline)
        #expect(command.data.maxLength == 128 && command.data.dataFraction == 1)
        #expect(command.training.numFolds == 5 && command.training.seed == 42 && command.training.stratificationType == .binary)
        #expect(command.training.dropout == 0.1 && command.training.weightDecay == 0.01 && command.training.warmupRatio == 0.1)
        #expect(command.training.gradientClipNorm == 1 && command.training.earlyStoppingPatience == 5)
        #expect(command.training.schedulerType == .linear && command.training.lossType == .bce && command.training.poolingType == .cls)
        #expect(!command.training.freezeBase && !command.training.useClassWeights && !command.model.skipBaseline)
        let stages = try Recipe.builtIn(.baseline_kd_prune_quant, methods: try PluginTestSupport.builtInRegistry()).stages
        #expect(stages[1].settings(as: DistillStage.self) == DistillStage(alpha: 0.7, temperature: 4, method: .logit, hiddenLossWeight: 0.3,
                                                                          attentionLossWeight: 0.2, studentHiddenSize: 256))
        #expect(stages[2].settings(as: PruneStage.self) == PruneStage(method: "magnitude", sparsity: 0.5, layers: .all, calibSamples: 512,
                                                                      fineTune: true, fineTuneEpochs: 3))
        #expect(stages[3].settings(as: QuantizeStage.self) == QuantizeStage(method: "dynamic", calibrationBatches: 100))
        let gradual = try Recipe.builtIn(.baseline_prune, arguments: ["--prune_method", "gradual", "--fine_tune_epochs", "12"],
                                         methods: try PluginTestSupport.builtInRegistry()).stages[1].settings(as: PruneStage.self)
        #expect(try #require(gradual).scheduleWindow == (0, 10, 100), "the seed's schedule window: epochs 0 to 10, every 100 steps")
        #expect(command.output.outputDir == "./outputs" && command.output.cacheDir == "./cache")
    }
}

@Suite("Seed stage options map onto Sankshep's methods")
struct SeedStageOptionTests {
    /// The prune (or quantize) stage `sankshep run` builds from these flags.
    static func prune(_ arguments: [String]) throws -> PruneStage {
        let registry = try PluginTestSupport.builtInRegistry()
        let recipe = try Recipe.builtIn(.baseline_prune, arguments: arguments, methods: registry)
        try recipe.validate(methods: registry)
        return try #require(recipe.stages[1].settings(as: PruneStage.self))
    }

    static func quantize(_ arguments: [String]) throws -> QuantizeStage {
        try #require(try Recipe.builtIn(.baseline_quant, arguments: arguments).stages[1].settings(as: QuantizeStage.self))
    }

    @Test("--quant_dtype alone chooses the quantizer", arguments: [("int8", "dynamic"), ("int4", "int4"), ("fp16", "fp16")])
    func dtypeChoosesMethod(_ dtype: String, method: String) throws {
        #expect(try Self.quantize(["--quant_dtype", dtype]).method == method)
    }

    @Test("--prune_method structured removes heads, FFN neurons or both, as --prune_layers says",
          arguments: [("attention", "heads", PruneLayers.attention), ("ffn", "ffn", .ffn), ("all", "both", .encoder),
                      ("encoder", "both", .encoder)])
    func structured(_ layers: String, structure: String, selected: PruneLayers) throws {
        let stage = try Self.prune(["--prune_method", "structured", "--prune_layers", layers])
        #expect(stage.method == "magnitude")
        #expect(stage.options["structure"] == structure)
        #expect(stage.layers == selected)
    }

    @Test("--prune_method structured refuses layers it cannot remove whole and a contradicting structure option")
    func structuredRefusals() {
        for arguments in [["--prune_method", "structured", "--prune_layers", "embeddings"],
                          ["--prune_method", "structured", "--prune_layers", "ffn", "--prune_option", "structure=heads"]] {
            #expect(throws: RecipeError.self, "\(arguments)") { try Self.prune(arguments) }
        }
    }

    @Test("gradual pruning takes the seed's schedule defaults; the end epoch past the fine-tuning is its last epoch")
    func gradualDefaults() throws {
        let stage = try Self.prune(["--prune_method", "gradual"])
        #expect(stage.options["schedule"] == "cubic" && stage.startEpoch == 0 && stage.frequency == 100)
        #expect(stage.endEpoch == 2, "the seed's 10, reached where the last of the 3 fine-tuning epochs starts")
        let within = try Self.prune(["--prune_method", "gradual", "--fine_tune_epochs", "6", "--prune_end_epoch", "4"])
        #expect(within.endEpoch == 4)
    }

    @Test("a one-shot pruner ignores the schedule options, as the seed does")
    func oneShotIgnoresSchedule() throws {
        let stage = try Self.prune(["--prune_method", "wanda", "--prune_schedule", "linear", "--prune_start_epoch", "0",
                                    "--prune_end_epoch", "10", "--prune_frequency", "100"])
        #expect(stage.options["schedule"] == nil && stage.startEpoch == nil && stage.endEpoch == nil && stage.frequency == nil)
    }
}
