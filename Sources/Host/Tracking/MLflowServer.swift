import Foundation

/// An MLflow tracking server (`mlflow server --backend-store-uri sqlite:///…`), through its REST API 2.0:
///
///     GET  /api/2.0/mlflow/experiments/get-by-name   the experiment, or 404
///     POST /api/2.0/mlflow/experiments/create        when it is missing
///     POST /api/2.0/mlflow/runs/create               a run, with its tags; answers run_id and artifact_uri
///     GET  /api/2.0/mlflow/runs/get                  a run to resume
///     POST /api/2.0/mlflow/runs/log-batch            params, metrics and tags, in batches
///     POST /api/2.0/mlflow/runs/update               status and end time
///     PUT  /api/2.0/mlflow-artifacts/artifacts/<experiment>/<run>/artifacts/<path>
///                                                    an artifact, through the server's artifact proxy
///
/// Looking up the experiment and starting the job's first run wait for the server, and their failure
/// is an error (the job stops before any work). After that, every call goes through `MLflowOutbox`
/// in the background: a server that goes away mid-job costs a few seconds of retries, then the job
/// goes on and `close` tells what could not be logged.
struct MLflowServer: TrackingStore {
    let uri: URL
    /// Who the runs are by: their `mlflow.user` tag and `user_id`.
    let user: String
    let outbox: MLflowOutbox
    private let state = StartState()

    /// The REST API's tracking endpoints, and the artifact proxy's, below the tracking URI.
    static let api = "/api/2.0/mlflow/"
    static let artifactsAPI = "/api/2.0/mlflow-artifacts/artifacts/"

    /// In --output_dir: the calls that could not be delivered, one JSON object a line.
    static let unsentFileName = "mlflow_unsent.jsonl"

    /// MLflow's limits per `runs/log-batch` call.
    static let maxMetricsPerBatch = 1000
    static let maxParamsOrTagsPerBatch = 100

    init(uri: URL, user: String, authorization: String?, unsentFile: URL,
         timeout: TimeInterval = 5, retryDelays: [TimeInterval] = [0.5, 1.5]) {
        self.uri = uri
        self.user = user
        outbox = MLflowOutbox(http: MLflowHTTP(uri: uri, authorization: authorization, timeout: timeout),
                              retryDelays: retryDelays, unsentFile: unsentFile)
    }

    func experiment(named name: String) throws -> String {
        guard !name.isEmpty else { throw TrackingError(path: uri.absoluteString, problem: "an experiment needs a name") }
        if let found = try lookUpExperiment(name) { return found }
        do {
            let data = try outbox.exchange(Self.post(Self.api + "experiments/create", ["name": name]), onFailure: .raise)
            return try decode(CreatedExperiment.self, data).experimentID
        } catch let error as TrackingHTTPError where error.code == "RESOURCE_ALREADY_EXISTS" {
            // Created by another job since the lookup.
            if let found = try lookUpExperiment(name) { return found }
            throw failure(error, doing: "create the experiment '\(name)'")
        } catch let error as TrackingHTTPError {
            throw failure(error, doing: "create the experiment '\(name)'")
        }
    }

    private func lookUpExperiment(_ name: String) throws -> String? {
        var components = URLComponents()
        components.queryItems = [URLQueryItem(name: "experiment_name", value: name)]
        let query = components.percentEncodedQuery?.replacingOccurrences(of: "+", with: "%2B") ?? ""
        let request = TrackingRequest(method: "GET", path: Self.api + "experiments/get-by-name?" + query)
        do {
            let experiment = try decode(FoundExperiment.self, outbox.exchange(request, onFailure: .raise)).experiment
            guard experiment.lifecycleStage != "deleted" else {
                throw TrackingError(path: uri.absoluteString, problem: "the experiment '\(name)' is deleted; restore it (`mlflow experiments restore --experiment-id \(experiment.experimentID)`) or choose another --mlflow_experiment_name")
            }
            return experiment.experimentID
        } catch let error as TrackingHTTPError where error.code == "RESOURCE_DOES_NOT_EXIST" {
            return nil
        } catch let error as TrackingHTTPError {
            throw failure(error, doing: "look up the experiment '\(name)'")
        }
    }

