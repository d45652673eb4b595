import Foundation
import Testing
@testable import Host

/// The host's side of the communicator ABI, in the test process, through a one-rank C plugin built
/// from the header alone (Fixtures/plugins/single_rank_communicator.c): no MPI here.
enum SingleRankCommunicator {
    static let source = Fixtures.url("plugins/single_rank_communicator.c").path

    /// The plugin, built once per test process, and joined once (a communicator opens once per process).
    static let shared: Result<(communicator: Communicator, library: String), Error> = Result {
        let folder = try PluginTestSupport.makeFolder()
        let library = try PluginTestSupport.compile(sourceFile: source, name: "singlerank", in: folder)
        let registry = try PluginRegistry(searchPath: PluginSearchPath(explicit: [library], environment: nil, executableFolder: nil))
        return (try Communicator.open(named: "single", registry: registry), library)
    }

    static func communicator() throws -> Communicator { try shared.get().communicator }

    /// The collectives the plugin has run so far (its own counter, read through dlsym).
    static func calls() throws -> Int64 {
        let library = try shared.get().library
        guard let handle = dlopen(library, RTLD_NOW | RTLD_NOLOAD), let symbol = dlsym(handle, "single_rank_calls") else {
            throw PluginError("\(library): no single_rank_calls")
        }
        return unsafeBitCast(symbol, to: (@convention(c) () -> Int64).self)()
    }
}

@Suite("The communicator ABI, through a one-rank plugin", .serialized)
struct CommunicatorTests {
    @Test("a communicator method loads by name and answers its rank, size and engine")
    func opensByName() throws {
        let communicator = try SingleRankCommunicator.communicator()
        #expect(communicator.rank == 0 && communicator.size == 1 && communicator.isRoot)
        #expect(communicator.engine == "single-rank test engine")
        #expect(communicator.method.kind == .communicator)
    }

    @Test("gather, broadcast and allgather hand back each rank's bytes, of any length")
    func bytesRoundTrip() throws {
        let communicator = try SingleRankCommunicator.communicator()
        let payload = Data("fold results ✓".utf8)
        #expect(try communicator.gather(payload, root: 0) == [payload])
        #expect(try communicator.broadcast(payload, root: 0) == payload)
        #expect(try communicator.allGather(Data()) == [Data()])
        var values: [Float] = [1.5, -2, 3]
        try communicator.allreduceSum(&values)
        #expect(values == [1.5, -2, 3])
    }

    @Test("a file only rank 0 reads reaches every rank, and a missing one is nil rather than empty")
    func sharedFile() throws {
        let communicator = try SingleRankCommunicator.communicator()
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let empty = folder.appendingPathComponent("empty.json"), full = folder.appendingPathComponent("full.json")
        try Data().write(to: empty)
        try Data("{}".utf8).write(to: full)
        #expect(try communicator.sharedFile(empty) == Data())
        #expect(try communicator.sharedFile(full) == Data("{}".utf8))
        #expect(try communicator.sharedFile(folder.appendingPathComponent("missing.json")) == nil)
    }

    @Test("a plugin error in a collective becomes one line naming the rank and the call")
    func collectiveErrors() throws {
        let communicator = try SingleRankCommunicator.communicator()
        #expect {
            _ = try communicator.broadcast(Data([1]), root: 3)
        } throws: { error in
            let text = "\(error)"
            return text.hasPrefix("rank 0 of 1: broadcast") && text.contains("no such root rank") && !text.contains("\n")
        }
    }

    @Test("a communicator whose table lacks a required function is refused when it loads, naming the function")
    func incompleteTableRefused() throws {
        let folder = try PluginTestSupport.makeFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let library = try PluginTestSupport.compile(source: "#define BROKEN_TABLE 1\n#include \"\(SingleRankCommunicator.source)\"\n",
                                                    name: "brokencomm", in: folder)
        #expect {
            _ = try PluginRegistry(searchPath: PluginSearchPath(explicit: [library], environment: nil, executableFolder: nil))
        } throws: { error in
            "\(error)".contains("the communicator table has no gather")
        }
    }

    @Test("--distributed mpi without the MPI plugin says in one line what to install")
    func missingMPIPlugin() throws {
        let registry = try PluginRegistry(searchPath: PluginSearchPath(explicit: [], environment: nil, executableFolder: nil))
        #expect {
            _ = try Communicator.open(named: "mpi", registry: registry)
        } throws: { error in
            let text = "\(error)"
            return text.contains("apt-get install openmpi-bin libopenmpi-dev") && text.contains("mpirun") && !text.contains("\n")
        }
    }
}
