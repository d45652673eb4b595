import Foundation

/// Where a pipeline logs its runs: MLflow's file store (`MLflowStore`) or an MLflow tracking server
/// (`MLflowServer`). The pipeline sees only these operations, so both keep the same runs, params,
/// metrics, tags and artifacts.
protocol TrackingStore: Sendable {
    associatedtype Run: TrackingRun

    /// The id of the active experiment called `name`, created if there is none.
    func experiment(named name: String) throws -> String
    /// Starts a run (status RUNNING) with the tags MLflow's own client sets; `parentRunID` nests it
    /// under another run in MLflow's UI.
    func startRun(experimentID: String, name: String, tags: [String: String], parentRunID: String?, startTime: Date) throws -> Run
    /// Reopens a run logged earlier (a resumed job), marking it RUNNING again; throws if there is none.
    func resumeRun(experimentID: String, runID: String) throws -> Run
    /// Delivers whatever is still on its way and answers a one-line warning when something could not
    /// be logged (nil when everything was).
    func close() -> String?
}

extension TrackingStore {
    func startRun(experimentID: String, name: String, tags: [String: String] = [:], parentRunID: String? = nil) throws -> Run {
        try startRun(experimentID: experimentID, name: name, tags: tags, parentRunID: parentRunID, startTime: Date())
    }

    /// `tags` plus the ones MLflow's own client sets on every run it starts (name, user, source, parent).
    static func runTags(_ tags: [String: String], name: String, user: String, parentRunID: String?) -> [String: String] {
        var all = tags
        all["mlflow.runName"] = name
        all["mlflow.user"] = user
        all["mlflow.source.type"] = "LOCAL"
        all["mlflow.source.name"] = "sankshep"
        if let parentRunID { all["mlflow.parentRunId"] = parentRunID }
        return all
    }
}

/// One MLflow run: params, per-step metrics, tags and artifacts, then `finish`.
protocol TrackingRun: Sendable {
    /// 32 lowercase hex digits, as MLflow makes them.
    var runID: String { get }
    /// Params are fixed once logged, as in MLflow: the same value again is fine, a different one is not.
    func logParams(_ params: [String: String]) throws
    /// One value per key at `step` (the epoch or training step).
    func logMetrics(_ metrics: [String: Double], step: Int, timestamp: Date) throws
    func setTag(_ key: String, _ value: String) throws
    /// Copies `file` into the run's artifacts, under `directory` when given.
    func logArtifact(_ file: URL, directory: String?) throws
    /// Marks the run finished (or failed / killed) with its end time.
    func finish(status: TrackingRunStatus, endTime: Date) throws
}

extension TrackingRun {
    func logMetrics(_ metrics: [String: Double], step: Int) throws {
        try logMetrics(metrics, step: step, timestamp: Date())
    }

    func logArtifact(_ file: URL) throws { try logArtifact(file, directory: nil) }

    func finish(status: TrackingRunStatus = .finished) throws { try finish(status: status, endTime: Date()) }
}

/// MLflow's `RunStatus`: the number a file store's meta.yaml holds, the name the REST API takes.
enum TrackingRunStatus: Int, Sendable {
    case running = 1, scheduled = 2, finished = 3, failed = 4, killed = 5

    var name: String {
        switch self {
        case .running: "RUNNING"
        case .scheduled: "SCHEDULED"
        case .finished: "FINISHED"
        case .failed: "FAILED"
        case .killed: "KILLED"
        }
    }
}

/// Where `sankshep run` logs, from `--mlflow_tracking_uri` or `MLFLOW_TRACKING_URI` (the option wins):
/// an `http(s)://` URI is a tracking server; a `file:` URI or a plain path is a file store; nothing
/// set is the file store `<output_dir>/mlruns`.
enum TrackingLocation: Equatable {
    case fileStore(URL)
    case server(URL)

    static let environmentVariable = "MLFLOW_TRACKING_URI"

    static func resolve(option: String?, environment: [String: String], outputDirectory: URL) throws -> TrackingLocation {
        let (value, source) = option.map { ($0, "--mlflow_tracking_uri") }
            ?? (environment[environmentVariable] ?? "", environmentVariable)
        let text = value.trimmingCharacters(in: .whitespaces)
        if text.isEmpty { return .fileStore(outputDirectory.appendingPathComponent("mlruns")) }
        let lowercased = text.lowercased()
        if lowercased.hasPrefix("http://") || lowercased.hasPrefix("https://") {
            guard let url = URL(string: text), let host = url.host, !host.isEmpty else {
                throw TrackingError(path: source, problem: "'\(text)' is not a valid http(s) URL")
            }
            return .server(url)
        }
        if lowercased.hasPrefix("file:") {
            guard let url = URL(string: text), !url.path.isEmpty else {
                throw TrackingError(path: source, problem: "'\(text)' is not a valid file: URI (write file:///absolute/path)")
            }
            return .fileStore(URL(fileURLWithPath: url.path))
        }
        // Another scheme (sqlite:, postgresql:, databricks, …) names a store only MLflow's Python side opens.
        if let colon = text.firstIndex(of: ":"), text.distance(from: text.startIndex, to: colon) > 1,
           text[..<colon].allSatisfy({ $0.isLetter || $0.isNumber || "+.-".contains($0) }) {
            throw TrackingError(path: source, problem: "'\(text)': Sankshep logs to an MLflow tracking server (http://… or https://…) or a file store (file:… or a folder); serve a database with `mlflow server --backend-store-uri \(text)` and give its http:// address")
        }
        return .fileStore(URL(fileURLWithPath: text))
    }
}

/// The value of an HTTP `Authorization` header as MLflow's client makes it from the environment:
/// basic auth when `MLFLOW_TRACKING_USERNAME` and `MLFLOW_TRACKING_PASSWORD` are both set, else a
/// bearer `MLFLOW_TRACKING_TOKEN`, else none.
enum TrackingCredentials {
    static func authorization(environment: [String: String]) -> String? {
        if let user = environment["MLFLOW_TRACKING_USERNAME"], !user.isEmpty,
           let password = environment["MLFLOW_TRACKING_PASSWORD"], !password.isEmpty {
            return "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
        }
        if let token = environment["MLFLOW_TRACKING_TOKEN"], !token.isEmpty { return "Bearer \(token)" }
        return nil
    }
}
