import Foundation

/// The loaded model behind one serial queue.
///
/// A model reuses its activation buffers from one forward pass to the next, so two passes at once
/// would overwrite each other's: every pass goes through `queue`, one at a time, off Swift's
/// cooperative threads (a pass takes milliseconds to seconds and must not stall other tasks).
final class InferenceEngine: @unchecked Sendable {
    private let model: DeployableModel
    private let queue = DispatchQueue(label: "sankshep.serve.inference")
    let tokenizer: any Tokenizer
    let threshold: Double
    /// Tokens a text is cut to, [CLS] and [SEP] included: `--max_length` or the model's positions, whichever is fewer.
    let maxTokens: Int
    let maxLength: Int
    /// Texts per forward pass, as `sankshep predict --batch`.
    let forwardBatch: Int

    init(model: DeployableModel, threshold: Double, maxLength: Int, forwardBatch: Int) {
        self.model = model
        self.tokenizer = model.tokenizer
        self.threshold = threshold
        self.maxLength = maxLength
        self.maxTokens = min(maxLength, model.maxPositions)
        self.forwardBatch = forwardBatch
    }

    var summary: String { queue.sync { model.summary } }
    var parameterCount: Int { queue.sync { model.parameterCount } }
    var nonZeroParameterCount: Int { queue.sync { model.nonZeroParameterCount } }

    /// Positive-class probabilities of `texts`, computed exactly as `sankshep predict` does.
    func probabilities(of texts: [String]) async throws -> [Float] {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result {
                    try self.model.probabilities(of: texts, maxLength: self.maxLength, batchSize: self.forwardBatch)
                })
            }
        }
    }

    /// Tokens `text` has before any cut, [CLS] and [SEP] included.
    func tokenCount(of text: String) -> Int { tokenizer.encode(text, maxLength: nil).count }

    func label(of probability: Float) -> Int { Double(probability) > threshold ? 1 : 0 }
}
