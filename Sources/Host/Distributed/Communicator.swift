import Foundation
import PluginAPI
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A collective call failed, or the job cannot start: one line naming the rank and what went wrong.
struct DistributedError: Error, CustomStringConvertible {
    let message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}

/// This process's membership of a distributed job, through a communicator plugin (`--distributed mpi`):
/// the host never links an MPI library, the plugin does.
///
/// Every rank makes the same collective calls in the same order. Calls never overlap (the ABI's
/// rule): each takes `lock`, so the gradient thread and the training loop can both use one communicator.
final class Communicator: @unchecked Sendable {
    let rank: Int
    let size: Int
    /// The engine and its version, e.g. "Open MPI v4.1.4".
    let engine: String
    let method: PluginMethod
    // The table's functions, checked present when the plugin loaded (PluginMethod) and again here.
    private let allreduceFunction: @convention(c) (OpaquePointer?, UnsafeMutablePointer<Float>?, Int64, UnsafeMutablePointer<sk_error>?) -> sk_status
    private let broadcastFunction: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, Int64, Int32, UnsafeMutablePointer<sk_error>?) -> sk_status
    private let gatherFunction: @convention(c) (OpaquePointer?, UnsafeRawPointer?, Int64, UnsafeMutableRawPointer?, Int32, UnsafeMutablePointer<sk_error>?) -> sk_status
    private let barrierFunction: @convention(c) (OpaquePointer?, UnsafeMutablePointer<sk_error>?) -> sk_status
    private let closeFunction: (@convention(c) (OpaquePointer?) -> Void)?
    private let comm: OpaquePointer
    private let lock = NSLock()
    private var closed = false

    var isRoot: Bool { rank == 0 }
    /// What every message of this rank starts with.
    var label: String { "rank \(rank) of \(size)" }

    /// The Debian packages `--distributed mpi` needs, for the one-line message when the plugin is missing.
    static let mpiPackages = "openmpi-bin libopenmpi-dev"

    /// Joins the job through the communicator method `name` (e.g. "mpi").
    static func open(named name: String, registry: PluginRegistry) throws -> Communicator {
        guard let method = registry.methods.first(where: { $0.name == name && $0.kind == .communicator }) else {
            let known = registry.methods.filter { $0.kind == .communicator }.map(\.name)
            if name == "mpi" {
                throw DistributedError("--distributed mpi: this build has no MPI communicator plugin (libSankshepMPI): install Open MPI (Debian: apt-get install \(mpiPackages)), build again (swift build), and start the run with mpirun -np N")
            }
            throw DistributedError("--distributed \(name): no communicator plugin named '\(name)' is loaded; known: \(known.isEmpty ? "none" : known.joined(separator: ", "))")
        }
        return try Communicator(method: method)
    }

    private init(method: PluginMethod) throws {
        guard let table = communicatorTable(method.descriptor)?.pointee, let open = table.open, let rank = table.rank,
              let size = table.size, let engine = table.engine, let allreduce = table.allreduce_sum_f32,
              let broadcast = table.broadcast, let gather = table.gather, let barrier = table.barrier else {
            throw DistributedError("communicator '\(method.name)' (\(method.file)): no complete communicator table")
        }
        var comm: OpaquePointer?
        do {
            try method.withCOptions([:]) { options in
                try method.call { error in open(method.descriptor, options, &comm, error) }
            }
        } catch let error as PluginError {
            throw DistributedError("--distributed \(method.name): cannot join the job: \(error.message)")
        }
        guard let comm else { throw DistributedError("communicator '\(method.name)' (\(method.file)): open returned no communicator") }
        self.method = method
        self.comm = comm
        self.allreduceFunction = allreduce
        self.broadcastFunction = broadcast
        self.gatherFunction = gather
        self.barrierFunction = barrier
        self.closeFunction = table.close
        self.rank = Int(rank(comm))
        self.size = Int(size(comm))
        self.engine = engine(comm).map { String(cString: $0) } ?? method.name
        if self.size > 1 { DistributedAbort.install(rank: self.rank, size: self.size) }
    }

    /// Leaves the job (MPI_Finalize). Every rank that opened the communicator calls it once, at the end
    /// of a successful run; a failing rank exits without it (MPI_Finalize would wait for the ranks still
    /// blocked in a collective), so the launcher ends the job.
    func close() {
        lock.lock()
        defer { lock.unlock() }
        guard !closed else { return }
        closed = true
        closeFunction?(comm)
    }

    private func collective(_ what: String, _ body: (UnsafeMutablePointer<sk_error>) -> sk_status) throws {
        lock.lock()
        defer { lock.unlock() }
        do {
            try method.call(body)
        } catch let error as PluginError {
            throw DistributedError("\(label): \(what) failed: \(error.message)")
        }
    }

    /// In place: the element-wise sum over all ranks, the same bits on every rank.
    func allreduceSum(_ data: UnsafeMutablePointer<Float>, count: Int) throws {
        guard count > 0 else { return }
        try collective("allreduce of \(count) floats") { error in allreduceFunction(comm, data, Int64(count), error) }
    }

    func allreduceSum(_ values: inout [Float]) throws {
        let count = values.count
        try values.withUnsafeMutableBufferPointer { try allreduceSum($0.baseAddress!, count: count) }
    }

    func barrier() throws {
        try collective("barrier") { error in barrierFunction(comm, error) }
    }

    /// The root's bytes on every rank (any length: the length goes first).
    func broadcast(_ data: Data, root: Int) throws -> Data {
        var length = Int64(data.count)
        try collective("broadcast of a length") { error in broadcastFunction(comm, &length, 8, Int32(root), error) }
        var bytes = rank == root ? [UInt8](data) : [UInt8](repeating: 0, count: Int(length))
        let count = bytes.count
        try bytes.withUnsafeMutableBytes { raw in
            try collective("broadcast of \(count) bytes") { error in broadcastFunction(comm, raw.baseAddress, Int64(count), Int32(root), error) }
        }
        return Data(bytes)
    }

    /// Every rank's bytes (each its own length), in rank order, on `root`; nil on the other ranks.
    func gather(_ data: Data, root: Int = 0) throws -> [Data]? {
        var length = Int64(data.count)
        var lengths = [Int64](repeating: 0, count: size)
        try lengths.withUnsafeMutableBytes { received in
            try collective("gather of lengths") { error in gatherFunction(comm, &length, 8, received.baseAddress, Int32(root), error) }
        }
        // Lengths are known on the root only: every rank sends as many bytes as the longest, which
        // the root learns first and broadcasts.
        var longest = Int64(lengths.max() ?? 0)
        try collective("broadcast of a length") { error in broadcastFunction(comm, &longest, 8, Int32(root), error) }
        var send = [UInt8](data) + [UInt8](repeating: 0, count: Int(longest) - data.count)
        var receive = [UInt8](repeating: 0, count: rank == root ? Int(longest) * size : 0)
        let width = Int(longest)
        try send.withUnsafeMutableBytes { sent in
            try receive.withUnsafeMutableBytes { received in
                try collective("gather of \(width) bytes") { error in
                    gatherFunction(comm, sent.baseAddress, Int64(width), received.baseAddress, Int32(root), error)
                }
            }
        }
        guard rank == root else { return nil }
        return (0..<size).map { Data(receive[($0 * width)..<($0 * width + Int(lengths[$0]))]) }
    }

    /// Every rank's bytes on every rank, in rank order.
    func allGather(_ data: Data) throws -> [Data] {
        let gathered = try gather(data, root: 0)
        let packed = try broadcast(gathered.map { try JSONEncoder().encode($0) } ?? Data(), root: 0)
        guard let all = try? JSONDecoder().decode([Data].self, from: packed), all.count == size else {
            throw DistributedError("\(label): allgather: rank 0 sent what is not \(size) blocks")
        }
        return all
    }
}

/// When one rank dies (killed, out of memory, or stopped by its own error), Open MPI's `mpirun` stops
/// every other rank with SIGTERM. Each then says so in one line rather than vanishing, and how to go on.
enum DistributedAbort {
    private nonisolated(unsafe) static var message: UnsafeMutablePointer<CChar>?
    private nonisolated(unsafe) static var length = 0

    static func install(rank: Int, size: Int) {
        let text = "error: rank \(rank) of \(size) stopped by the launcher: another rank ended (killed, or failed with its own error) or the job was interrupted; run the same command with --resume to continue from the last checkpoints\n"
        let bytes = Array(text.utf8CString)
        let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count)
        buffer.initialize(from: bytes, count: bytes.count)
        message = buffer
        length = bytes.count - 1
        // Only async-signal-safe calls in the handler: write(2) and _exit(2).
        signal(SIGTERM) { _ in
            if let message = DistributedAbort.message { _ = write(2, message, DistributedAbort.length) }
            _exit(143)
        }
    }
}
