import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// The service's routes: health, model description, metrics, `/v1/classify` and TEI's `/predict`.
struct ServingRoutes: Sendable {
    struct Limits: Sendable {
        var maxBodyBytes: Int
        var maxTexts: Int
    }

    let engine: InferenceEngine
    let batcher: MicroBatcher
    let metrics: ServingMetrics
    let limits: Limits
    let info: ModelInfo

    /// TEI's label names for the two classes of the `/predict` answer.
    static let positiveLabel = "hate"
    static let negativeLabel = "not_hate"

    func router(apiKey: [UInt8]?, logger: Logger) -> Router<BasicRequestContext> {
        let router = Router()
        router.middlewares.add(RequestLogMiddleware(logger: logger, metrics: metrics))
        if let apiKey { router.middlewares.add(BearerAuthMiddleware(key: apiKey)) }
        router.get("/health") { _, _ in
            try ServingResponses.json(["status": "ok"])
        }
        router.get("/v1/model") { _, _ in
            try ServingResponses.json(info)
        }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: ResponseBody(byteBuffer: ByteBuffer(string: metrics.text())))
        }
        router.post("/v1/classify") { request, _ in
            try await classify(request)
        }
        router.post("/predict") { request, _ in
            try await predict(request)
        }
        return router
    }

    func classify(_ request: Request) async throws -> Response {
        let body = try ServingResponses.decode(ClassifyRequest.self, from: try await readBody(request))
        try validate(body.texts, field: "texts")
        let probabilities = try await batcher.probabilities(of: body.texts)
        let results = probabilities.map { ClassifyResponse.Result(probability: Double($0), label: engine.label(of: $0)) }
        return try ServingResponses.json(ClassifyResponse(results: results), texts: body.texts.count)
    }

    /// text-embeddings-inference's `/predict`: without `truncate: true` a text longer than the model
    /// reads is refused with 413, as TEI does; scores are probabilities, or with `raw_scores` the
    /// logits behind them (the positive class's logit, and 0 for the negative class, whose softmax
    /// is the same probability).
    func predict(_ request: Request) async throws -> Response {
        let body = try ServingResponses.decode(PredictRequest.self, from: try await readBody(request))
        let texts = body.inputs.texts
        try validate(texts, field: "inputs")
        if body.truncate != true {
            for (index, text) in texts.enumerated() {
                let tokens = engine.tokenCount(of: text)
                if tokens > engine.maxTokens {
                    throw ServingError.tooLarge("inputs[\(index)] has \(tokens) tokens, more than the \(engine.maxTokens) the model reads; send \"truncate\": true to cut it")
                }
            }
        }
        let probabilities = try await batcher.probabilities(of: texts)
        let raw = body.rawScores == true
        let scores: [[PredictScore]] = probabilities.map { probability in
            let p = Double(probability)
            // A float sigmoid saturates to 0 or 1; the logit is then the largest a float probability can tell.
            let q = min(max(p, Double(Float.leastNormalMagnitude)), 1 - Double(Float.ulpOfOne) / 2)
            let positive = raw ? log(q) - log1p(-q) : p
            let negative = raw ? 0 : 1 - p
            let pair = [PredictScore(label: Self.positiveLabel, score: positive), PredictScore(label: Self.negativeLabel, score: negative)]
            return positive >= negative ? pair : pair.reversed()
        }
        switch body.inputs {
        case .single: return try ServingResponses.json(scores[0], texts: 1)
        case .batch: return try ServingResponses.json(scores, texts: texts.count)
        }
    }

    func validate(_ texts: [String], field: String) throws {
        guard !texts.isEmpty else { throw ServingError.badRequest("\"\(field)\" is an empty list") }
        guard texts.count <= limits.maxTexts else {
            throw ServingError.badRequest("\"\(field)\" has \(texts.count) texts, more than --max-texts \(limits.maxTexts)")
        }
    }

    /// The body, refused with 413 as soon as it is known to exceed `--max-body-bytes`.
    func readBody(_ request: Request) async throws -> Data {
        let tooLarge = ServingError.tooLarge("the body is larger than --max-body-bytes \(limits.maxBodyBytes)")
        if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > limits.maxBodyBytes { throw tooLarge }
        var collected = ByteBuffer()
        for try await chunk in request.body {
            guard collected.readableBytes + chunk.readableBytes <= limits.maxBodyBytes else { throw tooLarge }
            var part = chunk
            collected.writeBuffer(&part)
        }
        return Data(collected.readableBytesView)
    }
}

/// JSON answers, the error body, and the parsing that turns a bad body into a one-line 400.
enum ServingResponses {
    /// Texts a response answered, for the request's log line (stripped from nothing: clients may read it).
    static let textCountHeader = HTTPField.Name("X-Sankshep-Texts")!

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    static func json(_ value: some Encodable, texts: Int? = nil, status: HTTPResponse.Status = .ok) throws -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let texts { headers[textCountHeader] = String(texts) }
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }

    static func error(_ error: ServingError) -> Response {
        var headers = error.headers
        headers[.contentType] = "application/json"
        let data = (try? encoder.encode(ErrorBody(error: error.message, errorType: error.kind))) ?? Data()
        return Response(status: error.status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// `T` from a JSON body; invalid UTF-8, invalid JSON and wrong types each get their own message.
    static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        guard isValidUTF8(data) else { throw ServingError.badRequest("the body is not valid UTF-8") }
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch let DecodingError.typeMismatch(_, context) {
            throw ServingError.badRequest("wrong type at \(path(context.codingPath)): \(context.debugDescription)")
        } catch let DecodingError.valueNotFound(_, context) {
            throw ServingError.badRequest("missing value at \(path(context.codingPath))")
        } catch let DecodingError.keyNotFound(key, context) {
            throw ServingError.badRequest("missing field \"\(path(context.codingPath + [key]))\"")
        } catch let DecodingError.dataCorrupted(context) where !context.codingPath.isEmpty {
            throw ServingError.badRequest("wrong value at \(path(context.codingPath)): \(context.debugDescription)")
        } catch {
            throw ServingError.badRequest("the body is not valid JSON")
        }
    }

    static func isValidUTF8(_ data: Data) -> Bool {
        var iterator = data.makeIterator()
        var decoder = UTF8()
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue: continue
            case .emptyInput: return true
            case .error: return false
            }
        }
    }

    static func path(_ codingPath: [CodingKey]) -> String {
        codingPath.isEmpty ? "the top level" : codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }
}
