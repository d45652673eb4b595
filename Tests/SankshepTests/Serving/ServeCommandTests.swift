import Foundation
import Testing
@testable import Host
#if canImport(Glibc)
import Glibc
#endif

/// `sankshep serve` as a client sees it: the built binary on an ephemeral loopback port, real HTTP.
@Suite("sankshep serve", .serialized)
struct ServeCommandTests {
    /// Runs `body` on `count` threads at once (blocking sockets; not Swift's few cooperative threads).
    static func concurrently<T: Sendable>(_ count: Int, _ body: @escaping @Sendable (Int) -> T) -> [T] {
        let results = LockedResults<T>(count: count)
        let group = DispatchGroup()
        for index in 0..<count {
            group.enter()
            let thread = Thread {
                results.set(index, body(index))
                group.leave()
            }
            thread.start()
        }
        group.wait()
        return results.values
    }

    /// The value of one sample line of `/metrics` (`name{labels} value`).
    static func metric(_ text: String, _ sample: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(sample + " ") {
            return Double(line.dropFirst(sample.count + 1))
        }
        return nil
    }

    @Test("/v1/classify answers predict's probabilities and labels, for a float and a quantized model")
    func classifyEqualsPredict() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        for model in [try ServingTestSupport.floatModel(in: folder), try ServingTestSupport.quantizedModel(in: folder)] {
            let texts = ServingTestSupport.texts
            let loaded = try loadDeployableModel(from: model, registry: PluginTestSupport.builtInRegistry())
            // A threshold between the texts' probabilities, so both labels occur.
            let sorted = try loaded.probabilities(of: texts, maxLength: 128, batchSize: 64).map(Double.init).sorted()
            let threshold = (sorted[2] + sorted[3]) / 2
            let expected = try ServingTestSupport.predict(model: model, texts: texts, threshold: threshold, in: folder)
            let server = try ServerProcess(model: model, arguments: ["--threshold", String(threshold)])
            let reply = try server.client().post("/v1/classify", json: ["texts": texts])
            #expect(reply.status == 200, "\(reply.text)")
            let results = (reply.json as? [String: Any])?["results"] as? [[String: Any]] ?? []
            #expect(results.map { $0["probability"] as? Double } == expected.map(\.probability))
            #expect(results.map { $0["label"] as? Int } == expected.map(\.label))
            #expect(Set(expected.map(\.label)) == [0, 1])
            #expect(server.stop() == 0)
        }
    }

    @Test("/predict speaks TEI's format: one list for one text, a list of lists for several, raw_scores as logits")
    func teiPredict() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = try ServingTestSupport.floatModel(in: folder)
        let server = try ServerProcess(model: model)
        let client = server.client()
        let texts = Array(ServingTestSupport.texts.prefix(3))
        let classified = (try client.post("/v1/classify", json: ["texts": texts]).json as? [String: Any])?["results"] as? [[String: Any]] ?? []
        let probabilities = classified.compactMap { $0["probability"] as? Double }
        #expect(probabilities.count == 3)

        let single = try client.post("/predict", json: ["inputs": texts[0]])
        #expect(single.status == 200, "\(single.text)")
        let singleScores = single.json as? [[String: Any]] ?? []
        #expect(singleScores.count == 2)
        let byLabel = Dictionary(uniqueKeysWithValues: singleScores.map { ($0["label"] as? String ?? "", $0["score"] as? Double ?? .nan) })
        #expect(byLabel["hate"] == probabilities[0])
        #expect(byLabel["not_hate"] == 1 - probabilities[0])
        // Highest score first, as TEI sorts them.
        #expect((singleScores[0]["score"] as? Double ?? 0) >= (singleScores[1]["score"] as? Double ?? 1))

        let batch = try client.post("/predict", json: ["inputs": texts])
        let lists = batch.json as? [[[String: Any]]] ?? []
        #expect(batch.status == 200 && lists.count == 3)
        for (list, probability) in zip(lists, probabilities) {
            #expect(list.first { $0["label"] as? String == "hate" }?["score"] as? Double == probability)
        }

        let raw = try client.post("/predict", json: ["inputs": texts[0], "raw_scores": true])
        let rawScores = Dictionary(uniqueKeysWithValues: (raw.json as? [[String: Any]] ?? []).map { ($0["label"] as? String ?? "", $0["score"] as? Double ?? .nan) })
        let logit = rawScores["hate"] ?? .nan
        #expect(abs(1 / (1 + exp(-logit)) - probabilities[0]) < 1e-12)
        #expect(rawScores["not_hate"] == 0)
        #expect(server.stop() == 0)
    }

    @Test("/health and /v1/model describe the loaded model: stages, threshold, size, max_length")
    func healthAndModel() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = try ServingTestSupport.quantizedModel(in: folder)
        let server = try ServerProcess(model: model, arguments: ["--threshold", "0.25"])
        let client = server.client()
        let health = try client.get("/health")
        #expect(health.status == 200 && (health.json as? [String: Any])?["status"] as? String == "ok")
        let info = try client.get("/v1/model").json as? [String: Any] ?? [:]
        #expect(info["stages"] as? [String] == ["quantize_dynamic"])
        #expect(info["threshold"] as? Double == 0.25)
        #expect(info["max_length"] as? Int == 64)
        #expect((info["size_bytes"] as? Int ?? 0) > 10_000)
        #expect((info["summary"] as? String ?? "").contains("dynamic"))
        #expect(server.stop() == 0)
    }

    @Test("every bad request gets its status (400, 413, 404) and the server answers normally afterwards")
    func badRequests() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = try ServingTestSupport.floatModel(in: folder)
        let server = try ServerProcess(model: model, arguments: ["--max-texts", "4", "--max-body-bytes", "2048"])
        let client = server.client()
        let cases: [(String, String, Data, Int)] = [
            ("invalid JSON", "/v1/classify", Data("{\"texts\": [\"a\"".utf8), 400),
            ("invalid UTF-8", "/v1/classify", Data("{\"texts\": [\"".utf8) + Data([0xFF, 0xFE]) + Data("\"]}".utf8), 400),
            ("texts not a list", "/v1/classify", Data("{\"texts\": \"one\"}".utf8), 400),
            ("a text not a string", "/v1/classify", Data("{\"texts\": [1]}".utf8), 400),
            ("no texts field", "/v1/classify", Data("{\"text\": [\"a\"]}".utf8), 400),
            ("an empty list", "/v1/classify", Data("{\"texts\": []}".utf8), 400),
            ("too many texts", "/v1/classify", try JSONSerialization.data(withJSONObject: ["texts": ["a", "b", "c", "d", "e"]]), 400),
            ("a body over --max-body-bytes", "/v1/classify", try JSONSerialization.data(withJSONObject: ["texts": [String(repeating: "x", count: 8000)]]), 413),
            ("TEI inputs of the wrong type", "/predict", Data("{\"inputs\": 3}".utf8), 400),
            ("TEI empty inputs", "/predict", Data("{\"inputs\": []}".utf8), 400),
            ("a text longer than the model reads without truncate", "/predict",
             try JSONSerialization.data(withJSONObject: ["inputs": String(repeating: "খারাপ ", count: 100)]), 413),
            ("an unknown route", "/v2/classify", Data("{}".utf8), 404),
        ]
        for (name, path, body, status) in cases {
            let reply = try client.post(path, body: body)
            #expect(reply.status == status, "\(name): \(reply.status) \(reply.text)")
            let error = reply.json as? [String: Any]
            #expect(error?["error"] is String && error?["error_type"] is String, "\(name): \(reply.text)")
        }
        let truncated = try client.post("/predict", json: ["inputs": String(repeating: "খারাপ ", count: 100), "truncate": true])
        #expect(truncated.status == 200, "\(truncated.text)")
        let good = try client.post("/v1/classify", json: ["texts": ["ধন্যবাদ"]])
        #expect(good.status == 200 && ((good.json as? [String: Any])?["results"] as? [Any])?.count == 1)
        #expect(server.stop() == 0)
        // One structured line per request, with its status.
        #expect(server.logText.components(separatedBy: "status=413").count - 1 == 2)
        #expect(server.logText.contains("path=/v1/classify"))
    }

    @Test("with --api-key-file, a request without the bearer token is a 401; /health stays open")
    func bearerToken() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = try ServingTestSupport.floatModel(in: folder)
        let keyFile = folder.appendingPathComponent("key")
        try "s3cret-key\n".write(to: keyFile, atomically: true, encoding: .utf8)
        let server = try ServerProcess(model: model, arguments: ["--api-key-file", keyFile.path])
        let client = server.client()
        let body = ["texts": ["ধন্যবাদ"]]
        #expect(try client.post("/v1/classify", json: body).status == 401)
        #expect(try client.post("/v1/classify", json: body, headers: ["Authorization": "Bearer wrong-key"]).status == 401)
        #expect(try client.get("/v1/model").status == 401)
        #expect(try client.get("/health").status == 200)
        #expect(try client.post("/v1/classify", json: body, headers: ["Authorization": "Bearer s3cret-key"]).status == 200)
        #expect(server.stop() == 0)
    }

    @Test("a full queue answers 503 with Retry-After, and accepts again once it has room")
    func fullQueue() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = try ServingTestSupport.floatModel(in: folder)
        let server = try ServerProcess(model: model, arguments: ["--max-queue", "4", "--max-texts", "4", "--max-wait-ms", "1500"])
        let client = server.client()
        let first = LockedResults<Int>(count: 1)
        let done = DispatchSemaphore(value: 0)
        Thread {
            first.set(0, (try? client.post("/v1/classify", json: ["texts": ["a", "b", "c", "d"]]).status) ?? -1)
            done.signal()
        }.start()
        // Waits until the four texts are queued (they wait 1.5 s for company).
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline, Self.metric(try client.get("/metrics").text, "sankshep_queue_depth_texts") != 4 { usleep(10_000) }
        let refused = try client.post("/v1/classify", json: ["texts": ["e"]])
        #expect(refused.status == 503)
        #expect(refused.headers["retry-after"] == "1")
        done.wait()
        #expect(first.values == [200])
        #expect(try client.post("/v1/classify", json: ["texts": ["e"]]).status == 200)
        #expect(server.stop() == 0)
    }

    @Test("a client that stops in the middle of its request is disconnected after --read-timeout-s")
    func slowClient() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = try ServingTestSupport.floatModel(in: folder)
        let server = try ServerProcess(model: model, arguments: ["--read-timeout-s", "1"])
        let client = server.client()
        let socket = try client.connect()
        defer { close(socket) }
        try client.write(Data("POST /v1/classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{\"texts\"".utf8), to: socket)
        let started = Date()
        let answer = try client.readAll(socket)  // returns when the server closes the connection
        let waited = Date().timeIntervalSince(started)
        #expect(waited > 0.5 && waited < 10, "closed after \(waited) s")
        #expect(!String(decoding: answer, as: UTF8.self).contains("200 OK"))
        #expect(try client.post("/v1/classify", json: ["texts": ["ধন্যবাদ"]]).status == 200)
        #expect(server.stop() == 0)
    }

    @Test("concurrent requests share forward passes, and /metrics counts requests, latency, batch sizes and queue depth")
    func microBatchingAndMetrics() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = try ServingTestSupport.floatModel(in: folder)
        let server = try ServerProcess(model: model, arguments: ["--max-wait-ms", "300"])
        let client = server.client()
        let texts = ServingTestSupport.texts
        let alone = (try client.post("/v1/classify", json: ["texts": texts]).json as? [String: Any])?["results"] as? [[String: Any]] ?? []
        let replies = Self.concurrently(texts.count) { index in
            try? client.post("/v1/classify", json: ["texts": [texts[index]]])
        }
        for (index, reply) in replies.enumerated() {
            #expect(reply?.status == 200)
            let probability = ((reply?.json as? [String: Any])?["results"] as? [[String: Any]])?.first?["probability"] as? Double ?? .nan
            // Sharing a batch pads a text to its batch's longest: the probability stays that of the text alone.
            #expect(abs(probability - (alone[index]["probability"] as? Double ?? .nan)) < 1e-5)
        }
        let metrics = try client.get("/metrics")
        #expect(metrics.status == 200 && (metrics.headers["content-type"] ?? "").hasPrefix("text/plain"))
        let text = metrics.text
        let batches = Self.metric(text, "sankshep_batch_texts_count") ?? 0
        #expect(Self.metric(text, "sankshep_batch_texts_sum") == Double(2 * texts.count))
        #expect(batches >= 2 && batches < Double(1 + texts.count), "\(batches) forward passes")
        #expect(Self.metric(text, "sankshep_http_requests_total{route=\"/v1/classify\",status=\"200\"}") == Double(1 + texts.count))
        #expect(Self.metric(text, "sankshep_http_request_duration_seconds_count{route=\"/v1/classify\"}") == Double(1 + texts.count))
        #expect(Self.metric(text, "sankshep_queue_depth_texts") == 0)
        #expect(server.stop() == 0)
    }

    @Test("SIGTERM with requests queued answers every accepted request before the process exits")
    func sigtermDrains() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = try ServingTestSupport.floatModel(in: folder)
        // The requests wait 1.5 s for company, so all of them are queued when SIGTERM arrives.
        let server = try ServerProcess(model: model, arguments: ["--max-wait-ms", "1500"])
        let client = server.client()
        let count = 24
        let text = "ধন্যবাদ"
        let expected = (try client.post("/v1/classify", json: ["texts": [text]]).json as? [String: Any])?["results"] as? [[String: Any]]
        let probability = expected?.first?["probability"] as? Double
        let allQueued = LockedResults<Bool>(count: 1)
        Thread {
            let deadline = Date().addingTimeInterval(20)
            var queued = false
            while !queued, Date() < deadline {
                queued = Self.metric((try? client.get("/metrics").text) ?? "", "sankshep_queue_depth_texts") == Double(count)
                if !queued { usleep(5_000) }
            }
            allQueued.set(0, queued)
            kill(server.process.processIdentifier, SIGTERM)
        }.start()
        let replies = Self.concurrently(count) { _ in try? client.post("/v1/classify", json: ["texts": [text]]) }
        #expect(server.waitForExit(timeout: 30) == 0)
        #expect(allQueued.values == [true])
        #expect(replies.allSatisfy { $0?.status == 200 }, "\(replies.map { $0?.status ?? -1 })")
        let probabilities = replies.map { (($0?.json as? [String: Any])?["results"] as? [[String: Any]])?.first?["probability"] as? Double }
        #expect(probabilities.allSatisfy { $0 != nil && $0 == probability })
        #expect(server.logText.contains("stopped: every accepted request was answered"))
        #expect((try? client.get("/health")) == nil)
    }
}

final class LockedResults<T>: @unchecked Sendable {
    private var storage: [T?]
    private let lock = NSLock()
    init(count: Int) { storage = Array(repeating: nil, count: count) }
    func set(_ index: Int, _ value: T) { lock.lock(); storage[index] = value; lock.unlock() }
    var values: [T] { lock.lock(); defer { lock.unlock() }; return storage.compactMap { $0 } }
}
