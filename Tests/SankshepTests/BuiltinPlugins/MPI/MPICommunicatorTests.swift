import Foundation
import Testing
@testable import Host

@Suite("The mpi communicator plugin under mpirun", .serialized)
struct MPICommunicatorTests {
    /// libSankshepMPI.so, where `swift build` puts it beside the host (built where libopenmpi-dev is installed).
    static var plugin: String {
        ServerProcess.binary.deletingLastPathComponent().appendingPathComponent("libSankshepMPI.so").path
    }

    @Test("a host written in C against the header alone gets allreduce sums, broadcasts, gathers in rank order and error statuses on 2 and 3 ranks")
    func collectivesThroughTheHeader() throws {
        #expect(FileManager.default.fileExists(atPath: Self.plugin), "no \(Self.plugin): install libopenmpi-dev and build again")
        let folder = try PluginTestSupport.makeFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let program = folder + "/communicator_check"
        let compile = Process()
        compile.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        compile.arguments = ["cc", "-std=c11", "-D_GNU_SOURCE", "-Wall", "-Werror", "-I", PluginTestSupport.headerFolder,
                             Fixtures.url("plugins/communicator_check.c").path, "-o", program, "-ldl"]
        try compile.run()
        compile.waitUntilExit()
        #expect(compile.terminationStatus == 0)
        for ranks in [2, 3] {
            let output = folder + "/out-\(ranks).txt"
            guard let launcher = MPIJob.launcher else { throw MPIJob.Failure(description: "mpirun not found") }
            let job = Process()
            job.executableURL = URL(fileURLWithPath: launcher)
            job.arguments = MPIJob.launcherArguments(ranks: ranks) + [program, Self.plugin]
            _ = FileManager.default.createFile(atPath: output, contents: nil)
            job.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
            try job.run()
            job.waitUntilExit()
            let lines = try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n").sorted()
            #expect(job.terminationStatus == 0)
            #expect(lines.count == ranks)
            for (rank, line) in lines.enumerated() {
                #expect(line.hasPrefix("rank \(rank) of \(ranks): ok (Open MPI"), "\(line)")
            }
        }
    }

    @Test("sankshep started by mpirun without --distributed refuses in one line instead of running the job N times")
    func mpirunWithoutDistributed() throws {
        let (status, errors) = try MPIJob.run(ranks: 2, ["run", "--num_folds", "2"], mustSucceed: false)
        #expect(status != 0)
        #expect(errors.contains("started as one of 2 MPI ranks without --distributed: add --distributed mpi"))
    }
}
