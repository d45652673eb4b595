import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// One call to an MLflow tracking server, kept as bytes so it can wait in a queue or be written to
/// the unsent file as it would have been sent.
struct TrackingRequest: Sendable {
    var method: String
    /// Below the tracking URI, with its query: `/api/2.0/mlflow/runs/log-batch`.
    var path: String
    var body: Data?
    var contentType: String?
    /// The run it belongs to, for the warning and the unsent file.
    var runID: String?
    var runName: String?
    /// An artifact upload's local file: the unsent file names it instead of holding its bytes.
    var file: URL?
}

/// Why a call did not go through: the server could not be reached (no answer, a timeout, 5xx, 429:
/// worth retrying) or it answered no (4xx: retrying gives the same answer).
struct TrackingHTTPError: Error, Sendable {
    enum Kind: Sendable { case unreachable, refused }
    var kind: Kind
    var status: Int?
    /// MLflow's `error_code` (RESOURCE_DOES_NOT_EXIST, …) when the answer had one.
    var code: String?
    var message: String

    var description: String { status.map { "HTTP \($0): \(message)" } ?? message }
}

/// HTTP to one tracking server with Foundation's URLSession: the `Authorization` header MLflow's client
/// would send, JSON answers, and a short timeout so a server that stopped answering costs seconds.
struct MLflowHTTP: Sendable {
    /// The tracking URI without a trailing slash; endpoints are appended to it, as MLflow's client does.
    let base: String
    let authorization: String?
    let timeout: TimeInterval

    init(uri: URL, authorization: String?, timeout: TimeInterval) {
        var base = uri.absoluteString
        while base.hasSuffix("/") { base.removeLast() }
        self.base = base
        self.authorization = authorization
        self.timeout = timeout
    }

    /// Sends `request` and waits for the answer's body (2xx), or the reason it failed.
    func send(_ request: TrackingRequest) -> Result<Data, TrackingHTTPError> {
        guard let url = URL(string: base + request.path) else {
            return .failure(TrackingHTTPError(kind: .refused, message: "not a valid URL: \(base + request.path)"))
        }
        var urlRequest = URLRequest(url: url, timeoutInterval: timeout)
        urlRequest.httpMethod = request.method
        urlRequest.httpBody = request.body
        if let contentType = request.contentType { urlRequest.setValue(contentType, forHTTPHeaderField: "Content-Type") }
        if let authorization { urlRequest.setValue(authorization, forHTTPHeaderField: "Authorization") }
        urlRequest.setValue("sankshep", forHTTPHeaderField: "User-Agent")

        let answer = Answer()
        let done = DispatchSemaphore(value: 0)
        let task = Self.session.dataTask(with: urlRequest) { data, response, error in
            answer.set(data: data, response: response as? HTTPURLResponse, error: error)
            done.signal()
        }
        task.resume()
        // URLSession enforces the timeout; this bound only guards against a task that never calls back.
        if done.wait(timeout: .now() + timeout + 2) == .timedOut {
            task.cancel()
            return .failure(TrackingHTTPError(kind: .unreachable, message: "no answer within \(Int(timeout)) s"))
        }
        return answer.result(timeout: timeout)
    }

    private static let session: URLSession = {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.httpCookieAcceptPolicy = .never
        configuration.urlCache = nil
        return URLSession(configuration: configuration)
    }()

    /// The data task's answer, handed from URLSession's delegate queue to the waiting caller.
    private final class Answer: @unchecked Sendable {
        private let lock = NSLock()
        private var data: Data?
        private var response: HTTPURLResponse?
        private var error: Error?

        func set(data: Data?, response: HTTPURLResponse?, error: Error?) {
            lock.lock()
            defer { lock.unlock() }
            (self.data, self.response, self.error) = (data, response, error)
        }

        func result(timeout: TimeInterval) -> Result<Data, TrackingHTTPError> {
            lock.lock()
            defer { lock.unlock() }
            if let error {
                let nsError = error as NSError
                let reason = nsError.code == NSURLErrorTimedOut ? "no answer within \(Int(timeout)) s" : nsError.localizedDescription
                return .failure(TrackingHTTPError(kind: .unreachable, message: reason))
            }
            guard let response else { return .failure(TrackingHTTPError(kind: .unreachable, message: "no HTTP answer")) }
            let body = data ?? Data()
            if (200..<300).contains(response.statusCode) { return .success(body) }
            // MLflow answers errors as JSON, its security checks as one line of text; anything else (a
            // proxy's HTML page) is named by its status.
            let parsed = try? JSONDecoder().decode(ErrorBody.self, from: body)
            let text = String(decoding: body.prefix(300), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            let plain = !text.isEmpty && !text.contains("<") && !text.contains("\n") ? text : nil
            let message = parsed?.message?.replacingOccurrences(of: "\n", with: " ") ?? plain
                ?? HTTPURLResponse.localizedString(forStatusCode: response.statusCode)
            let retryable = response.statusCode >= 500 || response.statusCode == 429 || response.statusCode == 408
            return .failure(TrackingHTTPError(kind: retryable ? .unreachable : .refused, status: response.statusCode,
                                              code: parsed?.errorCode, message: message))
        }
    }

    /// MLflow's error answer: `{"error_code": "...", "message": "..."}`.
    private struct ErrorBody: Decodable {
        var errorCode: String?
        var message: String?
        enum CodingKeys: String, CodingKey { case errorCode = "error_code", message }
    }
}
