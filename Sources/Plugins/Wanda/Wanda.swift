import PluginAPI
import PluginSupport

// WANDA (Sun, Liu, Bair & Kolter 2023, "A Simple and Effective Pruning Approach for Large Language
// Models"): the importance of W_ij is |W_ij| * ||X_j||_2, where ||X_j||_2 is the L2 norm of input
// feature j over the calibration tokens. A weight on a feature that is always small matters little
// even when the weight is large. Weights are compared within each output row (the paper's choice,
// `group=row`) or across the whole layer (`group=layer`).
//
// Exactness: the layer loses exactly round(sparsity * rows * cols) weights. With `group=row` that
// total is spread over the rows so that no two rows differ by more than one (the first rows take
// the extra weight), i.e. every row loses floor or ceil of sparsity * cols.

@_cdecl("sankshep_plugin_entry")
public func sankshepPluginEntry(_ hostABIVersion: UInt32) -> UnsafePointer<sk_plugin_entry>? { entry }

nonisolated(unsafe) let entry = makeEntry(name: "sankshep-wanda", version: "1.0.0", methods: [wanda])

nonisolated(unsafe) let wanda: UnsafePointer<sk_method> = {
    let options = [
        optionSpec("group", type: SK_OPTION_ENUM, default: "row",
                   help: "compare scores within each output row (as the paper) or across the whole layer",
                   choices: ["row", "layer"]),
    ]
    return leak(sk_method(
        struct_size: UInt32(MemoryLayout<sk_method>.size), kind: UInt32(SK_METHOD_PRUNER),
        name: cString("wanda"), version: cString("1.0.0"),
        description: cString("remove the weights with the smallest |W_ij| * ||X_j||_2 (needs calibration data)"),
        option_count: UInt32(options.count), options: leakArray(options),
        pruner: leak(sk_pruner(
            struct_size: UInt32(MemoryLayout<sk_pruner>.size),
            prune: { _, weight, stats, sparsity, options, keepMask, error in
                prune(weight, stats, sparsity, options, keepMask, error)
            },
            prune_structured: nil)),
        schedule: nil, quantizer: nil,
        get_extension: { _, id in
            guard let id else { return nil }
            switch String(cString: id) {
            case SK_EXT_CALIBRATION: return UnsafeRawPointer(calibrationExtension)
            case SK_EXT_SCORES: return UnsafeRawPointer(scoresExtension)
            default: return nil
            }
        },
        plugin_data: nil))
}()

nonisolated(unsafe) let calibrationExtension = leak(sk_calibration_ext(
    struct_size: UInt32(MemoryLayout<sk_calibration_ext>.size),
    needs: UInt32(SK_STAT_INPUT_L2_NORM), max_sample_rows: 0))

nonisolated(unsafe) let scoresExtension = leak(sk_scores_ext(
    struct_size: UInt32(MemoryLayout<sk_scores_ext>.size),
    score: { _, weight, stats, _, scores, error in
        guard let weight = weight?.pointee, let scores else {
            return fail(error, SK_ERR_INVALID_ARGUMENT, "wanda: no weight or score buffer given")
        }
        switch inputNorms(weight, stats) {
        case .failure(let problem): return fail(error, SK_ERR_INVALID_ARGUMENT, problem.text)
        case .success(let norms): fillScores(weight, norms, scores)
        }
        return SK_OK
    }))

struct Problem: Error { let text: String }

/// The checked per-input-feature norms for a weight, or why they cannot be used.
func inputNorms(_ weight: sk_weight_view, _ stats: UnsafePointer<sk_activation_stats>?) -> Result<UnsafePointer<Float>, Problem> {
    let name = weight.layer_name.map { String(cString: $0) } ?? "(unnamed layer)"
    guard weight.data != nil, weight.rows > 0, weight.cols > 0 else {
        return .failure(Problem(text: "\(name): empty weight (\(weight.rows) x \(weight.cols))"))
    }
    guard weight.rows * weight.cols <= Int64(UInt32.max) else {
        return .failure(Problem(text: "\(name): \(weight.rows) x \(weight.cols) weights are more than this method ranks (2^32 - 1)"))
    }
    guard let stats = stats?.pointee, stats.present & UInt32(SK_STAT_INPUT_L2_NORM) != 0,
          let norms = stats.input_l2_norm else {
        return .failure(Problem(text: "\(name): wanda needs the input-feature norms ||X_j||_2 from calibration data, and none were given"))
    }
    guard stats.features == weight.cols else {
        return .failure(Problem(text: "\(name): \(stats.features) input-feature norms for a weight with \(weight.cols) columns"))
    }
    let data = UnsafeBufferPointer(start: weight.data, count: Int(weight.rows * weight.cols))
    if let bad = firstNonFinite(data, cols: Int(weight.cols)) {
        return .failure(Problem(text: "\(name): weight at row \(bad.row), column \(bad.col) is \(data[bad.row * Int(weight.cols) + bad.col]), not a finite number"))
    }
    for j in 0..<Int(weight.cols) where !(norms[j].isFinite && norms[j] >= 0) {
        return .failure(Problem(text: "\(name): input-feature norm \(j) is \(norms[j]), not a finite number >= 0"))
    }
    return .success(norms)
}

/// scores (rows, cols) = |W| * norms[col]
func fillScores(_ weight: sk_weight_view, _ norms: UnsafePointer<Float>, _ scores: UnsafeMutablePointer<Float>) {
    let rows = Int(weight.rows), cols = Int(weight.cols)
    for r in 0..<rows {
        for c in 0..<cols { scores[r * cols + c] = abs(weight.data[r * cols + c]) * norms[c] }
    }
}

func prune(_ view: UnsafePointer<sk_weight_view>?, _ stats: UnsafePointer<sk_activation_stats>?, _ sparsity: Double,
           _ options: UnsafePointer<sk_options>?, _ keepMask: UnsafeMutablePointer<UInt8>?,
           _ error: UnsafeMutablePointer<sk_error>?) -> sk_status {
    guard let weight = view?.pointee, let keepMask else {
        return fail(error, SK_ERR_INVALID_ARGUMENT, "wanda: no weight or mask buffer given")
    }
    guard sparsity >= 0, sparsity <= 1 else {
        return fail(error, SK_ERR_INVALID_ARGUMENT, "wanda: sparsity \(sparsity) is outside 0...1")
    }
    let norms: UnsafePointer<Float>
    switch inputNorms(weight, stats) {
    case .failure(let problem): return fail(error, SK_ERR_INVALID_ARGUMENT, problem.text)
    case .success(let value): norms = value
    }
    let rows = Int(weight.rows), cols = Int(weight.cols), n = rows * cols
    var scores = [Float](repeating: 0, count: n)  // (rows, cols)
    scores.withUnsafeMutableBufferPointer { fillScores(weight, norms, $0.baseAddress!) }
    let total = prunedCount(sparsity: sparsity, of: n)
    scores.withUnsafeBufferPointer { scores in
        if option(options, "group") == "layer" {
            keepAllButLowest(scores, count: total, mask: UnsafeMutableBufferPointer(start: keepMask, count: n))
            return
        }
        // Spread `total` over the rows: every row loses total / rows, the first total % rows one more.
        for r in 0..<rows {
            let k = total / rows + (r < total % rows ? 1 : 0)
            keepAllButLowest(UnsafeBufferPointer(rebasing: scores[r * cols ..< (r + 1) * cols]), count: k,
                             mask: UnsafeMutableBufferPointer(start: keepMask + r * cols, count: cols))
        }
    }
    return SK_OK
}
