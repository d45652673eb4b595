import Foundation

/// How a pipeline run uses the ranks of a distributed job (`--distributed`).
///
/// - Fold-parallel (the default when there are at least as many folds as ranks): rank r trains folds
///   r, r + size, …, each alone and exactly as one process would (same seed, same batches, same
///   threads per rank: the same bits); rank 0 gathers the fold results, writes every artifact once and
///   runs the later stages, while the other ranks end.
/// - Data-parallel (`--data_parallel`, or more ranks than folds): the folds in turn, each trained by
///   every rank together (`DataParallel`); rank 0 writes, and again runs the later stages.
struct DistributedRun: Sendable {
    let communicator: Communicator
    /// `--data_parallel`.
    var dataParallelRequested = false
    var bucketBytes = 25 << 20

    enum Plan: Equatable { case foldParallel, dataParallel }

    func plan(folds: Int) -> Plan {
        dataParallelRequested || communicator.size > folds ? .dataParallel : .foldParallel
    }

    var isRoot: Bool { communicator.isRoot }

    var dataParallel: DataParallel { DataParallel(communicator: communicator, bucketBytes: bucketBytes) }
}

/// The tracking store of ranks other than 0: they log nothing (rank 0 logs every fold it gathers).
struct UntrackedStore: TrackingStore {
    struct Run: TrackingRun {
        let runID = String(repeating: "0", count: 32)
        func logParams(_ params: [String: String]) throws {}
        func logMetrics(_ metrics: [String: Double], step: Int, timestamp: Date) throws {}
        func setTag(_ key: String, _ value: String) throws {}
        func logArtifact(_ file: URL, directory: String?) throws {}
        func finish(status: TrackingRunStatus, endTime: Date) throws {}
    }

    func experiment(named name: String) throws -> String { "0" }
    func startRun(experimentID: String, name: String, tags: [String: String], parentRunID: String?, startTime: Date) throws -> Run { Run() }
    func resumeRun(experimentID: String, runID: String) throws -> Run { Run() }
    func close() -> String? { nil }
}
