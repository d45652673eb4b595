import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A loopback process of `scripts/mlflow_test_server.py`: a real MLflow tracking server, or a TCP
/// forwarder to one that a test stops to make the server go away mid-job. It lives while its standard
/// input is open: `stop()` closes it, and so does the test process ending, however it ends.
final class LoopbackProcess: @unchecked Sendable {
    let url: URL
    private let process: Process
    private let input: Pipe

    private init(url: URL, process: Process, input: Pipe) {
        self.url = url
        self.process = process
        self.input = input
    }

    struct StartFailure: Error, CustomStringConvertible { var description: String }

    /// Starts the script with `arguments` and waits (at most `timeout` seconds) for the URL it prints.
    static func start(_ arguments: [String], timeout: TimeInterval) throws -> LoopbackProcess {
        guard let interpreter = PythonEnvironment.interpreter else { throw PythonEnvironment.PythonUnavailable() }
        let process = Process()
        process.executableURL = interpreter
        process.arguments = [Fixtures.repositoryRoot.appendingPathComponent("scripts/mlflow_test_server.py").path] + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["MLFLOW_TRACKING_URI"] = nil
        process.environment = environment
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()

        let line = FirstLine()
        let done = DispatchSemaphore(value: 0)
        let reader = Thread {
            var bytes = Data()
            while true {
                let chunk = output.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                bytes.append(chunk)
                if bytes.contains(0x0A) { break }
            }
            line.set(String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
            done.signal()
        }
        reader.start()
        let started = LoopbackProcess(url: URL(fileURLWithPath: "/"), process: process, input: input)
        guard done.wait(timeout: .now() + timeout) == .success else {
            started.stop()
            throw StartFailure(description: "\(arguments.joined(separator: " ")): no URL within \(Int(timeout)) s")
        }
        guard let text = line.value, text.hasPrefix("http://"), let url = URL(string: text) else {
            started.stop()
            throw StartFailure(description: "\(arguments.joined(separator: " ")): \(line.value ?? "exited")")
        }
        return LoopbackProcess(url: url, process: process, input: input)
    }

    /// Ends the process (and the server it started), waiting a few seconds at most.
    func stop() {
        try? input.fileHandleForWriting.close()
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning { process.terminate() }
    }

    private final class FirstLine: @unchecked Sendable {
        private let lock = NSLock()
        private var text: String?
        var value: String? {
            lock.lock()
            defer { lock.unlock() }
            return text
        }
        func set(_ value: String) {
            lock.lock()
            defer { lock.unlock() }
            text = value
        }
    }
}

/// One MLflow tracking server for the whole test run (it takes seconds to start), in a temporary
/// folder: SQLite backend, artifacts through its proxy.
enum MLflowTestServer {
    static let shared: Result<LoopbackProcess, any Error> = Result {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("sankshep-mlflow-server-\(UUID().uuidString.prefix(8))")
        return try LoopbackProcess.start(["server", "--root", root.path, "--timeout", "300"], timeout: 330)
    }

    static func url() throws -> URL { try shared.get().url }

    /// A loopback port nothing listens on: bound, read, and released.
    static func closedPort() throws -> Int {
        #if os(Linux)
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let descriptor = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard descriptor >= 0 else { throw LoopbackProcess.StartFailure(description: "socket() failed") }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bind(descriptor, socketAddress, length) == 0 && getsockname(descriptor, socketAddress, &length) == 0
            }
        }
        guard bound else { throw LoopbackProcess.StartFailure(description: "bind() failed") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
