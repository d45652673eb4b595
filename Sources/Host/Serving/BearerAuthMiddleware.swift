import Foundation
import Hummingbird

/// With `--api-key-file`, every route but `/health` needs `Authorization: Bearer <key>`.
struct BearerAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let key: [UInt8]

    /// The key is the file's content without surrounding whitespace; an empty file is refused.
    static func loadKey(from path: String) throws -> [UInt8] {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ValidationFailure("--api-key-file \(path): cannot be read as UTF-8 text")
        }
        let key = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !key.isEmpty else { throw ValidationFailure("--api-key-file \(path): the file is empty") }
        return Array(key.utf8)
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if request.uri.path == "/health" { return try await next(request, context) }
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer "),
              Self.constantTimeEqual(Array(header.utf8.dropFirst("Bearer ".utf8.count)), key) else {
            throw ServingError.unauthorized
        }
        return try await next(request, context)
    }

    /// Compares every byte whatever the first difference, so the answer's timing does not tell
    /// how much of a guessed key was right.
    static func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        guard lhs.count == rhs.count else { return false }
        var difference: UInt8 = 0
        for index in lhs.indices { difference |= lhs[index] ^ rhs[index] }
        return difference == 0
    }
}
