import Foundation
import Logging

/// `--skip_baseline --teacher_checkpoint FILE`: the user's teacher instead of a trained baseline.
///
/// FILE is a model folder (Hugging Face, seed or Sankshep) or a weights file: a seed `best_model_*.pt`
/// (a state dict with `encoder.*` and `classifier.0/3.*`), a `pytorch_model.bin` or a `.safetensors`.
/// A weights file holds weights only, as in the seed: its architecture and tokenizer are those of
/// `--model_path` (or of the teacher preset), and the head is whichever the weights hold.
///
/// The folds are still made, under the same seed: the held-out rows every stage is evaluated on are
/// fold 1's validation split, and the stages that train use fold 1's training rows. (A teacher
/// trained elsewhere may have seen those rows; its own figures on them are then optimistic.)
struct GivenTeacher {
    let checkpoint: URL
    let teacher: Classifier

    /// The fold (from 1) whose validation split is held out.
    static let heldOutFold = 1

    static func load(_ checkpoint: URL, modelPath: URL?, preset: ModelPreset?, tokenizerDirectory: URL,
                     stagingDirectory: URL, pooling: Pooling, dropout: Double, seed: Int, logger: Logger) throws -> GivenTeacher {
        let files = FileManager.default
        var isDirectory: ObjCBool = false
        guard files.fileExists(atPath: checkpoint.path, isDirectory: &isDirectory) else {
            throw ValidationFailure("--teacher_checkpoint \(checkpoint.path): no such file or folder")
        }
        if isDirectory.boolValue {
            // A folder Sankshep wrote knows its pooling; --pooling_type applies to the others.
            let folderPooling = SankshepSettings.read(from: checkpoint)?.pooling
            let teacher = try Classifier.load(from: checkpoint, pooling: folderPooling ?? pooling, dropout: dropout, seed: seed, logger: logger)
            return GivenTeacher(checkpoint: checkpoint, teacher: teacher)
        }
        // A folder of the architecture's config and tokenizer with the weights file linked in, which
        // `Classifier.load` reads as it reads any model folder. It stays: the teacher's tokenizer files
        // are copied from it whenever a model is saved.
        try? files.removeItem(at: stagingDirectory)
        try files.createDirectory(at: stagingDirectory, withIntermediateDirectories: true)
        if let modelPath {
            let configFile = modelPath.appendingPathComponent("config.json")
            guard files.fileExists(atPath: configFile.path) else {
                throw ValidationFailure("--teacher_checkpoint \(checkpoint.path) holds weights only; --model_path \(modelPath.path) must be the folder of its architecture (config.json and tokenizer), and has no config.json")
            }
            for file in [configFile] + HuggingFaceDirectory.tokenizerFiles(in: modelPath) {
                try AtomicFile.copy(from: file, to: stagingDirectory.appendingPathComponent(file.lastPathComponent))
            }
        } else if let preset {
            let template = try Classifier.fromPreset(preset, tokenizerDirectory: tokenizerDirectory, dropout: dropout,
                                                     pooling: pooling, seed: seed)
            for file in template.tokenizerFiles {
                try AtomicFile.copy(from: file, to: stagingDirectory.appendingPathComponent(file.lastPathComponent))
            }
            try template.config.write(to: stagingDirectory.appendingPathComponent("config.json"))
        }
        let name = checkpoint.pathExtension == "safetensors" ? "best_model_teacher.safetensors" : "best_model_teacher.pt"
        try files.createSymbolicLink(at: stagingDirectory.appendingPathComponent(name),
                                     withDestinationURL: checkpoint.standardizedFileURL.absoluteURL)
        let teacher = try Classifier.load(from: stagingDirectory, pooling: pooling, dropout: dropout, seed: seed, logger: logger)
        return GivenTeacher(checkpoint: checkpoint, teacher: teacher)
    }

    /// The baseline stage's outcome with this teacher: no folds trained, the teacher saved as
    /// `best_model_<tag>/` with its threshold searched on the held-out rows.
    func outcome(_ context: RunContext) throws -> BaselineOutcome {
        guard context.folds.count >= Self.heldOutFold else {
            throw TrainingError("--skip_baseline: no fold \(Self.heldOutFold) to hold out")
        }
        let heldOut = context.folds[Self.heldOutFold - 1].validation
        let labels = heldOut.map { context.dataset.labels[$0] }
        let probabilities = try teacher.probabilities(sequences: context.corpus.sequences(for: teacher), rows: heldOut, batchSize: 64)
        let metrics = ThresholdSearch.search(probabilities: probabilities, labels: labels).bestOfSweep
        teacher.threshold = metrics.threshold
        context.logger.info("baseline skipped: teacher \(checkpoint.path), macro-F1 \(String(format: "%.4f", metrics.macroF1)) at threshold \(String(format: "%.2f", metrics.threshold)) on fold \(Self.heldOutFold)'s validation split (\(heldOut.count) rows)")
        let directory = context.outputDirectory.appendingPathComponent("best_model_\(context.tag)")
        // No "fold" key: a resumed run under another tag must not take this folder for trained folds.
        try teacher.save(to: directory, extra: ["stage": "baseline", "teacher_checkpoint": checkpoint.path])
        let saved = try Classifier.load(from: directory, logger: context.logger)
        return BaselineOutcome(folds: [], bestFold: Self.heldOutFold, teacher: saved, teacherDirectory: directory, heldOut: heldOut)
    }
}
