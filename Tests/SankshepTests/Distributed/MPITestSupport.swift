import Foundation
@testable import Host

/// Jobs of the built `sankshep` under Open MPI's `mpirun` on this machine (loopback), as CI runs them.
enum MPIJob {
    static let launcher = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// `mpirun -q -np N --oversubscribe --allow-run-as-root`: -q leaves out mpirun's own banners, so
    /// what a failed job prints is what the ranks said.
    static func launcherArguments(ranks: Int) -> [String] {
        ["-q", "-np", String(ranks), "--oversubscribe", "--allow-run-as-root"]
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Starts `mpirun … program arguments`; standard error goes to `errors`.
    static func start(ranks: Int, program: String, arguments: [String], errors: URL) throws -> Process {
        guard let launcher else { throw Failure(description: "mpirun not found: install openmpi-bin libopenmpi-dev (make test does)") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: launcher)
        process.arguments = launcherArguments(ranks: ranks) + [program] + arguments
        _ = FileManager.default.createFile(atPath: errors.path, contents: nil)
        process.standardError = try FileHandle(forWritingTo: errors)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Runs `sankshep` as `ranks` ranks and waits; returns the exit status and standard error.
    @discardableResult
    static func run(ranks: Int, _ arguments: [String], mustSucceed: Bool = true) throws -> (status: Int32, errors: String) {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("sankshep-mpi-\(UUID().uuidString.prefix(8)).log")
        defer { try? FileManager.default.removeItem(at: log) }
        let process = try start(ranks: ranks, program: ServerProcess.binary.path, arguments: arguments, errors: log)
        process.waitUntilExit()
        let errors = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        if mustSucceed, process.terminationStatus != 0 {
            throw Failure(description: "mpirun exited with \(process.terminationStatus): \(errors.suffix(3000))")
        }
        return (process.terminationStatus, errors)
    }

    /// The pid of rank `rank` among the children of `mpirun` (each rank's environment names it).
    static func pid(ofRank rank: Int, under launcher: Process) -> Int32? {
        let children = (try? String(contentsOfFile: "/proc/\(launcher.processIdentifier)/task/\(launcher.processIdentifier)/children", encoding: .utf8)) ?? ""
        for child in children.split(separator: " ").compactMap({ Int32($0) }) {
            guard let environment = FileManager.default.contents(atPath: "/proc/\(child)/environ") else { continue }
            let variables = environment.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            if variables.contains("OMPI_COMM_WORLD_RANK=\(rank)") { return child }
        }
        return nil
    }
}

/// The columns of a fold summary that a run decides, without the wall time (`seconds`).
func foldSummaryWithoutTimes(_ file: URL) throws -> [[String]] {
    let lines = try String(contentsOf: file, encoding: .utf8).split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
    guard let header = lines.first, let seconds = header.firstIndex(of: "seconds") else { throw MPIJob.Failure(description: "\(file.path): no seconds column") }
    return lines.map { row in row.enumerated().filter { $0.offset != seconds }.map(\.element) }
}
