import Foundation
import Hummingbird

/// `POST /v1/classify` body: `{"texts": ["…", …]}`.
struct ClassifyRequest: Decodable {
    let texts: [String]
}

/// `POST /v1/classify` answer: one result per text, in the request's order.
struct ClassifyResponse: Encodable {
    struct Result: Encodable {
        let probability: Double
        let label: Int
    }
    let results: [Result]
}

/// `POST /predict` body in text-embeddings-inference's classification format.
struct PredictRequest: Decodable {
    let inputs: PredictInputs
    let truncate: Bool?
    let rawScores: Bool?

    enum CodingKeys: String, CodingKey {
        case inputs, truncate
        case rawScores = "raw_scores"
    }
}

/// TEI's `inputs`: one text (answered with one list of scores) or a list of texts (a list of lists).
/// Sentence pairs, which TEI also takes, have no meaning for this single-text classifier.
enum PredictInputs: Decodable {
    case single(String)
    case batch([String])

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            self = .single(text)
        } else {
            self = .batch(try container.decode([String].self))
        }
    }

    var texts: [String] {
        switch self {
        case .single(let text): [text]
        case .batch(let texts): texts
        }
    }
}

/// One entry of a TEI `/predict` answer.
struct PredictScore: Encodable {
    let label: String
    let score: Double
}

/// `GET /v1/model`: what is being served.
struct ModelInfo: Encodable {
    let model: String
    let summary: String
    let stages: [String]
    let threshold: Double
    let sizeBytes: Int
    let parameters: Int
    let nonZeroParameters: Int
    let maxLength: Int
    let maxBatch: Int

    enum CodingKeys: String, CodingKey {
        case model, summary, stages, threshold, parameters
        case sizeBytes = "size_bytes"
        case nonZeroParameters = "non_zero_parameters"
        case maxLength = "max_length"
        case maxBatch = "max_batch"
    }
}

/// Every error answer: a status, TEI's `{"error": …, "error_type": …}` body, and extra headers
/// (Retry-After on 503, WWW-Authenticate on 401).
struct ServingError: Error, CustomStringConvertible {
    let status: HTTPResponse.Status
    let kind: String
    let message: String
    var headers: HTTPFields = [:]

    var description: String { "\(status.code) \(message)" }

    static func badRequest(_ message: String) -> ServingError {
        ServingError(status: .badRequest, kind: "validation", message: message)
    }

    static func tooLarge(_ message: String) -> ServingError {
        ServingError(status: .contentTooLarge, kind: "validation", message: message)
    }

    static let unauthorized = ServingError(status: .unauthorized, kind: "authentication",
                                           message: "missing or wrong bearer token",
                                           headers: [.wwwAuthenticate: "Bearer"])

    static let queueFull = ServingError(status: .serviceUnavailable, kind: "overloaded",
                                        message: "the request queue is full; retry later",
                                        headers: [.retryAfter: "1"])

    static func notFound(_ path: String) -> ServingError {
        ServingError(status: .notFound, kind: "not_found", message: "no route \(path)")
    }

    static func inference(_ error: Error) -> ServingError {
        ServingError(status: .internalServerError, kind: "backend", message: "\(error)")
    }
}

/// The error body, the same shape text-embeddings-inference answers with.
struct ErrorBody: Encodable {
    let error: String
    let errorType: String

    enum CodingKeys: String, CodingKey {
        case error
        case errorType = "error_type"
    }
}
