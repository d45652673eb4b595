import Foundation
import Testing
@testable import Host

/// `sankshep run --distributed mpi` as 2 ranks on this machine (loopback), against one process.
/// Small: 2 % of the bundled data, 2 folds, 2 epochs of the small teacher, one thread per rank.
@Suite("Distributed runs under mpirun: fold-parallel and data-parallel", .serialized)
struct DistributedRunTests {
    static let common = ["--data_path", Fixtures.bundledData.path, "--data_fraction", "0.02", "--num_folds", "2",
                         "--epochs", "2", "--dropout", "0", "--threads", "1"]

    /// One process's run of the same job: the reference, run once in this process.
    static let reference: Result<URL, Error> = Result {
        let folder = try Fixtures.temporaryFolder("distributed-reference")
        try (RunCommand.parseAsRoot(common + ["--output_dir", folder.path]) as! RunCommand).run()
        return folder
    }

    /// The data-parallel job, uninterrupted, run once.
    static let dataParallel: Result<URL, Error> = Result {
        let folder = try Fixtures.temporaryFolder("distributed-data-parallel")
        try MPIJob.run(ranks: 2, ["run"] + common + ["--output_dir", folder.path, "--distributed", "mpi", "--data_parallel"])
        return folder
    }

    static func file(_ folder: URL, _ name: String) -> URL { folder.appendingPathComponent(name) }

