import Foundation
import Testing
@testable import Host

/// The answers of a running server against docs/openapi.yaml, successes and errors alike.
@Suite("sankshep serve answers as docs/openapi.yaml says", .serialized)
struct OpenAPIConformanceTests {
    @Test("the validator refuses an answer that breaks the document")
    func validatorCatchesViolations() throws {
        let document = try OpenAPIDocument.load()
        #expect(document.problems(path: "/v1/classify", method: "POST", status: 200,
                                  value: ["results": [["probability": 0.5, "label": 0] as [String: Any]]]).isEmpty)
        #expect(!document.problems(path: "/v1/classify", method: "POST", status: 200,
                                   value: ["results": [["probability": "0.5", "label": 0] as [String: Any]]]).isEmpty)
        #expect(!document.problems(path: "/v1/classify", method: "POST", status: 200,
                                   value: ["results": [["probability": 1.5, "label": 2]]]).isEmpty)
        #expect(!document.problems(path: "/v1/classify", method: "POST", status: 200, value: ["result": []]).isEmpty)
        #expect(!document.problems(path: "/v1/classify", method: "POST", status: 418, value: [:]).isEmpty)
    }

    @Test("every route's success and error answers conform to the document")
    func answersConform() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let document = try OpenAPIDocument.load()
        let model = try ServingTestSupport.floatModel(in: folder)
        let keyFile = folder.appendingPathComponent("key")
        try "key".write(to: keyFile, atomically: true, encoding: .utf8)
        let server = try ServerProcess(model: model, arguments: ["--api-key-file", keyFile.path, "--max-texts", "2", "--max-body-bytes", "4096"])
        let client = server.client()
        let auth = ["Authorization": "Bearer key"]
        let texts = Array(ServingTestSupport.texts.prefix(2))
        let exchanges: [(String, String, HTTPTestClient.Reply)] = [
            ("GET", "/health", try client.get("/health")),
            ("GET", "/v1/model", try client.get("/v1/model", headers: auth)),
            ("GET", "/v1/model", try client.get("/v1/model")),
            ("POST", "/v1/classify", try client.post("/v1/classify", json: ["texts": texts], headers: auth)),
            ("POST", "/v1/classify", try client.post("/v1/classify", json: ["texts": ["a", "b", "c"]], headers: auth)),
            ("POST", "/v1/classify", try client.post("/v1/classify", body: Data(count: 5000), headers: auth)),
            ("POST", "/predict", try client.post("/predict", json: ["inputs": texts[0]], headers: auth)),
            ("POST", "/predict", try client.post("/predict", json: ["inputs": texts, "raw_scores": true], headers: auth)),
            ("POST", "/predict", try client.post("/predict", json: ["inputs": [1, 2]], headers: auth)),
        ]
        #expect(Set(exchanges.map(\.2.status)) == [200, 400, 401, 413])
        for (method, path, reply) in exchanges {
            guard let value = reply.json else {
                Issue.record("\(method) \(path) \(reply.status): not JSON: \(reply.text)")
                continue
            }
            let problems = document.problems(path: path, method: method, status: reply.status, value: value)
            #expect(problems.isEmpty, "\(method) \(path) \(reply.status): \(problems)")
        }
        let metrics = try client.get("/metrics", headers: auth)
        #expect(metrics.status == 200)
        #expect(document.problems(path: "/metrics", method: "GET", status: 200, contentType: "text/plain", value: metrics.text).isEmpty)
        #expect(server.stop() == 0)
    }
}
