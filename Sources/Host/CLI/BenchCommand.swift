import ArgumentParser
import Foundation
import Kernels
import PluginAPI

/// `sankshep bench`: times one training step or one forward of a random-initialised model and prints
/// one JSON object, so a script can run the same shapes in PyTorch / ONNX Runtime and compare.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time a training step (forward + backward + optimizer) or an inference forward; prints one JSON object.",
        discussion: """
            Shapes: small = 4 layers x 256, 4 heads, FFN 1024, vocab 8000 (BERT head); bert-base = \
            bangla-bert-base (12 x 768, vocab 102025); distilbert-multilingual = \
            distilbert-base-multilingual-cased (6 x 768, vocab 119547); xlm-roberta-base (12 x 768, FFN 3072, \
            vocab 250002, RoBERTa head); sahajbert = neuropark/sahajBERT (ALBERT: vocab 32000, embedding 128, \
            hidden 1024, one layer run 24 times, 16 heads, FFN 4096). Inputs are random token ids with \
            no padding. peak_rss_mb is the process's peak resident memory.
            """
    )

    enum Mode: String, ExpressibleByArgument, CaseIterable { case train, infer }
    enum Shape: String, ExpressibleByArgument, CaseIterable {
        case small
        case bertBase = "bert-base"
        case distilbertMultilingual = "distilbert-multilingual"
        case xlmRobertaBase = "xlm-roberta-base"
        case sahajbert

        var encoder: EncoderShape {
            switch self {
            case .small: .small
            case .bertBase: .banglaBertBase
            case .distilbertMultilingual: .distilbertMultilingual
            case .xlmRobertaBase: .xlmRobertaBase
            case .sahajbert: .sahajBert
            }
        }
    }

    @Option(help: "train (forward + backward + optimizer step) or infer (forward only).")
    var mode: Mode = .train
    @Option(help: "small, bert-base, distilbert-multilingual, xlm-roberta-base or sahajbert.")
    var shape: Shape = .small
    @Option(help: "Sequences per batch.")
    var batch: Int = 32
    @Option(help: "Tokens per sequence.")
    var seq: Int = 32
    @Option(help: "Threads for OpenBLAS and the kernels.")
    var threads: Int = 2
    @Option(help: "Untimed runs first.")
    var warmup: Int = 2
    @Option(help: "Timed runs.")
    var iterations: Int = 5
    @Flag(name: .customLong("freeze_base"), help: "Train the head only (the encoder gets no gradient).")
    var freezeBase = false
    @Option(help: ArgumentHelp("Infer with the encoder's linear layers quantized by this method (dynamic, static, int4, fp16, or any quantizer a plugin registers); static calibrates on the timed batch.", valueName: "method"))
    var quant: String?
    @Flag(name: .customLong("full-last-layer"),
          help: "Inference: run the last layer for every token, not only for the [CLS] rows the head reads.")
    var fullLastLayer = false
    @Option(name: .customLong("intermediate_size"),
            help: "Override the shape's feed-forward width, e.g. half of it to time a model whose FFN neurons were pruned structurally.")
    var intermediateSize: Int?
    @Option(name: .customLong("kept_heads"),
            help: "Keep this many attention heads in every layer (the others removed, as structure=heads does), to time a model whose heads were pruned structurally.")
    var keptHeads: Int?

    func validate() throws {
        if batch < 1 { throw ValidationError("--batch must be at least 1, not \(batch)") }
        if seq < 1 || seq > shape.encoder.maxSequenceLength {
            throw ValidationError("--seq must be between 1 and \(shape.encoder.maxSequenceLength) for \(shape.rawValue), not \(seq)")
        }
        if threads < 1 { throw ValidationError("--threads must be at least 1, not \(threads)") }
        if warmup < 0 { throw ValidationError("--warmup cannot be negative") }
        if iterations < 1 { throw ValidationError("--iterations must be at least 1, not \(iterations)") }
        if quant != nil, mode != .infer { throw ValidationError("--quant times inference only; add --mode infer") }
        if let intermediateSize, intermediateSize < 1 { throw ValidationError("--intermediate_size must be at least 1, not \(intermediateSize)") }
        if let keptHeads, !(1...shape.encoder.heads).contains(keptHeads) {
            throw ValidationError("--kept_heads must be between 1 and the \(shape.encoder.heads) heads of \(shape.rawValue), not \(keptHeads)")
        }
    }

    struct Result: Encodable {
        let mode: String, shape: String
        let batch, seq, threads, intermediate_size, heads_per_layer: Int
        let median_ms, min_ms: Double
        let iterations, params: Int
        /// Inference ran the last layer for the [CLS] rows only (`headRowsOnlyInInference`).
        let head_rows_only: Bool
        let peak_rss_mb: Double
        let quant: String?
        /// The quantized kernels' instruction set on this CPU (`avx512-vnni`, `avx2`, `portable`), and
        /// the CPU itself: figures from different machines are not comparable.
        let quant_kernels: String
        let cpu: String
    }

    func run() throws {
        sk_set_threads(Int32(threads))
        var encoder = shape.encoder
        if let intermediateSize { encoder.intermediateSize = intermediateSize }
        if let keptHeads, keptHeads < encoder.heads {
            // Which heads go does not change the timing: the last ones of every layer.
            encoder.prunedHeads = Dictionary(uniqueKeysWithValues: (0..<encoder.storedLayers).map { ($0, Array(keptHeads..<encoder.heads)) })
        }
        let model = SequenceClassifier(shape: encoder, head: .huggingFace(for: encoder.modelType), numLabels: 1)
        model.initializeRandomly(seed: 42)
        model.frozenEncoder = freezeBase
        model.headRowsOnlyInInference = !fullLastLayer

        // Random ids past the special tokens, labels half and half.
        var state: UInt64 = 7
        func nextRandom() -> UInt64 { state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407; return state >> 33 }
        let count = batch * seq
        let ids = (0..<count).map { _ in Int32(5 + Int(nextRandom() % UInt64(encoder.vocabSize - 5))) }
        let mask = [Int32](repeating: 1, count: count)
        let labels = (0..<batch).map { Float($0 % 2) }

        // The quantized layers live as long as the hook, i.e. the model, and so past the timing loop.
        if let quant {
            let method = try PluginRegistry().quantizer(named: quant)
            var calibration: CalibrationHook?
            if method.neededStatistics != 0 {
                let maxRows = Int(method.method.extension(SK_EXT_CALIBRATION, as: sk_calibration_ext.self)?.pointee.max_sample_rows ?? 0)
                let observer = CalibrationHook(needs: method.neededStatistics, maxSampleRows: maxRows, seed: 42)
                model.linearHook = observer
                _ = try model.forward(inputIds: ids, attentionMask: mask, batch: batch, length: seq, training: false)
                calibration = observer
            }
            let weights = try EncoderQuantizer.quantize(network: model, method: method, options: [:], tableMethod: nil, tableOptions: [:],
                                                        calibration: calibration, linear: true, log: { _ in })
            model.linearHook = QuantizedLinearHook(weights)
        }

        // The bench_peers.py PyTorch step: AdamW(lr 2e-5, weight decay 0.01, eps 1e-8) on every parameter.
        // Inference allocates no moments, so peak_rss_mb is the forward's own.
        let optimizer = mode == .train ? AdamW(store: model.store, learningRate: 2e-5, epsilon: 1e-8, weightDecay: 0.01) : nil
        var timings: [Double] = []
        for iteration in 0..<(warmup + iterations) {
            let start = DispatchTime.now().uptimeNanoseconds
            switch mode {
            case .infer:
                _ = try model.forward(inputIds: ids, attentionMask: mask, batch: batch, length: seq, training: false)
            case .train:
                model.store.zeroGradients()
                let logits = try model.forward(inputIds: ids, attentionMask: mask, batch: batch, length: seq, training: true)
                model.backward(dLogits: Self.bceGradient(logits: logits, labels: labels))
                optimizer?.step()
            }
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
            if iteration >= warmup { timings.append(elapsed) }
        }
        timings.sort()
        let median = timings.count % 2 == 1 ? timings[timings.count / 2]
            : (timings[timings.count / 2 - 1] + timings[timings.count / 2]) / 2
        let result = Result(mode: mode.rawValue, shape: shape.rawValue, batch: batch, seq: seq, threads: threads,
                            intermediate_size: encoder.intermediateSize, heads_per_layer: encoder.heads(inLayer: 0), median_ms: (median * 100).rounded() / 100, min_ms: (timings[0] * 100).rounded() / 100,
                            iterations: iterations, params: model.store.count,
                            head_rows_only: mode == .infer && !fullLastLayer,
                            peak_rss_mb: Self.peakResidentMegabytes(), quant: quant,
                            quant_kernels: String(cString: sk_quant_kernel_name(sk_quant_kernel_level())),
                            cpu: Self.cpuModel())
        let encoderJSON = JSONEncoder()
        encoderJSON.outputFormatting = [.sortedKeys]
        print(String(decoding: try encoderJSON.encode(result), as: UTF8.self))
    }

    /// Gradient of mean BCE-with-logits w.r.t. the logits: (sigmoid(x) - y) / B.
    static func bceGradient(logits: [Float], labels: [Float]) -> [Float] {
        zip(logits, labels).map { (1 / (1 + exp(-$0)) - $1) / Float(logits.count) }
    }

    /// The first `model name` line of /proc/cpuinfo with its family/model numbers, or "unknown".
    static func cpuModel() -> String {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown" }
        func field(_ name: String) -> String? {
            info.split(separator: "\n").first { $0.hasPrefix(name) }
                .flatMap { $0.split(separator: ":", maxSplits: 1).last }
                .map { $0.trimmingCharacters(in: .whitespaces) }
        }
        guard let model = field("model name") else { return "unknown" }
        return "\(model) (family \(field("cpu family") ?? "?"), model \(field("model\t") ?? "?"))"
    }

    /// Peak resident set size of this process (VmHWM), in MiB.
    static func peakResidentMegabytes() -> Double {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kilobytes = line.split(separator: " ").compactMap { Double($0) }.first ?? 0
            return (kilobytes / 1024 * 10).rounded() / 10
        }
        return 0
    }
}
