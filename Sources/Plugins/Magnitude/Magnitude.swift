import PluginAPI
import PluginSupport

// Magnitude pruning: the smallest weights matter least.
//
//   unstructured  per layer, exactly round(sparsity * rows * cols) weights with the smallest |W_ij|
//                 are removed; ties go to the lower flat index. Global pruning (one threshold for
//                 all layers) is done by the host through the "sankshep.scores/1" extension, which
//                 gives it |W_ij| for every layer -- the plugin never needs to see all layers at once.
//   structured    whole groups of rows or columns (FFN neurons, attention heads) ranked by the
//                 L2 (or L1) norm of their weights; exactly round(sparsity * groups) are removed.

@_cdecl("sankshep_plugin_entry")
public func sankshepPluginEntry(_ hostABIVersion: UInt32) -> UnsafePointer<sk_plugin_entry>? { entry }

nonisolated(unsafe) let entry = makeEntry(name: "sankshep-magnitude", version: "1.0.0", methods: [magnitude])

nonisolated(unsafe) let magnitude: UnsafePointer<sk_method> = {
    let options = [
        optionSpec("norm", type: SK_OPTION_ENUM, default: "l2",
                   help: "structured mode: rank rows/columns/heads by the L2 or L1 norm of their weights",
                   choices: ["l2", "l1"]),
    ]
    return leak(sk_method(
        struct_size: UInt32(MemoryLayout<sk_method>.size), kind: UInt32(SK_METHOD_PRUNER),
        name: cString("magnitude"), version: cString("1.0.0"),
        description: cString("remove the weights (or rows, columns, heads) of smallest magnitude, exactly per layer"),
        option_count: UInt32(options.count), options: leakArray(options),
        pruner: leak(sk_pruner(
            struct_size: UInt32(MemoryLayout<sk_pruner>.size),
            prune: { _, weight, _, sparsity, _, keepMask, error in
                pruneUnstructured(weight, sparsity, keepMask, error)
            },
            prune_structured: { _, weight, _, structure, sparsity, options, keep, error in
                pruneStructured(weight, structure, sparsity, options, keep, error)
            })),
        schedule: nil, quantizer: nil,
        get_extension: { _, id in
            guard let id, String(cString: id) == SK_EXT_SCORES else { return nil }
            return UnsafeRawPointer(scoresExtension)
        },
        plugin_data: nil))
}()

nonisolated(unsafe) let scoresExtension = leak(sk_scores_ext(
    struct_size: UInt32(MemoryLayout<sk_scores_ext>.size),
    score: { _, weight, _, _, scores, error in
        guard let weight = weight?.pointee, let scores else {
            return fail(error, SK_ERR_INVALID_ARGUMENT, "magnitude: no weight or score buffer given")
        }
        if let problem = check(weight) { return fail(error, SK_ERR_INVALID_ARGUMENT, problem) }
        let n = Int(weight.rows * weight.cols)
        for i in 0..<n { scores[i] = abs(weight.data[i]) }
        return SK_OK
    }))

/// Why a weight view cannot be pruned, or nil.
func check(_ weight: sk_weight_view) -> String? {
    let name = weight.layer_name.map { String(cString: $0) } ?? "(unnamed layer)"
    guard weight.data != nil, weight.rows > 0, weight.cols > 0 else {
        return "\(name): empty weight (\(weight.rows) x \(weight.cols))"
    }
    guard weight.rows * weight.cols <= Int64(UInt32.max) else {
        return "\(name): \(weight.rows) x \(weight.cols) weights are more than this method ranks (2^32 - 1)"
    }
    let data = UnsafeBufferPointer(start: weight.data, count: Int(weight.rows * weight.cols))
    if let bad = firstNonFinite(data, cols: Int(weight.cols)) {
        return "\(name): weight at row \(bad.row), column \(bad.col) is \(data[bad.row * Int(weight.cols) + bad.col]), not a finite number"
    }
    return nil
}

func pruneUnstructured(_ view: UnsafePointer<sk_weight_view>?, _ sparsity: Double,
                       _ keepMask: UnsafeMutablePointer<UInt8>?, _ error: UnsafeMutablePointer<sk_error>?) -> sk_status {
    guard let weight = view?.pointee, let keepMask else {
        return fail(error, SK_ERR_INVALID_ARGUMENT, "magnitude: no weight or mask buffer given")
    }
    if let problem = check(weight) { return fail(error, SK_ERR_INVALID_ARGUMENT, problem) }
    guard sparsity >= 0, sparsity <= 1 else {
        return fail(error, SK_ERR_INVALID_ARGUMENT, "magnitude: sparsity \(sparsity) is outside 0...1")
    }
    let n = Int(weight.rows * weight.cols)
    // (rows * cols) importance = |W|
    let scores = [Float](unsafeUninitializedCapacity: n) { scores, initialized in
        for i in 0..<n { scores[i] = abs(weight.data[i]) }
        initialized = n
    }
    scores.withUnsafeBufferPointer { scores in
        keepAllButLowest(scores, count: prunedCount(sparsity: sparsity, of: n),
                         mask: UnsafeMutableBufferPointer(start: keepMask, count: n))
    }
    return SK_OK
}

func pruneStructured(_ view: UnsafePointer<sk_weight_view>?, _ structure: UnsafePointer<sk_structure>?,
                     _ sparsity: Double, _ options: UnsafePointer<sk_options>?,
                     _ keep: UnsafeMutablePointer<UInt8>?, _ error: UnsafeMutablePointer<sk_error>?) -> sk_status {
    guard let weight = view?.pointee, let structure = structure?.pointee, let keep else {
        return fail(error, SK_ERR_INVALID_ARGUMENT, "magnitude: no weight, structure or mask buffer given")
    }
    if let problem = check(weight) { return fail(error, SK_ERR_INVALID_ARGUMENT, problem) }
    guard sparsity >= 0, sparsity <= 1 else {
        return fail(error, SK_ERR_INVALID_ARGUMENT, "magnitude: sparsity \(sparsity) is outside 0...1")
    }
    let rows = Int(weight.rows), cols = Int(weight.cols)
    let byRows = structure.axis == UInt32(SK_AXIS_ROWS)
    let length = byRows ? rows : cols
    let groupSize = Int(structure.group_size)
    guard groupSize >= 1, length % groupSize == 0 else {
        return fail(error, SK_ERR_INVALID_ARGUMENT,
                    "magnitude: group size \(groupSize) does not divide the \(length) \(byRows ? "rows" : "columns")")
    }
    let useL1 = option(options, "norm") == "l1"
    // (length) norm of each row or column, summed over its groups below
    var lineNorm = [Double](repeating: 0, count: length)
    for r in 0..<rows {
        for c in 0..<cols {
            let w = Double(weight.data[r * cols + c])
            lineNorm[byRows ? r : c] += useL1 ? abs(w) : w * w
        }
    }
    let groups = length / groupSize
    // (groups) importance of each group
    let groupScore = (0..<groups).map { g -> Float in
        let total = lineNorm[g * groupSize ..< (g + 1) * groupSize].reduce(0, +)
        return Float(useL1 ? total : total.squareRoot())
    }
    var groupKeep = [UInt8](repeating: 1, count: groups)
    groupScore.withUnsafeBufferPointer { scores in
        groupKeep.withUnsafeMutableBufferPointer { mask in
            keepAllButLowest(scores, count: prunedCount(sparsity: sparsity, of: groups), mask: mask)
        }
    }
    for i in 0..<length { keep[i] = groupKeep[i / groupSize] }
    return SK_OK
}
