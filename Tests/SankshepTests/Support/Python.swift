import Foundation

/// The Python interpreter with torch, transformers, compressed-tensors and mlflow that the
/// cross-checks against the peers run (made by `scripts/setup_python.sh`; `make test` and
/// `.ci/run` set `SANKSHEP_PYTHON`). Nothing in the product imports Python.
///
/// Outside CI a machine without the virtualenv skips these tests; under `CI=true` they always run,
/// so a missing interpreter fails them instead of passing them unseen.
enum PythonEnvironment {
    static var interpreter: URL? {
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["SANKSHEP_PYTHON"], !path.isEmpty { return URL(fileURLWithPath: path) }
        let local = Fixtures.repositoryRoot.appendingPathComponent(".venv/bin/python")
        return FileManager.default.isExecutableFile(atPath: local.path) ? local : nil
    }

    /// For `@Test(.enabled(if: PythonEnvironment.available))`: true in CI even without an interpreter.
    static var available: Bool { interpreter != nil || ProcessInfo.processInfo.environment["CI"] == "true" }

    struct Result {
        var status: Int32
        var standardOutput: String
        var standardError: String
    }

    /// Runs `scripts/<script>` (or `-c` code when `script` starts with "-") with the arguments.
    static func run(_ script: String, _ arguments: [String] = [], environment extra: [String: String] = [:]) throws -> Result {
        guard let interpreter else {
            throw PythonUnavailable()
        }
        let process = Process()
        process.executableURL = interpreter
        let scriptArgument = script.hasPrefix("-") ? script : Fixtures.repositoryRoot.appendingPathComponent("scripts/\(script)").path
        process.arguments = [scriptArgument] + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["HF_HUB_OFFLINE"] = "1"
        environment["TRANSFORMERS_OFFLINE"] = "1"
        for (key, value) in extra { environment[key] = value }
        process.environment = environment
        let output = Pipe(), error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        // Read both pipes while the process runs, so a chatty script cannot fill one and stall.
        nonisolated(unsafe) var errorData = Data()
        let reader = Thread { errorData = error.fileHandleForReading.readDataToEndOfFile() }
        reader.start()
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while !reader.isFinished { Thread.sleep(forTimeInterval: 0.01) }
        return Result(status: process.terminationStatus, standardOutput: String(decoding: outputData, as: UTF8.self),
                      standardError: String(decoding: errorData, as: UTF8.self))
    }

    struct PythonUnavailable: Error, CustomStringConvertible {
        var description: String {
            "no Python with torch/transformers/mlflow: run scripts/setup_python.sh and set SANKSHEP_PYTHON (make test does both)"
        }
    }
}
