import ArgumentParser
import Foundation

struct TrackingOptions: ParsableArguments {
    static let defaultExperimentName = "Bangla-HateSpeech-Detection"

    @Option(name: .customLong("author_name"), help: "Who the runs are by: every MLflow run's mlflow.user tag and the provenance (default: the login user).")
    var authorName: String?

    @Option(name: .customLong("mlflow_experiment_name"), help: "MLflow experiment the runs go to, created if missing.")
    var mlflowExperimentName = Self.defaultExperimentName

    @Option(name: .customLong("mlflow_tracking_uri"), help: "An MLflow tracking server (http(s)://host:port) or a file store (file:… or a folder); default: $MLFLOW_TRACKING_URI, else the file store <output_dir>/mlruns.")
    var mlflowTrackingURI: String?

    var author: String { authorName ?? MLflowStore.userName }

    func validate() throws {
        if let authorName, authorName.trimmingCharacters(in: .whitespaces).isEmpty {
            throw ValidationError("--author_name: give a name (or leave the option out for the login user)")
        }
        if mlflowExperimentName.trimmingCharacters(in: .whitespaces).isEmpty {
            throw ValidationError("--mlflow_experiment_name: give a name")
        }
    }

    /// The store the runs go to. A server is asked for the experiment here, so one that cannot be
    /// reached (or refuses the credentials) stops the job in one line before any work.
    func openStore(outputDirectory: URL, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> (store: any TrackingStore, experimentID: String) {
        let store: any TrackingStore
        switch try TrackingLocation.resolve(option: mlflowTrackingURI, environment: environment, outputDirectory: outputDirectory) {
        case .fileStore(let root):
            store = try MLflowStore(root: root, user: author)
        case .server(let uri):
            store = MLflowServer(uri: uri, user: author, authorization: TrackingCredentials.authorization(environment: environment),
                                 unsentFile: outputDirectory.appendingPathComponent(MLflowServer.unsentFileName))
        }
        return (store, try store.experiment(named: mlflowExperimentName))
    }
}
