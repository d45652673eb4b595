import Foundation
import Testing
@testable import Host

/// Plain reference implementations, written independently of the plugins: sort (score, index)
/// pairs and remove the first k.
enum PruningReference {
    static func count(_ sparsity: Double, _ n: Int) -> Int { Int((sparsity * Double(n)).rounded()) }

    static func keepAllButLowest(_ scores: [Float], _ k: Int) -> [UInt8] {
        let order = scores.indices.sorted { (scores[$0], $0) < (scores[$1], $1) }
        var mask = [UInt8](repeating: 1, count: scores.count)
        for i in order.prefix(k) { mask[i] = 0 }
        return mask
    }

    static func magnitude(_ w: [Float], sparsity: Double) -> [UInt8] {
        keepAllButLowest(w.map { abs($0) }, count(sparsity, w.count))
    }

    /// WANDA, compared within rows; the layer's total round(s * n) spread so rows differ by at most one.
    static func wanda(_ w: [Float], rows: Int, cols: Int, norms: [Float], sparsity: Double) -> [UInt8] {
        let total = count(sparsity, rows * cols)
        return (0..<rows).flatMap { r in
            let scores = (0..<cols).map { c in abs(w[r * cols + c]) * norms[c] }
            return keepAllButLowest(scores, total / rows + (r < total % rows ? 1 : 0))
        }
    }

    /// Rows (or columns) in groups, ranked by the L2 norm of the group.
    static func structured(_ w: [Float], rows: Int, cols: Int, byRows: Bool, group: Int, sparsity: Double) -> [UInt8] {
        let length = byRows ? rows : cols
        let groups = length / group
        let norms = (0..<groups).map { g -> Float in
            var sum = 0.0
            for line in g * group ..< (g + 1) * group {
                for other in 0..<(byRows ? cols : rows) {
                    let value = Double(byRows ? w[line * cols + other] : w[other * cols + line])
                    sum += value * value
                }
            }
            return Float(sum.squareRoot())
        }
        let groupKeep = keepAllButLowest(norms, count(sparsity, groups))
        return (0..<length).map { groupKeep[$0 / group] }
    }
}

@Suite("Pruning plugins: magnitude, WANDA, gradual")
struct PruningPluginTests {
    let registry: PluginRegistry
    init() throws { registry = try PluginTestSupport.builtInRegistry() }

    static let shapes = [(1, 1), (3, 7), (17, 33), (64, 48), (5, 129)]
    static let sparsities = [0.0, 0.1, 0.5, 0.73, 0.9, 1.0]

    @Test("magnitude removes exactly round(sparsity * n) weights per layer and matches the reference mask",
          arguments: shapes)
    func magnitudeExact(rows: Int, cols: Int) throws {
        let magnitude = try registry.pruner(named: "magnitude")
        var generator = SeededGenerator(seed: UInt64(rows * 1000 + cols))
        let w = generator.weights(rows * cols)
        for sparsity in Self.sparsities {
            let mask = try magnitude.prune(weight: w, rows: rows, cols: cols, sparsity: sparsity, layerName: "layer")
            #expect(mask.filter { $0 == 0 }.count == PruningReference.count(sparsity, rows * cols))
            #expect(mask == PruningReference.magnitude(w, sparsity: sparsity))
        }
    }

    @Test("magnitude breaks ties by index, so equal magnitudes give a deterministic mask")
    func magnitudeTies() throws {
        let magnitude = try registry.pruner(named: "magnitude")
        let w: [Float] = (0..<60).map { Float([-1, 0, 1, 2, -2, 0.5][$0 % 6]) }
        let mask = try magnitude.prune(weight: w, rows: 6, cols: 10, sparsity: 0.45)
        #expect(mask == PruningReference.magnitude(w, sparsity: 0.45))
        #expect(mask.filter { $0 == 0 }.count == 27)
    }

