import ArgumentParser
import Foundation

/// `--distributed mpi`: run as one rank of a job started by `mpirun -np N sankshep run …`
/// (docs/distributed.md).
struct DistributedOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Run as a rank of a distributed job through this communicator plugin (mpi: start with mpirun -np N). Folds are spread over the ranks; see --data_parallel.",
                               valueName: "communicator"))
    var distributed: String?

    @Flag(name: .customLong("data_parallel"),
          help: "Train each fold with every rank together (each rank a shard of every batch) instead of spreading the folds; the default when ranks outnumber folds.")
    var dataParallel = false

    @Option(name: .customLong("allreduce_bucket_mb"), help: "Data-parallel: megabytes of gradients summed in one call (the fusion threshold).")
    var allreduceBucketMB: Double = 25

    func validate() throws {
        // Ranks started by mpirun without --distributed would each run the whole job into one folder.
        let environment = ProcessInfo.processInfo.environment
        if distributed == nil, let ranks = (environment["OMPI_COMM_WORLD_SIZE"] ?? environment["PMI_SIZE"]).flatMap(Int.init), ranks > 1 {
            throw ValidationError("started as one of \(ranks) MPI ranks without --distributed: add --distributed mpi, or run without mpirun")
        }
        if dataParallel, distributed == nil { throw ValidationError("--data_parallel needs --distributed (e.g. --distributed mpi under mpirun)") }
        guard allreduceBucketMB > 0, allreduceBucketMB <= 4096 else {
            throw ValidationError("--allreduce_bucket_mb must be in (0, 4096], got \(allreduceBucketMB)")
        }
    }

    /// Joins the job (nil without --distributed).
    func join(_ registry: PluginRegistry) throws -> DistributedRun? {
        guard let distributed else { return nil }
        let communicator = try Communicator.open(named: distributed, registry: registry)
        return DistributedRun(communicator: communicator, dataParallelRequested: dataParallel,
                              bucketBytes: Int(allreduceBucketMB * 1024 * 1024))
    }
}
