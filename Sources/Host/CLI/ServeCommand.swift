import ArgumentParser
import Foundation
import Hummingbird
import Kernels
import Logging

/// `sankshep serve`: an HTTP classification service for a saved model.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a saved model over HTTP: /v1/classify, TEI's /predict, /health, /v1/model, /metrics.",
        discussion: """
        Concurrent requests are gathered into micro-batches (--max-batch texts, waiting at most --max-wait-ms);
        a full queue answers 503 with Retry-After. SIGTERM or SIGINT stops accepting connections and exits once
        every accepted request is answered. See docs/serving.md.
        """
    )

    @Option(help: "Model folder (a stage's output, quantized ones included, best_model_<tag>/, or a Hugging Face folder).")
    var model: String

    @Option(help: "Address to listen on; 127.0.0.1 keeps the service to this machine.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on (0: any free port, printed in the 'listening on' log line).")
    var port = 8080

    @Option(name: .customLong("max-batch"), help: "Most texts in one forward pass (one micro-batch); as predict's --batch.")
    var maxBatch = 64

    @Option(name: .customLong("max-wait-ms"), help: "Longest a request waits for others to share its forward pass.")
    var maxWaitMs = 5

    @Option(name: .customLong("max-queue"), help: "Most texts accepted and waiting at once; past that, 503 with Retry-After.")
    var maxQueue = 1024

    @Option(name: .customLong("max-texts"), help: "Most texts in one request; more is a 400.")
    var maxTexts = 64

    @Option(name: .customLong("max-body-bytes"), help: "Largest request body; larger is a 413.")
    var maxBodyBytes = 1 << 20

    @Option(name: .customLong("read-timeout-s"), help: "A connection silent this long while a request is read, or idle between requests, is closed.")
    var readTimeoutSeconds = 30

    @Option(name: .customLong("api-key-file"), help: "File holding a key: every route but /health then needs 'Authorization: Bearer <key>'.")
    var apiKeyFile: String?

    @Option(help: "Override the saved decision threshold.")
    var threshold: Double?

    @Option(name: .customLong("max_length"), help: "Maximum tokens per comment (as predict's --max_length).")
    var maxLength = 128

    @Option(help: "Threads for the compute kernels (default: all cores).")
    var threads: Int?

    @OptionGroup(title: "Plugins") var plugins: PluginPathOptions

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535, got \(port)") }
        // Upper bounds keep the durations and products made from these inside Int.
        try OptionLimits.check(maxBatch, 1...OptionLimits.count, "--max-batch")
        try OptionLimits.check(maxWaitMs, 0...3_600_000, "--max-wait-ms")
        try OptionLimits.check(maxTexts, 1...OptionLimits.count, "--max-texts")
        try OptionLimits.check(maxQueue, 1...OptionLimits.count, "--max-queue")
        try OptionLimits.check(maxBodyBytes, 1...(1 << 30), "--max-body-bytes")
        try OptionLimits.check(readTimeoutSeconds, 1...86_400, "--read-timeout-s")
        try OptionLimits.check(maxLength, 3...OptionLimits.count, "--max_length")
        try OptionLimits.check(threads, 1...OptionLimits.threads, "--threads")
        guard maxQueue >= maxTexts else { throw ValidationError("--max-queue (\(maxQueue)) must hold at least --max-texts (\(maxTexts)) texts") }
        guard maxBodyBytes > 0 else { throw ValidationError("--max-body-bytes must be positive, got \(maxBodyBytes)") }
        guard readTimeoutSeconds > 0 else { throw ValidationError("--read-timeout-s must be positive, got \(readTimeoutSeconds)") }
        guard maxLength >= 3 else { throw ValidationError("--max_length must be at least 3, got \(maxLength)") }
        if let threshold, !(0...1).contains(threshold) { throw ValidationError("--threshold must be in [0, 1], got \(threshold)") }
    }

    func run() async throws {
        let logger = Logging.configure()
        sk_set_threads(Int32(threads ?? ProcessInfo.processInfo.activeProcessorCount))
        let apiKey = try apiKeyFile.map { try BearerAuthMiddleware<BasicRequestContext>.loadKey(from: $0) }
        let directory = URL(fileURLWithPath: model)
        let loaded = try loadDeployableModel(from: directory, registry: plugins.registry(), logger: logger)
        let engine = InferenceEngine(model: loaded, threshold: threshold ?? loaded.threshold, maxLength: maxLength, forwardBatch: maxBatch)
        let metrics = ServingMetrics()
        let batcher = MicroBatcher(engine: engine, settings: .init(maxBatch: maxBatch, maxWait: .milliseconds(maxWaitMs), maxQueuedTexts: maxQueue),
                                   metrics: metrics)
        let info = ModelInfo(model: directory.path, summary: engine.summary, stages: ModelFolder.stages(of: directory),
                             threshold: engine.threshold, sizeBytes: ModelFolder.sizeBytes(of: directory),
                             parameters: engine.parameterCount, nonZeroParameters: engine.nonZeroParameterCount,
                             maxLength: engine.maxTokens, maxBatch: maxBatch)
        let routes = ServingRoutes(engine: engine, batcher: batcher, metrics: metrics,
                                   limits: .init(maxBodyBytes: maxBodyBytes, maxTexts: maxTexts), info: info)
        let host = host
        let app = Application(
            router: routes.router(apiKey: apiKey, logger: logger),
            server: .http1(configuration: .init(idleTimeout: .seconds(Int64(readTimeoutSeconds)))),
            configuration: .init(address: .hostname(host, port: port), serverName: "sankshep"),
            onServerRunning: { channel in
                let bound = channel.localAddress?.port.map(String.init) ?? "?"
                logger.info("listening on http://\(host):\(bound) (\(info.summary), threshold \(info.threshold))")
            },
            logger: logger
        )
        try await app.runService()
        logger.info("stopped: every accepted request was answered")
    }
}

/// What `GET /v1/model` reads from the served folder besides the model itself.
enum ModelFolder {
    /// The stage labels of the run that made the folder (its provenance.json), or the one stage its
    /// sankshep.json names; none for a plain Hugging Face folder.
    static func stages(of directory: URL) -> [String] {
        if let data = try? Data(contentsOf: directory.appendingPathComponent(Provenance.fileName)),
           let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
           let stages = object["stages"] as? [[String: Any]] {
            return stages.compactMap { $0["label"] as? String }
        }
        return SankshepSettings.read(from: directory)?.extra["stage"].map { [$0] } ?? []
    }

    /// Bytes of the folder's own files (an export in a subfolder is not what is served).
    static func sizeBytes(of directory: URL) -> Int {
        let files = (try? FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: [.fileSizeKey, .isRegularFileKey])) ?? []
        return files.reduce(0) { total, file in
            let values = try? file.resourceValues(forKeys: [.fileSizeKey, .isRegularFileKey])
            return total + (values?.isRegularFile == true ? values?.fileSize ?? 0 : 0)
        }
    }
}
