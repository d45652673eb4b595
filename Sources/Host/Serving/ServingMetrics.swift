import Foundation
import Prometheus

/// What `GET /metrics` reports, in Prometheus' text format: requests by route and status, request
/// latency, the size of each forward pass's batch, and the texts waiting for one.
final class ServingMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let batchSize: ValueHistogram
    private let queueDepth: Gauge
    private let inferenceSeconds: DurationHistogram

    /// Routes with their own label; anything else counts as `other`, so a scan of random paths
    /// cannot grow the label set.
    static let routes: Set<String> = ["/health", "/metrics", "/v1/model", "/v1/classify", "/predict"]

    static let latencyBuckets: [Duration] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000].map { .milliseconds($0) }

    init() {
        batchSize = registry.makeValueHistogram(
            descriptor: MetricNameDescriptor(namespace: "sankshep", metricName: "batch", unitName: "texts",
                                             helpText: "Texts in each forward pass (one micro-batch)."),
            buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256])
        queueDepth = registry.makeGauge(
            descriptor: MetricNameDescriptor(namespace: "sankshep", metricName: "queue_depth", unitName: "texts",
                                             helpText: "Texts accepted and waiting for a forward pass."))
        inferenceSeconds = registry.makeDurationHistogram(
            descriptor: MetricNameDescriptor(namespace: "sankshep", metricName: "inference_duration", unitName: "seconds",
                                             helpText: "Time of each micro-batch's forward pass."),
            buckets: Self.latencyBuckets)
    }

    static func routeLabel(_ path: String) -> String { routes.contains(path) ? path : "other" }

    func recordRequest(path: String, status: Int, duration: Duration) {
        let route = Self.routeLabel(path)
        registry.makeCounter(
            descriptor: MetricNameDescriptor(namespace: "sankshep", subsystem: "http", metricName: "requests", unitName: "total",
                                             helpText: "HTTP requests answered, by route and status."),
            labels: [("route", route), ("status", String(status))]
        ).increment()
        registry.makeDurationHistogram(
            descriptor: MetricNameDescriptor(namespace: "sankshep", subsystem: "http", metricName: "request_duration", unitName: "seconds",
                                             helpText: "Time from request to response, by route."),
            labels: [("route", route)], buckets: Self.latencyBuckets
        ).record(duration)
    }

    func recordBatch(texts: Int, duration: Duration) {
        batchSize.record(Double(texts))
        inferenceSeconds.record(duration)
    }

    func setQueueDepth(_ texts: Int) { queueDepth.set(Double(texts)) }

    func text() -> String { registry.emitToString() }
}
