import Foundation
import Testing
@testable import Host
#if canImport(Glibc)
import Glibc
#endif

/// A `sankshep serve` subprocess of the built binary on an ephemeral loopback port, and a raw
/// HTTP/1.1 client (raw so that tests can send invalid UTF-8, oversized bodies and half requests).
enum ServingTestSupport {
    static let preset = ModelPreset(name: "test-serve", summary: "", hiddenSize: 32, layers: 1, heads: 2,
                                    intermediateSize: 64, maxPositions: 64, learningRate: 3e-3, epochs: 1, batchSize: 16)
    static let texts = ["তুমি খুব ভালো মানুষ", "এই লোকটা একটা চোর", "ধন্যবাদ", "সবাই মিলে কাজ করি", "তোর মত বেয়াদব আর দেখি নাই",
                        "", String(repeating: "খারাপ কথা ", count: 80)]

    /// A random (untrained) float classifier saved as a stage would save it.
    static func floatModel(in folder: URL) throws -> URL {
        let classifier = try Classifier.fromPreset(preset, tokenizerDirectory: Fixtures.bundledTokenizer, dropout: 0.1, pooling: .cls, seed: 11)
        let directory = folder.appendingPathComponent("float")
        try classifier.save(to: directory, extra: ["stage": "baseline"])
        return directory
    }

    /// The same kind of classifier quantized with the built-in dynamic INT8 plugin.
    static func quantizedModel(in folder: URL) throws -> URL {
        let classifier = try Classifier.fromPreset(preset, tokenizerDirectory: Fixtures.bundledTokenizer, dropout: 0.1, pooling: .cls, seed: 12)
        let registry = try PluginTestSupport.builtInRegistry()
        let model = try QuantizedClassifier.quantize(classifier, method: registry.quantizer(named: "dynamic"), options: [:],
                                                     registry: registry, calibration: nil, seed: 1, logger: nil)
        let directory = folder.appendingPathComponent("quantized")
        try model.save(to: directory, extra: ["stage": "quantize_dynamic"])
        return directory
    }

    /// `sankshep predict`'s JSON lines for `texts`, parsed.
    static func predict(model: URL, texts: [String], threshold: Double, in folder: URL) throws -> [(probability: Double, label: Int)] {
        let output = folder.appendingPathComponent("predictions-\(UUID().uuidString.prefix(6)).jsonl")
        var arguments = ["--model", model.path, "--output", output.path, "--threshold", String(threshold)]
        arguments += texts.flatMap { ["--text", $0] }
        guard let command = try PredictCommand.parseAsRoot(arguments) as? PredictCommand else {
            throw ServingTestFailure("predict did not parse")
        }
        try command.run()
        return try String(contentsOf: output, encoding: .utf8).split(separator: "\n").map { line in
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] ?? [:]
            return (object["probability"] as? Double ?? .nan, object["label"] as? Int ?? -1)
        }
    }
}

struct ServingTestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The built `sankshep` binary serving a model; stopped (SIGTERM) by `stop()`.
final class ServerProcess: @unchecked Sendable {
    let process = Process()
    let port: Int
    private let log = LockedText()

    /// The binary beside the test bundle (`swift build`/`swift test` put both in the same folder).
    static var binary: URL {
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for folder in [beside, beside.deletingLastPathComponent()] {
            let candidate = folder.appendingPathComponent("sankshep")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return Fixtures.repositoryRoot.appendingPathComponent(".build/debug/sankshep")
    }

    init(model: URL, arguments: [String] = []) throws {
        process.executableURL = Self.binary
        process.arguments = ["serve", "--model", model.path, "--port", "0", "--threads", "1"] + arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        let log = log
        errors.fileHandleForReading.readabilityHandler = { handle in log.append(String(decoding: handle.availableData, as: UTF8.self)) }
        try process.run()
        let deadline = Date().addingTimeInterval(30)
        var found: Int?
        while found == nil, Date() < deadline, process.isRunning {
            found = Self.port(in: log.text)
            if found == nil { usleep(20_000) }
        }
        guard let found else {
            if process.isRunning { process.terminate() }
            throw ServingTestFailure("the server did not start: \(log.text)")
        }
        port = found
    }

    deinit { if process.isRunning { process.terminate() } }

    var logText: String { log.text }

    static func port(in log: String) -> Int? {
        guard let range = log.range(of: "listening on http://127.0.0.1:") else { return nil }
        return Int(log[range.upperBound...].prefix { $0.isNumber })
    }

    /// SIGTERM, then the exit status once the process has ended.
    func stop(timeout: TimeInterval = 30) -> Int32? {
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        return waitForExit(timeout: timeout)
    }

    func waitForExit(timeout: TimeInterval) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { usleep(20_000) }
        return process.isRunning ? nil : process.terminationStatus
    }

