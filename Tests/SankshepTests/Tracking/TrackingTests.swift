import Foundation
import Testing
@testable import Host

@Suite("Tracking location, credentials and artifact addresses")
struct TrackingTests {
    private let output = URL(fileURLWithPath: "/tmp/out")

    private func resolve(_ option: String?, environment: [String: String] = [:]) throws -> TrackingLocation {
        try TrackingLocation.resolve(option: option, environment: environment, outputDirectory: output)
    }

    @Test("with nothing set, the runs go to the file store <output_dir>/mlruns")
    func defaultFileStore() throws {
        #expect(try resolve(nil) == .fileStore(URL(fileURLWithPath: "/tmp/out/mlruns")))
        #expect(try resolve(nil, environment: ["MLFLOW_TRACKING_URI": ""]) == .fileStore(URL(fileURLWithPath: "/tmp/out/mlruns")))
    }

    @Test("an http(s) URI names a server, from the option or MLFLOW_TRACKING_URI, the option first")
    func server() throws {
        #expect(try resolve("http://127.0.0.1:5000") == .server(try #require(URL(string: "http://127.0.0.1:5000"))))
        #expect(try resolve(nil, environment: ["MLFLOW_TRACKING_URI": "https://mlflow.example/prefix"])
                == .server(try #require(URL(string: "https://mlflow.example/prefix"))))
        #expect(try resolve("http://a:1", environment: ["MLFLOW_TRACKING_URI": "http://b:2"]) == .server(try #require(URL(string: "http://a:1"))))
    }

    @Test("a file: URI or a plain path names another file store")
    func otherFileStore() throws {
        #expect(try resolve("file:///data/mlruns") == .fileStore(URL(fileURLWithPath: "/data/mlruns")))
        #expect(try resolve("/data/mlruns") == .fileStore(URL(fileURLWithPath: "/data/mlruns")))
    }

    @Test("a database URI or a host-less http URI is refused in one line naming its source")
    func refused() throws {
        let database = #expect(throws: TrackingError.self) { try resolve(nil, environment: ["MLFLOW_TRACKING_URI": "sqlite:///mlflow.db"]) }
        #expect(database?.description.hasPrefix("MLFLOW_TRACKING_URI: 'sqlite:///mlflow.db': Sankshep logs to an MLflow tracking server") == true)
        let hostless = #expect(throws: TrackingError.self) { try resolve("http://") }
        #expect(hostless?.description == "--mlflow_tracking_uri: 'http://' is not a valid http(s) URL")
    }

    @Test("the author defaults to the login user and the experiment to the seed's; empty names are refused in one line")
    func names() throws {
        let defaults = try TrackingOptions.parse([])
        #expect(defaults.author == MLflowStore.userName && !defaults.author.isEmpty)
        #expect(defaults.mlflowExperimentName == "Bangla-HateSpeech-Detection")
        #expect(try TrackingOptions.parse(["--author_name", "ann"]).author == "ann")
        for option in ["--author_name", "--mlflow_experiment_name"] {
            #expect(throws: (any Error).self) { _ = try RunCommand.parseAsRoot([option, " "]) }
            do { _ = try RunCommand.parseAsRoot([option, " "]) } catch {
                #expect(RunCommand.message(for: error).hasPrefix("\(option): give a name"))
            }
        }
    }

    @Test("credentials are MLflow's: basic auth when user and password are set, else a bearer token")
    func credentials() {
        #expect(TrackingCredentials.authorization(environment: [:]) == nil)
        #expect(TrackingCredentials.authorization(environment: ["MLFLOW_TRACKING_TOKEN": "t0k"]) == "Bearer t0k")
        #expect(TrackingCredentials.authorization(environment: ["MLFLOW_TRACKING_USERNAME": "ann", "MLFLOW_TRACKING_PASSWORD": "pw",
                                                                "MLFLOW_TRACKING_TOKEN": "t0k"]) == "Basic YW5uOnB3")
        #expect(TrackingCredentials.authorization(environment: ["MLFLOW_TRACKING_USERNAME": "ann"]) == nil)
    }

    @Test("artifacts go through the server's proxy for mlflow-artifacts: roots, or into a local artifact folder")
    func artifactDestinations() {
        let run = "mlflow-artifacts:/3/0123abcd/artifacts"
        #expect(MLflowServerRun.artifactDestination(artifactURI: run, relativePath: "report.html")
                == .proxy("/api/2.0/mlflow-artifacts/artifacts/3/0123abcd/artifacts/report.html"))
        #expect(MLflowServerRun.artifactDestination(artifactURI: "mlflow-artifacts://host:5000/3/0123abcd/artifacts/", relativePath: "a b.csv")
                == .proxy("/api/2.0/mlflow-artifacts/artifacts/3/0123abcd/artifacts/a%20b.csv"))
        #expect(MLflowServerRun.artifactDestination(artifactURI: "http://host:5000/api/2.0/mlflow-artifacts/artifacts/3/r/artifacts", relativePath: "x.csv")
                == .proxy("/api/2.0/mlflow-artifacts/artifacts/3/r/artifacts/x.csv"))
        #expect(MLflowServerRun.artifactDestination(artifactURI: "file:///srv/mlartifacts/3/r/artifacts", relativePath: "x.csv")
                == .localFolder(URL(fileURLWithPath: "/srv/mlartifacts/3/r/artifacts/x.csv")))
        guard case .unsupported(let reason) = MLflowServerRun.artifactDestination(artifactURI: "s3://bucket/3/r/artifacts", relativePath: "x.csv") else {
            Issue.record("an s3 root is not written to")
            return
        }
        #expect(reason.contains("--serve-artifacts"))
    }

    @Test("the REST API's JSON spells non-finite metrics as MLflow's strings")
    func nonFinite() throws {
        let request = MLflowServer.post("/api/2.0/mlflow/runs/log-batch", MLflowServer.LogBatch(runID: "r", metrics: [
            .init(key: "a", value: .nan, timestamp: 1, step: 0), .init(key: "b", value: -.infinity, timestamp: 1, step: 0)]))
        let body = String(decoding: try #require(request.body), as: UTF8.self)
        #expect(body == #"{"metrics":[{"key":"a","step":0,"timestamp":1,"value":"NaN"},{"key":"b","step":0,"timestamp":1,"value":"-Infinity"}],"run_id":"r"}"#)
        #expect(request.contentType == "application/json")
    }
}
