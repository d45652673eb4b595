import Foundation
import Yams

/// A problem writing or reading the MLflow store; names the path or key.
struct TrackingError: Error, CustomStringConvertible, Equatable {
    let path: String
    let problem: String
    var description: String { "\(path): \(problem)" }
}

/// An MLflow *file store* (`mlruns/`), written directly in the layout MLflow's `FileStore` reads, so
/// `mlflow ui --backend-store-uri ./outputs/mlruns` and `mlflow.search_runs` show Sankshep's runs with
/// no Python in the training process:
///
///     mlruns/
///       0/meta.yaml                      the "Default" experiment MLflow expects
///       <experiment_id>/meta.yaml        name, artifact_location, lifecycle_stage, times
///       <experiment_id>/<run_id>/
///         meta.yaml                      run_id, run_uuid, run_name, status (int), times, user, …
///         params/<key>                   the value, as text
///         metrics/<key>                  one line per value: "<timestamp_ms> <value> <step>"
///         tags/<key>                     the value, as text (mlflow.runName, mlflow.user, …)
///         artifacts/                   copies of the files logged as artifacts
///
/// Every file is replaced atomically (written beside, then renamed), so a crash never leaves half a
/// file that would make MLflow refuse the whole run; appending a metric rewrites its small file.
struct MLflowStore: TrackingStore {
    /// The `mlruns` folder.
    let root: URL
    /// Who the runs are by: their `mlflow.user` tag and meta.yaml `user_id`.
    let user: String

    static let defaultExperimentID = "0"

    /// MLflow's `RunStatus` numbers, as stored in a run's meta.yaml.
    typealias RunStatus = TrackingRunStatus

    /// Opens the store at `root`, creating it with MLflow's Default experiment (id 0) if missing.
    init(root: URL, user: String = MLflowStore.userName) throws {
        self.root = root.standardizedFileURL
        self.user = user
        let defaultMeta = self.root.appendingPathComponent("\(Self.defaultExperimentID)/meta.yaml")
        if !FileManager.default.fileExists(atPath: defaultMeta.path) {
            try writeExperimentMeta(id: Self.defaultExperimentID, name: "Default")
        }
        try createDirectory(self.root.appendingPathComponent(".trash"))
    }

    /// The id of the active experiment called `name`, created if there is none.
    func experiment(named name: String) throws -> String {
        guard !name.isEmpty else { throw TrackingError(path: root.path, problem: "an experiment needs a name") }
        if let existing = try experimentID(named: name) { return existing }
        // MLflow makes ids from the time and a random part; any unused decimal string is accepted.
        var id: String
        repeat {
            id = String(UInt64(Date().timeIntervalSince1970 * 1000) * 1000 + UInt64.random(in: 0..<1000))
        } while FileManager.default.fileExists(atPath: root.appendingPathComponent(id).path)
        try writeExperimentMeta(id: id, name: name)
        return id
    }

    /// The id of the active experiment called `name`, or nil.
    func experimentID(named name: String) throws -> String? {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        for entry in entries.sorted() where !entry.hasPrefix(".") {
            let meta = root.appendingPathComponent("\(entry)/meta.yaml")
            guard let text = try? String(contentsOf: meta, encoding: .utf8),
                  let fields = try? Yams.load(yaml: text) as? [String: Any] else { continue }
            if fields["name"] as? String == name, (fields["lifecycle_stage"] as? String ?? "active") == "active" {
                return entry
            }
        }
        return nil
    }

    /// Starts a run: writes its meta.yaml (status RUNNING) and the tags MLflow's own client sets.
    /// `parentRunID` nests it under another run in the UI (one run per fold under the job's run).
    func startRun(experimentID: String, name: String, tags: [String: String] = [:], parentRunID: String? = nil,
                  startTime: Date = Date()) throws -> MLflowRun {
        let experimentDirectory = root.appendingPathComponent(experimentID)
        guard FileManager.default.fileExists(atPath: experimentDirectory.appendingPathComponent("meta.yaml").path) else {
            throw TrackingError(path: experimentDirectory.path, problem: "no such experiment")
        }
        let runID = UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let run = MLflowRun(store: self, experimentID: experimentID, runID: runID, name: name)
        try createDirectory(run.directory.appendingPathComponent("params"))
        try createDirectory(run.directory.appendingPathComponent("metrics"))
        try createDirectory(run.directory.appendingPathComponent("tags"))
        try createDirectory(run.directory.appendingPathComponent("artifacts"))
        try run.writeMeta(status: .running, startTime: Self.milliseconds(startTime), endTime: nil)
        let allTags = Self.runTags(tags, name: name, user: user, parentRunID: parentRunID)
        for (key, value) in allTags.sorted(by: { $0.key < $1.key }) { try run.setTag(key, value) }
        return run
    }

