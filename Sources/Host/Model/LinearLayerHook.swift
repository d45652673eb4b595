/// A way into the encoder's linear layers during inference (`forward(training: false)`), for the stages
/// that need one: calibration (WANDA's input-feature norms, static quantization's activation ranges)
/// observes each layer's input; quantization replaces a layer's float product with its own kernel.
///
/// Layers are named by their Hugging Face weight name without `.weight`
/// (`bert.encoder.layer.0.attention.self.query`). Query, key and value share one input and run as one
/// fused product, so they arrive together: `layers` is `[query, key, value]` there, one name elsewhere.
protocol LinearLayerHook: AnyObject {
    /// Whether the hook must see every token's row in every layer. An observer (calibration) does: it
    /// gathers statistics over all tokens. A hook that only replaces products row by row does not, so
    /// the model may keep its [CLS]-only last layer (`headRowsOnlyInInference`) with it.
    var needsEveryRow: Bool { get }

    /// input: (rows, inFeatures), the activations entering `layers`.
    func observe(layers: [String], input: UnsafePointer<Float>, rows: Int, inFeatures: Int)

    /// Computes output (rows, outFeatures) = input · Wᵀ (+ bias when `includeBias`) for `layers` and returns
    /// true, or returns false to let the float product run. For the fused query/key/value product the
    /// output is [Q | K | V] along each row (outFeatures = 3 × hidden). The feed-forward input layer's
    /// bias is added by the GELU kernel afterwards, so it is called with `includeBias` false.
    func replace(layers: [String], input: UnsafePointer<Float>, rows: Int, inFeatures: Int,
                 output: UnsafeMutablePointer<Float>, outFeatures: Int, includeBias: Bool) -> Bool
}

extension LinearLayerHook {
    var needsEveryRow: Bool { true }
}