    @Test("a weight that is not a finite number makes the plugin return an error status naming the position")
    func magnitudeRejectsNaN() throws {
        let magnitude = try registry.pruner(named: "magnitude")
        let error = try #require(throws: PluginError.self) {
            try magnitude.prune(weight: [1, 2, .nan, 4], rows: 2, cols: 2, sparsity: 0.5, layerName: "encoder.layer.0.ffn")
        }
        #expect(error.message.hasPrefix("pruner 'magnitude' ("))
        #expect(error.message.hasSuffix("libSankshepMagnitude.so): encoder.layer.0.ffn: weight at row 1, column 0 is nan, not a finite number"))
    }

    @Test("a sparsity outside 0...1 is refused before the plugin is called")
    func impossibleSparsity() throws {
        let magnitude = try registry.pruner(named: "magnitude")
        #expect(throws: PluginError("pruner 'magnitude': sparsity 1.5 is outside 0...1")) {
            try magnitude.prune(weight: [1, 2], rows: 1, cols: 2, sparsity: 1.5)
        }
    }

    @Test("structured magnitude removes whole FFN neurons (rows) and whole heads (groups of rows or columns) by L2 norm")
    func magnitudeStructured() throws {
        let magnitude = try registry.pruner(named: "magnitude")
        #expect(magnitude.supportsStructured)
        var generator = SeededGenerator(seed: 11)
        let (rows, cols) = (24, 16)
        let w = generator.weights(rows * cols)
        try w.withUnsafeBufferPointer { data in
            let view = WeightView(data: data, rows: rows, cols: cols, layerName: "ffn", layerKind: .ffn)
            for (axis, group, sparsity) in [(PrunerMethod.Axis.rows, 1, 0.5), (.rows, 4, 0.5), (.cols, 4, 0.25), (.cols, 1, 0.6)] {
                let keep = try magnitude.pruneStructured(weight: view, axis: axis, groupSize: group, sparsity: sparsity)
                let expected = PruningReference.structured(w, rows: rows, cols: cols, byRows: axis == .rows, group: group, sparsity: sparsity)
                #expect(keep == expected)
                let length = axis == .rows ? rows : cols
                #expect(keep.filter { $0 == 0 }.count == PruningReference.count(sparsity, length / group) * group)
            }
        }
    }

    @Test("global magnitude ranks all layers together and removes exactly round(sparsity * total)")
    func magnitudeGlobal() throws {
        let magnitude = try registry.pruner(named: "magnitude")
        var generator = SeededGenerator(seed: 5)
        let small = generator.weights(8 * 6, in: -0.1...0.1)  // mostly pruned: small weights
        let large = generator.weights(10 * 6, in: -2...2)
        let masks = try small.withUnsafeBufferPointer { a in
            try large.withUnsafeBufferPointer { b in
                try magnitude.pruneGlobally(weights: [WeightView(data: a, rows: 8, cols: 6), WeightView(data: b, rows: 10, cols: 6)],
                                            sparsity: 0.5)
            }
        }
        let reference = PruningReference.magnitude(small + large, sparsity: 0.5)
        #expect(masks[0] + masks[1] == reference)
        #expect((masks[0] + masks[1]).filter { $0 == 0 }.count == 54)
        #expect(masks[0].filter { $0 == 0 }.count > masks[1].filter { $0 == 0 }.count)
    }

    @Test("WANDA prunes |W| * ||X_j|| lowest within each row, exactly per layer, matching the reference", arguments: shapes)
    func wandaExact(rows: Int, cols: Int) throws {
        let wanda = try registry.pruner(named: "wanda")
        var generator = SeededGenerator(seed: UInt64(rows * 7 + cols))
        let w = generator.weights(rows * cols)
        let norms = generator.weights(cols, in: 0...5)
        let stats = ActivationStats(features: cols, tokens: 100, inputL2Norm: norms)
        for sparsity in Self.sparsities {
            let mask = try wanda.prune(weight: w, rows: rows, cols: cols, sparsity: sparsity, stats: stats)
            #expect(mask.filter { $0 == 0 }.count == PruningReference.count(sparsity, rows * cols))
            #expect(mask == PruningReference.wanda(w, rows: rows, cols: cols, norms: norms, sparsity: sparsity))
            // Each row loses floor or ceil of sparsity * cols.
            let perRow = (0..<rows).map { r in mask[r * cols ..< (r + 1) * cols].filter { $0 == 0 }.count }
            #expect((perRow.max() ?? 0) - (perRow.min() ?? 0) <= 1)
        }
    }

    @Test("WANDA differs from magnitude when input norms differ: a large weight on a silent feature goes first")
    func wandaUsesNorms() throws {
        let wanda = try registry.pruner(named: "wanda")
        let w: [Float] = [5, 1, 5, 1]  // (2, 2)
        let stats = ActivationStats(features: 2, tokens: 10, inputL2Norm: [0.01, 10])
        #expect(try wanda.prune(weight: w, rows: 2, cols: 2, sparsity: 0.5, stats: stats) == [0, 1, 0, 1])
        let layer = try wanda.prune(weight: w, rows: 2, cols: 2, sparsity: 0.5, options: ["group": "layer"], stats: stats)
        #expect(layer == PruningReference.keepAllButLowest([0.05, 10, 0.05, 10], 2))
    }

    @Test("WANDA without calibration statistics is refused, saying what is missing")
    func wandaNeedsStatistics() throws {
        let wanda = try registry.pruner(named: "wanda")
        #expect(wanda.neededStatistics != 0)
        let error = try #require(throws: PluginError.self) {
            try wanda.prune(weight: [1, 2, 3, 4], rows: 2, cols: 2, sparsity: 0.5, layerName: "bert.encoder.layer.3.output.dense.weight")
        }
        #expect(error.message == "pruner 'wanda' needs calibration statistics (input L2 norms) for bert.encoder.layer.3.output.dense.weight, and none were collected")
        let mismatch = try #require(throws: PluginError.self) {
            try wanda.prune(weight: [1, 2, 3, 4], rows: 2, cols: 2, sparsity: 0.5,
                            stats: ActivationStats(features: 3, tokens: 1, inputL2Norm: [1, 1, 1]), layerName: "l")
        }
        #expect(mismatch.message == "l: statistics of 3 input features for a weight with 2 columns")
    }

    /// The schedule's value at every step, written from the formulas.
    static func expectedSparsity(_ schedule: String, step t: Int, _ w: ScheduleWindow) -> (Double, Bool) {
        if t < w.startStep { return (w.initialSparsity, false) }
        if t >= w.endStep { return (w.finalSparsity, t == w.endStep) }
        let last = w.startStep + (t - w.startStep) / w.frequency * w.frequency
        let p = Double(last - w.startStep) / Double(w.endStep - w.startStep)
        let (si, sf) = (w.initialSparsity, w.finalSparsity)
        let s = switch schedule {
        case "cubic": sf + (si - sf) * pow(1 - p, 3)
        case "linear": si + (sf - si) * p
        default: 1 - (1 - si) * pow((1 - sf) / (1 - si), p)
        }
        return (s, t == last)
    }

    @Test("the cubic schedule matches Zhu & Gupta's formula at every step, updating every frequency steps")
    func cubicSchedule() throws {
        let gradual = try registry.schedule(named: "gradual")
        let window = ScheduleWindow(startStep: 10, endStep: 310, frequency: 25, initialSparsity: 0.05, finalSparsity: 0.8)
        for step in 0...400 {
            let (sparsity, update) = try gradual.sparsity(atStep: step, window: window)
            let (expected, expectedUpdate) = Self.expectedSparsity("cubic", step: step, window)
            #expect(abs(sparsity - expected) <= 1e-12, "step \(step)")
            #expect(update == expectedUpdate, "step \(step)")
        }
        #expect(try abs(gradual.sparsity(atStep: 10, window: window).sparsity - 0.05) < 1e-12)
        #expect(try gradual.sparsity(atStep: 310, window: window) == (0.8, true))
        // 300 steps at frequency 25: updates at 10, 35, ..., 285 and the final one at 310.
        #expect(try (0...400).filter { try gradual.sparsity(atStep: $0, window: window).update }.count == 13)
    }

    @Test("linear and exponential schedules match their formulas and rise monotonically", arguments: ["linear", "exponential"])
    func otherSchedules(schedule: String) throws {
        let gradual = try registry.schedule(named: "gradual")
        let window = ScheduleWindow(startStep: 0, endStep: 97, frequency: 10, initialSparsity: 0, finalSparsity: 0.9)
        var previous = -1.0
        for step in 0...120 {
            let (sparsity, update) = try gradual.sparsity(atStep: step, window: window, options: ["schedule": schedule])
            let (expected, expectedUpdate) = Self.expectedSparsity(schedule, step: step, window)
            #expect(abs(sparsity - expected) <= 1e-12, "step \(step)")
            #expect(update == expectedUpdate)
            #expect(sparsity >= previous)
            previous = sparsity
        }
    }

    @Test("gradual delegates scoring to a named criterion, magnitude by default, looked up among pruners")
    func gradualCriterion() throws {
        let gradual = try registry.schedule(named: "gradual")
        #expect(try gradual.criterion() == "magnitude")
        #expect(try gradual.criterion(options: ["criterion": "wanda"], in: registry).name == "wanda")
        #expect(throws: PluginError("unknown pruner method 'obs'; known pruner methods: magnitude, wanda")) {
            try gradual.criterion(options: ["criterion": "obs"], in: registry)
        }
    }

    @Test("a schedule window that is empty is refused in one line")
    func emptyWindow() throws {
        let gradual = try registry.schedule(named: "gradual")
        #expect(throws: PluginError("schedule 'gradual': window 5...5 every 1 steps is empty")) {
            try gradual.sparsity(atStep: 0, window: ScheduleWindow(startStep: 5, endStep: 5, frequency: 1, finalSparsity: 0.5))
        }
    }
}