    func client() -> HTTPTestClient { HTTPTestClient(port: port) }
}

final class LockedText: @unchecked Sendable {
    private var value = ""
    private let lock = NSLock()
    func append(_ text: String) { lock.lock(); value += text; lock.unlock() }
    var text: String { lock.lock(); defer { lock.unlock() }; return value }
}

/// One HTTP/1.1 request per connection (`Connection: close`), over a blocking loopback socket.
struct HTTPTestClient: Sendable {
    let port: Int

    struct Reply: Sendable {
        let status: Int
        let headers: [String: String]
        let body: Data
        var json: Any? { try? JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed]) }
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    func get(_ path: String, headers: [String: String] = [:]) throws -> Reply {
        try send(Self.request(method: "GET", path: path, headers: headers, body: Data()))
    }

    func post(_ path: String, json: Any, headers: [String: String] = [:]) throws -> Reply {
        try post(path, body: try JSONSerialization.data(withJSONObject: json, options: [.fragmentsAllowed]), headers: headers)
    }

    func post(_ path: String, body: Data, headers: [String: String] = [:]) throws -> Reply {
        try send(Self.request(method: "POST", path: path, headers: ["Content-Type": "application/json"].merging(headers) { $1 }, body: body))
    }

    static func request(method: String, path: String, headers: [String: String], body: Data) -> Data {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: \(body.count)\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        return Data((head + "\r\n").utf8) + body
    }

    /// Sends `bytes` as they are and reads the answer until the server closes the connection.
    func send(_ bytes: Data) throws -> Reply {
        let socket = try connect()
        defer { close(socket) }
        try write(bytes, to: socket)
        return try Self.parse(readAll(socket))
    }

    func connect() throws -> Int32 {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw ServingTestFailure("socket() failed") }
        var timeout = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else { close(socket); throw ServingTestFailure("connect to 127.0.0.1:\(port) failed (errno \(errno))") }
        return socket
    }

    func write(_ bytes: Data, to socket: Int32) throws {
        var sent = 0
        try bytes.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            guard let base = raw.baseAddress else { return }
            while sent < raw.count {
                let count = Glibc.send(socket, base + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
                // The server may answer (413) and close before the whole body is sent: stop writing then.
                if count <= 0 { if sent == 0 { throw ServingTestFailure("send failed (errno \(errno))") }; return }
                sent += count
            }
        }
    }

    func readAll(_ socket: Int32) throws -> Data {
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = recv(socket, &buffer, buffer.count, 0)
            if count > 0 { data.append(contentsOf: buffer[0..<count]) } else { break }
        }
        return data
    }

    static func parse(_ data: Data) throws -> Reply {
        guard let split = data.range(of: Data("\r\n\r\n".utf8)) else {
            throw ServingTestFailure("no HTTP answer (\(data.count) bytes)")
        }
        let head = String(decoding: data[..<split.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = head[0].split(separator: " ")
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else { throw ServingTestFailure("bad status line \(head[0])") }
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Data(data[split.upperBound...])
        if let length = headers["content-length"].flatMap(Int.init), body.count > length { body = body.prefix(length) }
        return Reply(status: status, headers: headers, body: body)
    }
}
