/// Where a distilled student's weights come from.
enum StudentSource: Sendable, Equatable {
    /// A built-in preset, randomly initialised (`student_preset`).
    case preset(String)
    /// A Hugging Face folder (`student_path`).
    case path(String)
    /// The teacher's embeddings and these of its encoder layers, as DistilBERT was made
    /// (`student_init: teacher` with `student_layers`); nil takes every other layer (0, 2, 4, …).
    case teacherLayers([Int]?)
}

/// `distill`: train a student on the teacher's cached outputs (Pipeline/Distillation).
struct DistillStage: StageDeclaration {
    static let defaultStudentPreset = "student-small"

    /// Weight of the soft (teacher) loss: loss = α·T²·soft + (1−α)·hard.
    var alpha = 0.7
    var temperature = 4.0
    /// The soft loss: the tempered binary KL, or MSE on the raw logits.
    var softLoss: SoftLoss = .binaryKL
    var method: KDMethod = .logit
    var hiddenLossWeight = 0.3
    var attentionLossWeight = 0.2
    var student: StudentSource = .preset(DistillStage.defaultStudentPreset)
    /// Width of the seed head's hidden layer (Linear(H, n) → ReLU → Linear(n, 1)) when that head is used.
    var studentHiddenSize = 256

    static let name = "distill"
    static let summary = "train a smaller student on the teacher's outputs"
    static let pipelineWord: String? = "_kd"
    static let modelWord: ModelWord? = .noun("student")

    static var options: [StageOption<Self>] {
        [
            .number("alpha", flag: "kd_alpha", \.alpha, .unit, help: "Weight of the soft (teacher) loss: α·T²·soft + (1−α)·hard."),
            .number("temperature", flag: "kd_temperature", \.temperature, .positive, help: "Distillation temperature T."),
            .choice("method", flag: "kd_method", \.method, help: "What is distilled: logit, hidden, attention or multi_level."),
            .choice("soft_loss", flag: "kd_soft_loss", \.softLoss,
                    help: "The soft loss: kl (KL divergence of the tempered sigmoids, scaled by T²) or mse (mean squared error of the raw logits)."),
            .number("hidden_loss_weight", flag: "hidden_loss_weight", \.hiddenLossWeight, .nonNegative,
                    help: "Weight of the hidden-state loss (hidden, multi_level)."),
            .number("attention_loss_weight", flag: "attention_loss_weight", \.attentionLossWeight, .nonNegative,
                    help: "Weight of the attention loss (attention, multi_level)."),
            StageOption(key: "student_preset", flag: "student_preset", kind: .name,
                        help: "Built-in student preset when no student path is given.",
                        read: { if case .preset(let name) = $0.student { .text(name) } else { nil } },
                        write: { if case .text(let name) = $1 { $0.student = .preset(name) } }),
            StageOption(key: "student_path", flag: "student_path", kind: .name,
                        help: "Hugging Face folder of the student (e.g. a local distilbert-base-multilingual-cased); default: the built-in student preset (the seed's default is that hub model, which needs downloading).",
                        read: { if case .path(let path) = $0.student { .text(path) } else { nil } },
                        write: { if case .text(let path) = $1 { $0.student = .path(path) } }),
            StageOption(key: "student_init", flag: "student_init", kind: .name,
                        help: "teacher: build the student from the teacher's own layers (see student layers), sharing its tokenizer.",
                        read: { if case .teacherLayers = $0.student { .text("teacher") } else { nil } },
                        write: { stage, _ in
                            if case .teacherLayers = stage.student { return }
                            stage.student = .teacherLayers(nil)
                        })
                .only(rule: { value in
                    value == .text("teacher") ? nil
                        : "must be teacher (a preset or a folder is chosen with student_preset or student_path), got '\(value)'"
                }),
            StageOption(key: "student_layers", flag: "student_layers", kind: .integerList,
                        help: "Teacher layers the student keeps with student init teacher, comma-separated (default: every other layer).",
                        read: { if case .teacherLayers(let layers?) = $0.student { .integers(layers) } else { nil } },
                        write: { if case .integers(let layers) = $1 { $0.student = .teacherLayers(layers) } }),
            .integer("student_hidden_size", flag: "student_hidden_size", \.studentHiddenSize, minimum: 1,
                     help: "Width of the student's MLP head when the seed framework's head is used."),
        ]
    }

    /// One of student_preset, student_path and student_init chooses the student; student_layers goes
    /// with student_init.
    mutating func finish(given: Set<String>, place: OptionPlace) throws {
        let chosen = ["student_preset", "student_path", "student_init"].filter(given.contains)
        if chosen.count > 1 {
            throw place.fail(chosen[1], "and \(place.name(chosen[0])) both choose the student; keep one")
        }
        if given.contains("student_layers"), !given.contains("student_init") {
            throw place.fail("student_layers", "needs \(place.name("student_init")): teacher")
        }
    }

    /// Once, before any prune stage (and, as every stage, before quantize).
    static func placementProblem(after earlier: [String]) -> String? {
        if let previous = earlier.firstIndex(of: name) {
            return "only one distill stage is supported (stage \(previous + 1) is distill)"
        }
        if let pruned = earlier.firstIndex(of: PruneStage.name) {
            return "distill must come before prune and quantize (stage \(pruned + 1) is prune): the student is trained from scratch or from the unpruned teacher"
        }
        return nil
    }

    func validate(_ check: StageCheck) throws -> ResolvedMethod? {
        if case .teacherLayers(let layers?) = student {
            guard !layers.isEmpty else { throw check.fail("student_layers", "must name at least one teacher layer") }
            guard layers.allSatisfy({ $0 >= 0 }), zip(layers, layers.dropFirst()).allSatisfy({ $0 < $1 }) else {
                throw check.fail("student_layers", "must be teacher layer indices from 0, increasing, got \(layers)")
            }
        }
        return nil
    }

    func implementation() -> CompressionStage? { DistillationStage(stage: self) }
}
