import Foundation

/// Gathers the texts of concurrent requests into one forward pass.
///
/// A request's texts wait at most `maxWait` after the oldest waiting request arrived, or less when
/// `maxBatch` texts are already waiting; one pass runs at a time, and requests arriving during it
/// form the next batch. At most `maxQueuedTexts` texts wait at once: past that a request is refused
/// (503) rather than held, so memory stays bounded under any load.
actor MicroBatcher {
    struct Settings: Sendable {
        var maxBatch: Int
        var maxWait: Duration
        var maxQueuedTexts: Int
    }

    private struct Waiting {
        let texts: [String]
        let arrived: ContinuousClock.Instant
        let continuation: CheckedContinuation<[Float], Error>
    }

    let settings: Settings
    private let engine: InferenceEngine
    private let metrics: ServingMetrics
    private var waiting: [Waiting] = []
    private var waitingTexts = 0
    private var draining = false

    init(engine: InferenceEngine, settings: Settings, metrics: ServingMetrics) {
        self.engine = engine
        self.settings = settings
        self.metrics = metrics
    }

    /// The probabilities of `texts`, in order; throws `ServingError.queueFull` when the queue has no room.
    func probabilities(of texts: [String]) async throws -> [Float] {
        guard waitingTexts + texts.count <= settings.maxQueuedTexts else { throw ServingError.queueFull }
        return try await withCheckedThrowingContinuation { continuation in
            waiting.append(Waiting(texts: texts, arrived: .now, continuation: continuation))
            waitingTexts += texts.count
            metrics.setQueueDepth(waitingTexts)
            if !draining {
                draining = true
                Task { await self.drain() }
            }
        }
    }

    /// Texts accepted and not yet in a forward pass.
    var queuedTexts: Int { waitingTexts }

    private func drain() async {
        while let oldest = waiting.first {
            if waitingTexts < settings.maxBatch {
                try? await Task.sleep(until: oldest.arrived.advanced(by: settings.maxWait), clock: .continuous)
            }
            // Whole requests, in arrival order, up to maxBatch texts (a larger request goes alone).
            var batch: [Waiting] = []
            var count = 0
            while let next = waiting.first, batch.isEmpty || count + next.texts.count <= settings.maxBatch {
                batch.append(waiting.removeFirst())
                count += next.texts.count
            }
            waitingTexts -= count
            metrics.setQueueDepth(waitingTexts)
            let started = ContinuousClock.now
            do {
                let probabilities = try await engine.probabilities(of: batch.flatMap(\.texts))
                metrics.recordBatch(texts: count, duration: .now - started)
                var offset = 0
                for request in batch {
                    request.continuation.resume(returning: Array(probabilities[offset..<(offset + request.texts.count)]))
                    offset += request.texts.count
                }
            } catch {
                for request in batch { request.continuation.resume(throwing: ServingError.inference(error)) }
            }
        }
        draining = false
    }
}
