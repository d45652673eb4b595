/// What `--quant_dtype` names: the number format of the quantized weights.
enum QuantDType: String, CaseIterable, Sendable {
    case int8, int4, fp16

    /// The built-in quantizers' formats.
    static let ofMethod: [String: QuantDType] = ["dynamic": .int8, "static": .int8, "int4": .int4, "fp16": .fp16]

    /// The method `--quant_dtype` alone chooses.
    var method: String {
        switch self {
        case .int8: "dynamic"
        case .int4: "int4"
        case .fp16: "fp16"
        }
    }
}

/// `quantize`: turn the linear layers into quantized layers with a registered quantizer (Pipeline/Quantization).
struct QuantizeStage: StageDeclaration {
    /// Any registered quantizer (`dynamic`, `static`, `int4`, `fp16`, …).
    var method = "dynamic"
    /// Batches run to calibrate activation scales (methods that need them).
    var calibrationBatches = 100
    var options: [String: String] = [:]

    static let name = "quantize"
    static let summary = "turn the linear layers into quantized layers; the last stage"
    static let pipelineWord: String? = "quant"
    static let modelWord: ModelWord? = .adjective("quantized")

    static var options: [StageOption<Self>] {
        [
            .name("method", flag: "quant_method", \.method,
                  help: "Quantizer: dynamic, static, int4, fp16, or any quantizer a plugin registers (default: dynamic, or the one the weight format names). qat (quantization-aware training) is not available yet."),
            .integer("calibration_batches", flag: "quant_calibration_batches", \.calibrationBatches, minimum: 1, maximum: 1_000_000,
                     help: "Batches of calibration comments for static quantization."),
            .methodOptions("options", flag: "quant_option", \.options, help: "A further option of the quantizer, name=value; repeatable."),
            StageOption(key: "dtype", flag: "quant_dtype", kind: .choice(QuantDType.allCases.map(\.rawValue)),
                        help: "Weight format: int8 (dynamic, static), int4 or fp16; must agree with the quantizer, and alone chooses it (int8 → dynamic).",
                        read: { _ in nil }, write: { _, _ in })
                .only(inRecipes: false),
        ]
    }

    /// Once, last.
    static func placementProblem(after earlier: [String]) -> String? {
        earlier.firstIndex(of: name).map { "a second quantize stage: a model is quantized once (stage \($0 + 1) is quantize)" }
    }

    var label: String { "quantize_" + method }

    /// `--quant_dtype` chooses the quantizer when `--quant_method` does not, and must agree with it when it does.
    static func fromCommandLine(_ given: [String: OptionValue], methods: MethodCatalog, notes: inout [String]) throws -> Self {
        var given = given
        if case .text(let method)? = given["method"], method == "qat" {
            throw RecipeError("--quant_method qat: quantization-aware training is not available yet; use dynamic, static, int4 or fp16")
        }
        if case .text(let raw)? = given.removeValue(forKey: "dtype"), let dtype = QuantDType(rawValue: raw) {
            if case .text(let method)? = given["method"] {
                guard let format = QuantDType.ofMethod[method] else {
                    throw RecipeError("--quant_dtype \(raw): the plugin quantizer '\(method)' sets its own format; drop --quant_dtype")
                }
                guard format == dtype else {
                    throw RecipeError("--quant_dtype \(raw) disagrees with --quant_method \(method), which quantizes to \(format.rawValue)")
                }
            } else {
                given["method"] = .text(dtype.method)
            }
        }
        return try make(given, place: commandLinePlace)
    }

    func validate(_ check: StageCheck) throws -> ResolvedMethod? {
        let method = try check.lookUp(self.method, kinds: [.quantizer])
        return try check.resolve(options, for: method)
    }

    func implementation() -> CompressionStage? { QuantizationStage(stage: self) }
}