    /// Reopens a run written earlier (a resumed job), marking it RUNNING again.
    func resumeRun(experimentID: String, runID: String) throws -> MLflowRun {
        let directory = root.appendingPathComponent("\(experimentID)/\(runID)")
        let metaURL = directory.appendingPathComponent("meta.yaml")
        guard let text = try? String(contentsOf: metaURL, encoding: .utf8),
              let fields = try? Yams.load(yaml: text) as? [String: Any] else {
            throw TrackingError(path: metaURL.path, problem: "no readable run meta.yaml to resume")
        }
        let run = MLflowRun(store: self, experimentID: experimentID, runID: runID, name: fields["run_name"] as? String ?? runID)
        let startTime = (fields["start_time"] as? Int).map(Int64.init) ?? Self.milliseconds(Date())
        try run.writeMeta(status: .running, startTime: startTime, endTime: nil)
        return run
    }

    /// Every call was written when it returned: nothing is left to deliver.
    func close() -> String? { nil }

    // MARK: - Files

    static func milliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }

    /// The login user: who runs are by when no `--author_name` is given.
    static var userName: String {
        let environment = ProcessInfo.processInfo.environment
        let name = environment["USER"] ?? environment["LOGNAME"] ?? NSUserName()
        return name.isEmpty ? "unknown" : name
    }

    /// MLflow's own URI form for a local folder.
    func fileURI(_ url: URL) -> String { "file://" + url.standardizedFileURL.path }

    private func writeExperimentMeta(id: String, name: String) throws {
        let directory = root.appendingPathComponent(id)
        let now = Self.milliseconds(Date())
        try writeYAML([
            ("artifact_location", .string(fileURI(directory))),
            ("creation_time", .int(now)),
            ("experiment_id", .string(id)),
            ("last_update_time", .int(now)),
            ("lifecycle_stage", .string("active")),
            ("name", .string(name)),
        ], to: directory.appendingPathComponent("meta.yaml"))
    }

    /// A meta.yaml value: MLflow reads these with PyYAML's safe loader.
    enum YAMLValue {
        case string(String), int(Int64), null, emptyList
    }

    func writeYAML(_ fields: [(String, YAMLValue)], to url: URL) throws {
        let pairs: [(Node, Node)] = fields.map { key, value in
            let node: Node
            switch value {
            // Always quoted: a run called "yes" or "0" must stay a string for PyYAML.
            case .string(let text): node = .scalar(.init(text, Tag(.str), .singleQuoted))
            case .int(let number): node = .scalar(.init(String(number)))
            case .null: node = .scalar(.init("null"))
            case .emptyList: node = .sequence(.init([], Tag(.seq), .flow))
            }
            return (.scalar(.init(key)), node)
        }
        let text: String
        do { text = try Yams.serialize(node: .mapping(.init(pairs)), allowUnicode: true) } catch {
            throw TrackingError(path: url.path, problem: "cannot write YAML (\(error))")
        }
        try writeAtomically(Data(text.utf8), to: url)
    }

    /// Writes `data` to a temporary file in the same folder and renames it over `url` (Foundation's
    /// `.atomic` option does exactly that), creating the folder first.
    func writeAtomically(_ data: Data, to url: URL) throws {
        try createDirectory(url.deletingLastPathComponent())
        do { try data.write(to: url, options: .atomic) } catch {
            throw TrackingError(path: url.path, problem: "cannot write (\(error.localizedDescription))")
        }
    }

    func createDirectory(_ url: URL) throws {
        do { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) } catch {
            throw TrackingError(path: url.path, problem: "cannot create the folder (\(error.localizedDescription))")
        }
    }
}

/// One MLflow run: params, per-step metrics and tags, then `finish`.
struct MLflowRun: TrackingRun {
    let store: MLflowStore
    let experimentID: String
    /// 32 lowercase hex digits, as MLflow makes them.
    let runID: String
    let name: String

    var directory: URL { store.root.appendingPathComponent("\(experimentID)/\(runID)") }

    /// Params are fixed once logged, as in MLflow: the same value again is fine (a resumed run),
    /// a different one is refused.
    func logParam(_ key: String, _ value: String) throws {
        let url = try fileURL(folder: "params", key: key)
        if let existing = try? String(contentsOf: url, encoding: .utf8) {
            guard existing == value else {
                throw TrackingError(path: url.path, problem: "param '\(key)' was logged as '\(existing)', cannot change it to '\(value)'")
            }
            return
        }
        try store.writeAtomically(Data(value.utf8), to: url)
    }

