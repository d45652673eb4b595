import Foundation
import Hummingbird
import Logging

/// The outermost middleware: turns every error into its JSON answer, counts the request in the
/// metrics, and writes one structured log line per request (method, path, status, duration, texts).
struct RequestLogMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger
    let metrics: ServingMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        let response: Response
        var failure: String?
        do {
            response = try await next(request, context)
        } catch let error as ServingError {
            response = ServingResponses.error(error)
            failure = error.message
        } catch let error as HTTPError {
            // Hummingbird's own refusals (no route, body over the limit) in the same JSON shape.
            let kind = error.status == .notFound ? "not_found" : "validation"
            let message = error.body ?? error.status.reasonPhrase
            response = ServingResponses.error(ServingError(status: error.status, kind: kind, message: message))
            failure = message
        } catch {
            let wrapped = ServingError.inference(error)
            response = ServingResponses.error(wrapped)
            failure = wrapped.message
        }
        let duration = ContinuousClock.now - started
        metrics.recordRequest(path: request.uri.path, status: response.status.code, duration: duration)
        var metadata: Logger.Metadata = [
            "method": "\(request.method.rawValue)",
            "path": "\(request.uri.path)",
            "status": "\(response.status.code)",
            "duration_ms": "\(String(format: "%.2f", Double(duration.components.attoseconds) / 1e15 + Double(duration.components.seconds) * 1000))",
        ]
        if let texts = response.headers[ServingResponses.textCountHeader] { metadata["texts"] = "\(texts)" }
        if let failure { metadata["error"] = "\(String(reflecting: failure))" }
        logger.info("request", metadata: metadata)
        return response
    }
}