    static func runCount(_ folder: URL) throws -> Int {
        let tracking = try MLflowStore(root: folder.appendingPathComponent("mlruns"))
        let experiment = try #require(try tracking.experimentID(named: "Bangla-HateSpeech-Detection"))
        return try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("mlruns/\(experiment)").path)
            .filter { $0 != "meta.yaml" }.count
    }

    @Test("fold-parallel on 2 ranks gives one process's fold summary, best metrics and teacher, bit for bit, written once")
    func foldParallelIsOneProcess() throws {
        let reference = try Self.reference.get()
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try MPIJob.run(ranks: 2, ["run"] + Self.common + ["--output_dir", folder.path, "--distributed", "mpi"])
        #expect(try foldSummaryWithoutTimes(Self.file(folder, "fold_summary_baseline.csv"))
                == foldSummaryWithoutTimes(Self.file(reference, "fold_summary_baseline.csv")))
        #expect(try Data(contentsOf: Self.file(folder, "best_metrics_baseline.csv")) == Data(contentsOf: Self.file(reference, "best_metrics_baseline.csv")))
        #expect(try Data(contentsOf: Self.file(folder, "best_model_baseline/model.safetensors"))
                == Data(contentsOf: Self.file(reference, "best_model_baseline/model.safetensors")))
        // Rank 0 logged every fold once: the same MLflow runs as one process (job, 2 folds, the stage row).
        #expect(try Self.runCount(folder) == Self.runCount(reference))
        // The fold trained by rank 1 has its per-epoch metrics too.
        let tracking = try MLflowStore(root: folder.appendingPathComponent("mlruns"))
        let experiment = try #require(try tracking.experimentID(named: "Bangla-HateSpeech-Detection"))
        let runs = try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("mlruns/\(experiment)").path).filter { $0 != "meta.yaml" }
        let fold2 = try #require(try runs.first { run in
            try String(contentsOf: folder.appendingPathComponent("mlruns/\(experiment)/\(run)/tags/mlflow.runName"), encoding: .utf8) == "baseline-fold-2"
        })
        let losses = try String(contentsOf: folder.appendingPathComponent("mlruns/\(experiment)/\(fold2)/metrics/train_loss"), encoding: .utf8)
        #expect(losses.split(separator: "\n").count == 2)
    }

    @Test("data-parallel on 2 ranks at the same global batch gives one process's losses and final weights within 1e-5 relative")
    func dataParallelMatchesOneProcess() throws {
        let reference = try Self.reference.get()
        let folder = try Self.dataParallel.get()
        for fold in 1...2 {
            let name = "checkpoints/baseline/fold-\(fold).json"
            let mine = try JSONDecoder().decode(FoldOutcome.self, from: Data(contentsOf: Self.file(folder, name)))
            let theirs = try JSONDecoder().decode(FoldOutcome.self, from: Data(contentsOf: Self.file(reference, name)))
            #expect(mine.history.count == theirs.history.count)
            for (a, b) in zip(mine.history, theirs.history) {
                #expect(abs(a.trainLoss - b.trainLoss) <= 1e-5 * abs(b.trainLoss), "fold \(fold) epoch \(a.epoch): \(a.trainLoss) vs \(b.trainLoss)")
                #expect(abs((a.validationRocAUC ?? 0) - (b.validationRocAUC ?? 0)) <= 1e-3, "fold \(fold) epoch \(a.epoch) ROC-AUC")
            }
            #expect(mine.bestEpoch == theirs.bestEpoch)
        }
        let weights = try SafeTensorsFile(contentsOf: Self.file(folder, "best_model_baseline/model.safetensors"))
        let expected = try SafeTensorsFile(contentsOf: Self.file(reference, "best_model_baseline/model.safetensors"))
        #expect(weights.entries.map(\.name) == expected.entries.map(\.name))
        var differenceSquared = 0.0, normSquared = 0.0
        for entry in expected.entries {
            let a = try weights.tensor(named: entry.name).scalars, b = try expected.tensor(named: entry.name).scalars
            let difference = zip(a, b).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }.squareRoot()
            let norm = b.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            differenceSquared += difference * difference
            normSquared += norm * norm
            if entry.name.hasSuffix("attention.self.key.bias") {
                // Softmax ignores a key bias, so its gradient is zero but for rounding, which AdamW scales
                // up to steps of the learning rate's size: both runs move it by noise alone, and only that
                // it stays tiny in both can be asked.
                let theirs = a.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
                #expect(norm < 1e-4 && theirs < 1e-4, "\(entry.name): \(norm), \(theirs)")
                continue
            }
            // A small bias (norm ~0.01) may move by a few 1e-5 of itself: per tensor 1e-4, the whole model 1e-5.
            #expect(difference <= 1e-4 * norm, "\(entry.name): |Δ| \(difference), |w| \(norm)")
        }
        #expect(differenceSquared.squareRoot() <= 1e-5 * normSquared.squareRoot(),
                "all weights: |Δ| \(differenceSquared.squareRoot()), |w| \(normSquared.squareRoot())")
    }

    @Test("a rank killed mid-training ends the job with one line saying to --resume, and --resume completes with the uninterrupted run's fold summary")
    func killedRankResumes() throws {
        let uninterrupted = try Self.dataParallel.get()
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let arguments = ["run"] + Self.common + ["--output_dir", folder.path, "--distributed", "mpi", "--data_parallel"]
        let log = folder.appendingPathComponent("stderr.log")
        let job = try MPIJob.start(ranks: 2, program: ServerProcess.binary.path, arguments: arguments, errors: log)
        // Rank 1 dies once rank 0 has checkpointed the first epoch of fold 1.
        let checkpoint = folder.appendingPathComponent("checkpoints/baseline/fold-1.checkpoint.safetensors")
        let deadline = Date().addingTimeInterval(300)
        while !FileManager.default.fileExists(atPath: checkpoint.path), job.isRunning, Date() < deadline { usleep(20_000) }
        let victim = try #require(MPIJob.pid(ofRank: 1, under: job), "rank 1 not found under mpirun")
        kill(victim, SIGKILL)
        job.waitUntilExit()
        #expect(job.terminationStatus != 0)
        let errors = try String(contentsOf: log, encoding: .utf8).split(separator: "\n").filter { $0.lowercased().contains("error") }
        #expect(errors.count == 1, "\(errors)")
        #expect(errors.first?.contains("rank 0 of 2 stopped by the launcher: another rank ended") == true)
        #expect(errors.first?.contains("--resume") == true)
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("fold_summary_baseline.csv").path))

        try MPIJob.run(ranks: 2, arguments + ["--resume"])
        #expect(try foldSummaryWithoutTimes(Self.file(folder, "fold_summary_baseline.csv"))
                == foldSummaryWithoutTimes(Self.file(uninterrupted, "fold_summary_baseline.csv")))
        #expect(try Data(contentsOf: Self.file(folder, "best_model_baseline/model.safetensors"))
                == Data(contentsOf: Self.file(uninterrupted, "best_model_baseline/model.safetensors")))
    }
}