    func startRun(experimentID: String, name: String, tags: [String: String], parentRunID: String?, startTime: Date) throws -> MLflowServerRun {
        let allTags = Self.runTags(tags, name: name, user: user, parentRunID: parentRunID)
        var request = Self.post(Self.api + "runs/create", CreateRun(
            experimentID: experimentID, userID: user, runName: name, startTime: MLflowStore.milliseconds(startTime),
            tags: allTags.sorted { $0.key < $1.key }.map { KeyValue(key: $0.key, value: $0.value) }))
        request.runName = name
        let started = state.started
        do {
            guard let data = try outbox.exchange(request, onFailure: started ? .keep : .raise) else {
                // The server went away: the run's calls are kept under a local id for the unsent file.
                return unsentRun(name: name, experimentID: experimentID)
            }
            guard let info = try? decode(RunAnswer.self, data).run.info else {
                let error = TrackingHTTPError(kind: .refused, message: "the answer to runs/create is not MLflow's REST API")
                guard started else { throw error }
                outbox.keep(request, reason: error.message)
                return unsentRun(name: name, experimentID: experimentID)
            }
            state.markStarted()
            return MLflowServerRun(server: self, runID: info.runID, name: name, experimentID: info.experimentID,
                                   artifactURI: info.artifactURI, delivered: true)
        } catch let error as TrackingHTTPError {
            throw failure(error, doing: "start the run '\(name)'")
        }
    }

    /// A run the server did not create: its calls are kept, under a local id, for the unsent file.
    private func unsentRun(name: String, experimentID: String) -> MLflowServerRun {
        MLflowServerRun(server: self, runID: "unsent-" + UUID().uuidString.lowercased(), name: name,
                        experimentID: experimentID, artifactURI: nil, delivered: false)
    }

    func resumeRun(experimentID: String, runID: String) throws -> MLflowServerRun {
        let query = runID.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? runID
        let info: RunInfo
        do {
            info = try decode(RunAnswer.self, outbox.exchange(TrackingRequest(method: "GET", path: Self.api + "runs/get?run_id=" + query),
                                                               onFailure: .raise)).run.info
        } catch let error as TrackingHTTPError {
            throw failure(error, doing: "resume the run \(runID)")
        }
        guard info.experimentID == experimentID, info.lifecycleStage != "deleted" else {
            throw TrackingError(path: uri.absoluteString, problem: "run \(runID) is not an active run of experiment \(experimentID)")
        }
        state.markStarted()
        let run = MLflowServerRun(server: self, runID: info.runID, name: info.runName ?? runID, experimentID: info.experimentID,
                                  artifactURI: info.artifactURI, delivered: true)
        run.update(status: .running, endTime: nil)
        return run
    }

    func close() -> String? {
        outbox.close(server: uri.absoluteString, outputDirectory: outbox.unsentFile.deletingLastPathComponent())
    }

    // MARK: - Requests

    static func post(_ path: String, _ body: some Encodable) -> TrackingRequest {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // The REST API's JSON (protobuf's mapping) spells the non-finite doubles as these strings.
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        // Only the request types below are encoded, none of which can fail.
        let data = (try? encoder.encode(body)) ?? Data("{}".utf8)
        return TrackingRequest(method: "POST", path: path, body: data, contentType: "application/json")
    }

    private func decode<T: Decodable>(_ type: T.Type, _ data: Data?) throws -> T {
        guard let data, let value = try? JSONDecoder().decode(type, from: data) else {
            throw TrackingError(path: uri.absoluteString, problem: "the answer is not MLflow's REST API (is this an MLflow tracking server?)")
        }
        return value
    }

    /// One line for an error at start: what failed, why, and what to do.
    private func failure(_ error: TrackingHTTPError, doing action: String) -> TrackingError {
        let hint: String
        switch (error.kind, error.status) {
        case (.unreachable, _):
            hint = "; start the server, or unset MLFLOW_TRACKING_URI / --mlflow_tracking_uri to log to the file store in --output_dir"
        case (_, 403?) where error.message.contains("Host header"):
            hint = "; the server accepts only the host names of its --allowed-hosts: start it with this address among them"
        case (_, 401?), (_, 403?):
            hint = "; check MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
        case (_, 404?) where error.code == nil:
            hint = "; is this the address of an MLflow tracking server?"
        default:
            hint = ""
        }
        return TrackingError(path: uri.absoluteString, problem: "cannot \(action): \(error.description)\(hint)")
    }

    /// Whether the job has started its first run, after which a failing call no longer stops it.
    private final class StartState: @unchecked Sendable {
        private let lock = NSLock()
        private var value = false
        var started: Bool {
            lock.lock()
            defer { lock.unlock() }
            return value
        }