    func logParams(_ params: [String: String]) throws {
        for (key, value) in params.sorted(by: { $0.key < $1.key }) { try logParam(key, value) }
    }

    /// Appends one value (`step` is the epoch or training step) to the metric's history.
    func logMetric(_ key: String, _ value: Double, step: Int, timestamp: Date = Date()) throws {
        let url = try fileURL(folder: "metrics", key: key)
        var history = (try? Data(contentsOf: url)) ?? Data()
        history.append(Data("\(MLflowStore.milliseconds(timestamp)) \(Self.format(value)) \(step)\n".utf8))
        try store.writeAtomically(history, to: url)
    }

    func logMetrics(_ metrics: [String: Double], step: Int, timestamp: Date = Date()) throws {
        for (key, value) in metrics.sorted(by: { $0.key < $1.key }) { try logMetric(key, value, step: step, timestamp: timestamp) }
    }

    func setTag(_ key: String, _ value: String) throws {
        try store.writeAtomically(Data(value.utf8), to: fileURL(folder: "tags", key: key))
    }

    /// Copies `file` into `artifacts/<directory>/`, atomically as every other file of the store.
    func logArtifact(_ file: URL, directory folder: String?) throws {
        var destination = directory.appendingPathComponent("artifacts")
        if let folder {
            guard !folder.hasPrefix("/"), !folder.split(separator: "/").contains("..") else {
                throw TrackingError(path: destination.path, problem: "invalid artifact folder '\(folder)'")
            }
            destination.appendPathComponent(folder)
        }
        let data: Data
        do { data = try Data(contentsOf: file) } catch {
            throw TrackingError(path: file.path, problem: "cannot read the artifact (\(error.localizedDescription))")
        }
        try store.writeAtomically(data, to: destination.appendingPathComponent(file.lastPathComponent))
    }

    /// Marks the run finished (or failed / killed) with its end time.
    func finish(status: MLflowStore.RunStatus = .finished, endTime: Date = Date()) throws {
        let metaURL = directory.appendingPathComponent("meta.yaml")
        let text = (try? String(contentsOf: metaURL, encoding: .utf8)) ?? ""
        let fields = (try? Yams.load(yaml: text) as? [String: Any]) ?? [:]
        let startTime = (fields["start_time"] as? Int).map(Int64.init) ?? MLflowStore.milliseconds(endTime)
        try writeMeta(status: status, startTime: startTime, endTime: MLflowStore.milliseconds(endTime))
    }

    /// The run's meta.yaml, with the fields MLflow's FileStore writes (it still stores the old
    /// `source_*`/`entry_point_name` fields and an empty `tags` list for older readers).
    func writeMeta(status: MLflowStore.RunStatus, startTime: Int64, endTime: Int64?) throws {
        try store.writeYAML([
            ("artifact_uri", .string(store.fileURI(directory.appendingPathComponent("artifacts")))),
            ("end_time", endTime.map { .int($0) } ?? .null),
            ("entry_point_name", .string("")),
            ("experiment_id", .string(experimentID)),
            ("lifecycle_stage", .string("active")),
            ("run_id", .string(runID)),
            ("run_name", .string(name)),
            ("run_uuid", .string(runID)),
            ("source_name", .string("")),
            ("source_type", .int(4)),   // SourceType.LOCAL
            ("source_version", .string("")),
            ("start_time", .int(startTime)),
            ("status", .int(Int64(status.rawValue))),
            ("tags", .emptyList),
            ("user_id", .string(store.user)),
        ], to: directory.appendingPathComponent("meta.yaml"))
    }

    /// Python's float repr accepts what Swift prints, including "nan" and "inf".
    static func format(_ value: Double) -> String {
        if value.isNaN { return "nan" }
        if value.isInfinite { return value > 0 ? "inf" : "-inf" }
        return "\(value)"
    }

    /// MLflow's rule for keys: letters, digits, `_ - . / ` and space, at most 250 characters, no
    /// `..` and no leading `/` (a key is a path below the run).
    private func fileURL(folder: String, key: String) throws -> URL {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "_-./ "))
        let valid = !key.isEmpty && key.count <= 250 && !key.hasPrefix("/") && !key.contains("..")
            && key.unicodeScalars.allSatisfy { $0.isASCII && allowed.contains($0) }
        guard valid else {
            throw TrackingError(path: directory.appendingPathComponent(folder).path,
                                problem: "invalid key '\(key)': use letters, digits, '_', '-', '.', '/' and spaces")
        }
        return directory.appendingPathComponent("\(folder)/\(key)")
    }
}
