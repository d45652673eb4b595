import Foundation

/// Delivers a job's calls to the tracking server in order, on one background queue, so training never
/// waits on the network: each call is tried a few times with growing pauses; when a call still cannot
/// reach the server, the server is taken as gone and every later call is kept instead of sent. What
/// was kept is written to a JSON-lines file at the end (`close`), with the reason, in the form it would
/// have been sent, so nothing logged is lost.
final class MLflowOutbox: @unchecked Sendable {
    /// What a waiting call (`exchange`) does when it cannot be delivered.
    enum OnFailure {
        /// Throws: the caller decides (an experiment lookup, a run the job cannot start without).
        case raise
        /// Keeps the call for the unsent file and answers nil: the job goes on.
        case keep
    }

    let http: MLflowHTTP
    /// Pauses between the tries of one call; one try more than pauses.
    let retryDelays: [TimeInterval]
    let unsentFile: URL

    private let queue = DispatchQueue(label: "sankshep.mlflow.outbox")
    // Touched only on `queue`.
    private var goneReason: String?
    private var kept: [(request: TrackingRequest, reason: String)] = []
    private var delivered = 0

    init(http: MLflowHTTP, retryDelays: [TimeInterval], unsentFile: URL) {
        self.http = http
        self.retryDelays = retryDelays
        self.unsentFile = unsentFile
    }

    /// Queues `request` behind the calls before it and returns at once.
    func post(_ request: TrackingRequest) {
        queue.async { [self] in
            if case .failure(let error) = deliver(request) { kept.append((request, error.description)) }
        }
    }

    /// Queues `request` to be kept, not sent (a call of a run the server never created).
    func keep(_ request: TrackingRequest, reason: String) {
        queue.async { [self] in kept.append((request, reason)) }
    }

    /// Sends `request` after the calls queued before it and waits for the answer.
    func exchange(_ request: TrackingRequest, onFailure: OnFailure) throws -> Data? {
        try queue.sync { [self] () throws -> Data? in
            switch deliver(request) {
            case .success(let data):
                return data
            case .failure(let error):
                guard onFailure == .keep else { throw error }
                kept.append((request, error.description))
                return nil
            }
        }
    }

    /// Waits for every queued call; writes the kept ones to `unsentFile` (after those of an earlier,
    /// resumed job) and answers the warning line, or nil when every call was delivered.
    func close(server: String, outputDirectory: URL) -> String? {
        queue.sync { [self] () -> String? in
            guard !kept.isEmpty else { return nil }
            var lines = (try? Data(contentsOf: unsentFile)) ?? Data()
            for (request, reason) in kept { lines.append(Self.jsonLine(request, reason: reason)) }
            let written: String
            do {
                try AtomicFile.write(lines, to: unsentFile)
                written = "the unsent calls are in \(unsentFile.path)"
            } catch {
                written = "the unsent calls could not be written to \(unsentFile.path) (\(error.localizedDescription))"
            }
            let runs = Set(kept.compactMap(\.request.runName)).sorted()
            let what = runs.isEmpty ? "" : " (runs \(runs.prefix(6).joined(separator: ", "))\(runs.count > 6 ? ", …" : ""))"
            let reason = goneReason ?? kept[0].reason
            let warning = "MLflow server \(server): \(kept.count) of \(kept.count + delivered) calls could not be logged\(what): \(reason); the job's outputs are in \(outputDirectory.path) and \(written)"
            kept.removeAll()
            return warning
        }
    }

    /// On `queue`: one call, tried until it goes through, is refused, or the tries run out.
    private func deliver(_ request: TrackingRequest) -> Result<Data, TrackingHTTPError> {
        if let goneReason {
            return .failure(TrackingHTTPError(kind: .unreachable, message: goneReason))
        }
        var attempt = 0
        while true {
            let result = http.send(request)
            switch result {
            case .success:
                delivered += 1
                return result
            case .failure(let error) where error.kind == .refused:
                return result
            case .failure(let error):
                guard attempt < retryDelays.count else {
                    goneReason = "the server stopped answering (\(error.description))"
                    return result
                }
                Thread.sleep(forTimeInterval: retryDelays[attempt])
                attempt += 1
            }
        }
    }

    /// `{"method", "path", "run_id", "run_name", "body" | "file", "reason"}`: the call as it would have
    /// been sent (a JSON body as JSON, an artifact as the path of its local file).
    static func jsonLine(_ request: TrackingRequest, reason: String) -> Data {
        var fields: [String: Any] = ["method": request.method, "path": request.path, "reason": reason]
        if let runID = request.runID { fields["run_id"] = runID }
        if let runName = request.runName { fields["run_name"] = runName }
        if let file = request.file {
            fields["file"] = file.path
        } else if let body = request.body {
            fields["body"] = (try? JSONSerialization.jsonObject(with: body)) ?? String(decoding: body, as: UTF8.self)
        }
        var line = (try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        line.append(0x0A)
        return line
    }
}