        func markStarted() {
            lock.lock()
            defer { lock.unlock() }
            value = true
        }
    }

    // MARK: - REST API shapes

    struct KeyValue: Codable { var key: String; var value: String }

    struct Metric: Encodable {
        var key: String
        var value: Double
        var timestamp: Int64
        var step: Int
    }

    struct LogBatch: Encodable {
        var runID: String
        var metrics: [Metric]?
        var params: [KeyValue]?
        var tags: [KeyValue]?
        enum CodingKeys: String, CodingKey { case runID = "run_id", metrics, params, tags }
    }

    struct UpdateRun: Encodable {
        var runID: String
        var status: String
        var endTime: Int64?
        enum CodingKeys: String, CodingKey { case runID = "run_id", status, endTime = "end_time" }
    }

    private struct CreateRun: Encodable {
        var experimentID: String
        var userID: String
        var runName: String
        var startTime: Int64
        var tags: [KeyValue]
        enum CodingKeys: String, CodingKey {
            case experimentID = "experiment_id", userID = "user_id", runName = "run_name", startTime = "start_time", tags
        }
    }

    private struct CreatedExperiment: Decodable {
        var experimentID: String
        enum CodingKeys: String, CodingKey { case experimentID = "experiment_id" }
    }

    private struct FoundExperiment: Decodable {
        struct Experiment: Decodable {
            var experimentID: String
            var lifecycleStage: String?
            enum CodingKeys: String, CodingKey { case experimentID = "experiment_id", lifecycleStage = "lifecycle_stage" }
        }
        var experiment: Experiment
    }

    private struct RunInfo: Decodable {
        var runID: String
        var experimentID: String
        var runName: String?
        var artifactURI: String?
        var lifecycleStage: String?
        enum CodingKeys: String, CodingKey {
            case runID = "run_id", experimentID = "experiment_id", runName = "run_name", artifactURI = "artifact_uri",
                 lifecycleStage = "lifecycle_stage"
        }
    }

    private struct RunAnswer: Decodable {
        struct Run: Decodable { var info: RunInfo }
        var run: Run
    }
}

/// A run on a tracking server. Its calls return at once; the outbox delivers them in order.
struct MLflowServerRun: TrackingRun {
    let server: MLflowServer
    let runID: String
    let name: String
    let experimentID: String
    /// Where the server keeps the run's artifacts: `mlflow-artifacts:/<experiment>/<run>/artifacts`
    /// behind its artifact proxy, or another store.
    let artifactURI: String?
    /// False for a run the server never created (it went away first): its calls are kept, not sent.
    let delivered: Bool

    func logParams(_ params: [String: String]) throws {
        let pairs = params.sorted { $0.key < $1.key }.map { MLflowServer.KeyValue(key: $0.key, value: $0.value) }
        for start in stride(from: 0, to: pairs.count, by: MLflowServer.maxParamsOrTagsPerBatch) {
            let chunk = Array(pairs[start..<min(start + MLflowServer.maxParamsOrTagsPerBatch, pairs.count)])
            send(MLflowServer.post(MLflowServer.api + "runs/log-batch", MLflowServer.LogBatch(runID: runID, params: chunk)))
        }
    }

    func logMetrics(_ metrics: [String: Double], step: Int, timestamp: Date) throws {
        let milliseconds = MLflowStore.milliseconds(timestamp)
        let values = metrics.sorted { $0.key < $1.key }.map {
            MLflowServer.Metric(key: $0.key, value: $0.value, timestamp: milliseconds, step: step)
        }
        for start in stride(from: 0, to: values.count, by: MLflowServer.maxMetricsPerBatch) {
            let chunk = Array(values[start..<min(start + MLflowServer.maxMetricsPerBatch, values.count)])
            send(MLflowServer.post(MLflowServer.api + "runs/log-batch", MLflowServer.LogBatch(runID: runID, metrics: chunk)))
        }
    }

    func setTag(_ key: String, _ value: String) throws {
        send(MLflowServer.post(MLflowServer.api + "runs/log-batch",
                               MLflowServer.LogBatch(runID: runID, tags: [MLflowServer.KeyValue(key: key, value: value)])))
    }

    func logArtifact(_ file: URL, directory folder: String?) throws {
        let data: Data
        do { data = try Data(contentsOf: file) } catch {
            throw TrackingError(path: file.path, problem: "cannot read the artifact (\(error.localizedDescription))")
        }
        let relative = ([folder].compactMap { $0 } + [file.lastPathComponent]).joined(separator: "/")
        var request = TrackingRequest(method: "PUT", path: "", body: data, contentType: Self.contentType(of: file))
        request.file = file
        // A run's artifacts are below `<experiment>/<run>/artifacts` of the proxy unless its answer said otherwise.
        let artifactURI = artifactURI ?? "mlflow-artifacts:/\(experimentID)/\(runID)/artifacts"
        switch Self.artifactDestination(artifactURI: artifactURI, relativePath: relative) {
        case .proxy(let path):
            request.path = path
            send(request)
        case .localFolder(let destination):
            // A server that does not proxy artifacts but keeps them in a folder of this machine: written
            // there, as MLflow's own client does.
            do { try AtomicFile.write(data, to: destination) } catch {
                request.path = destination.path
                server.outbox.keep(request, reason: "cannot write \(destination.path) (\(error.localizedDescription))")
            }
        case .unsupported(let reason):
            request.path = artifactURI + "/" + relative
            server.outbox.keep(request, reason: reason)
        }
    }

    func finish(status: TrackingRunStatus, endTime: Date) throws {
        update(status: status, endTime: endTime)
    }

    func update(status: TrackingRunStatus, endTime: Date?) {
        send(MLflowServer.post(MLflowServer.api + "runs/update", MLflowServer.UpdateRun(
            runID: runID, status: status.name, endTime: endTime.map(MLflowStore.milliseconds))))
    }

    private func send(_ request: TrackingRequest) {
        var request = request
        request.runID = runID
        request.runName = name
        if delivered {
            server.outbox.post(request)
        } else {
            server.outbox.keep(request, reason: "its run could not be created on the server")
        }
    }

    enum ArtifactDestination: Equatable {
        /// A path below the tracking URI.
        case proxy(String)
        case localFolder(URL)
        case unsupported(String)
    }

    /// Where an artifact goes, from the run's `artifact_uri`: `mlflow-artifacts:` is the server's proxy
    /// (`/api/2.0/mlflow-artifacts/artifacts/<path>`); `file:` or an absolute path is a folder here.
    static func artifactDestination(artifactURI: String, relativePath: String) -> ArtifactDestination {
        let encoded = relativePath.split(separator: "/").map {
            String($0).addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? String($0)
        }.joined(separator: "/")
        if artifactURI.hasPrefix("mlflow-artifacts:") {
            // `mlflow-artifacts:/1/<run>/artifacts` or `mlflow-artifacts://host:port/1/<run>/artifacts`.
            var rest = String(artifactURI.dropFirst("mlflow-artifacts:".count))
            if rest.hasPrefix("//") {
                rest.removeFirst(2)
                rest = rest.firstIndex(of: "/").map { String(rest[$0...]) } ?? ""
            }
            while rest.hasPrefix("/") { rest.removeFirst() }
            while rest.hasSuffix("/") { rest.removeLast() }
            return .proxy(MLflowServer.artifactsAPI + "\(rest)/\(encoded)")
        }
        // An http(s) artifact root that is the proxy's own address.
        let anchor = MLflowServer.artifactsAPI
        if artifactURI.hasPrefix("http://") || artifactURI.hasPrefix("https://"), let range = artifactURI.range(of: anchor) {
            var rest = String(artifactURI[range.upperBound...])
            while rest.hasSuffix("/") { rest.removeLast() }
            return .proxy(anchor + rest + "/" + encoded)
        }
        if artifactURI.hasPrefix("file:") || artifactURI.hasPrefix("/") {
            let path = artifactURI.hasPrefix("/") ? artifactURI : URL(string: artifactURI)?.path ?? ""
            guard !path.isEmpty else { return .unsupported("the run's artifact_uri \(artifactURI) is not a folder") }
            return .localFolder(URL(fileURLWithPath: path).appendingPathComponent(relativePath))
        }
        return .unsupported("the run's artifacts go to \(artifactURI), which Sankshep cannot write to; start the server with --serve-artifacts (the default) so they go through its proxy")
    }

    static func contentType(of file: URL) -> String {
        switch file.pathExtension.lowercased() {
        case "csv": "text/csv"
        case "html": "text/html"
        case "json": "application/json"
        case "txt", "md": "text/plain"
        default: "application/octet-stream"
        }
    }
}
