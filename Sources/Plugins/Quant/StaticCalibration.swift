import PluginAPI
import PluginSupport

// Static INT8 needs one activation scale per layer input, fixed before any real input is seen. It is
// chosen from the statistics the host gathered on calibration batches ("sankshep.calibration/1"):
//
//   minmax      the largest |x| of any calibration token: nothing clips, but one outlier feature
//               stretches the step for everything else;
//   percentile  the `percentile`-th percentile of |x| over the sampled calibration rows: the rare
//               largest values clip so the bulk gets a finer step (TensorRT's percentile calibrator);
//   mse         the clipping threshold t that minimises the mean squared error of
//               quantize-then-dequantize over the sampled values (clipping error above t, rounding
//               error below), searched on a histogram of |x|.
//
// The scale is t / 127. minmax reads the per-feature abs-max (over every calibration token);
// percentile and mse read the sampled rows, which is why the method asks for both.

enum Observer: String, CaseIterable {
    case minmax, percentile, mse
}

/// Rows of calibration input the static method asks the host to keep per layer: enough for a
/// 99.99th percentile to rest on ~150 values at K = 768, small enough to hold for every layer.
let calibrationSampleRows: Int64 = 2048

/// The calibrated per-tensor activation scale (> 0) for a layer whose input has `features` columns.
func staticInputScale(observer: Observer, percentile: Double, stats: UnsafePointer<sk_activation_stats>?,
                      features: Int, layer: String) throws -> Float {
    guard let stats = stats?.pointee else {
        throw QuantFailure.invalid("\(layer): static quantization needs calibration statistics, and none were given")
    }
    guard stats.features == Int64(features) else {
        throw QuantFailure.invalid("\(layer): calibration statistics of \(stats.features) features for a weight with \(features) columns")
    }
    // The largest |x| over every calibration token, from whichever statistic carries it.
    var largest: Float = 0
    if stats.present & UInt32(SK_STAT_INPUT_ABS_MAX) != 0, let absMax = stats.input_abs_max {
        for j in 0..<features { largest = max(largest, absMax[j]) }
    } else if stats.present & UInt32(SK_STAT_INPUT_RANGE) != 0 {
        largest = max(abs(stats.input_min), abs(stats.input_max))
    }
    let samples = sampledMagnitudes(stats, features: features)
    if let sampleLargest = samples?.max() { largest = max(largest, sampleLargest) }
    guard largest.isFinite else { throw QuantFailure.invalid("\(layer): calibration inputs hold a value that is not a finite number") }

    let threshold: Float
    switch observer {
    case .minmax:
        guard stats.present & UInt32(SK_STAT_INPUT_ABS_MAX | SK_STAT_INPUT_RANGE) != 0 || samples != nil else {
            throw QuantFailure.invalid("\(layer): observer minmax needs the input abs-max (or range) from calibration, and none was given")
        }
        threshold = largest
    case .percentile, .mse:
        guard var values = samples, !values.isEmpty else {
            throw QuantFailure.invalid("\(layer): observer \(observer.rawValue) needs sampled calibration rows, and none were given")
        }
        if observer == .percentile {
            guard percentile > 0, percentile <= 100 else {
                throw QuantFailure.invalid("\(layer): percentile \(percentile) is outside (0, 100]")
            }
            values.sort()
            // The smallest value with at least `percentile` % of the samples at or below it.
            let rank = Int((percentile / 100 * Double(values.count)).rounded(.up))
            threshold = values[min(max(rank, 1), values.count) - 1]
        } else {
            threshold = mseThreshold(values, largest: largest)
        }
    }
    guard threshold > 0 else {
        throw QuantFailure.invalid("\(layer): every calibration input is zero, so no static scale can be chosen")
    }
    return threshold / 127
}

/// |x| of every sampled value, or nil when no samples were given.
private func sampledMagnitudes(_ stats: sk_activation_stats, features: Int) -> [Float]? {
    guard stats.present & UInt32(SK_STAT_INPUT_SAMPLES) != 0, let samples = stats.samples, stats.sample_rows > 0 else { return nil }
    let count = Int(stats.sample_rows) * features
    return (0..<count).map { abs(samples[$0]) }
}

/// The clipping threshold with the least quantize-dequantize squared error over `values` (all >= 0).
/// The values go into a fine histogram over [0, largest]; each candidate t is scored on the bin
/// centres: (v - t)² above t, the rounding error of v to the grid of step t/127 below it. Candidates
/// are 1/256 steps of `largest` (from 1/64 up), then 64 finer steps around the best of those.
func mseThreshold(_ values: [Float], largest: Float) -> Float {
    guard largest > 0 else { return 0 }
    let bins = 8192
    var counts = [Double](repeating: 0, count: bins)
    let toBin = Float(bins) / largest
    for v in values { counts[min(Int(v * toBin), bins - 1)] += 1 }
    let width = Double(largest) / Double(bins)
    func error(_ t: Double) -> Double {
        let quantum = t / 127
        var total = 0.0
        for b in 0..<bins where counts[b] > 0 {
            let v = (Double(b) + 0.5) * width
            let difference = v >= t ? v - t : v - (v / quantum).rounded() * quantum
            total += counts[b] * difference * difference
        }
        return total
    }
    func best(among candidates: [Double]) -> Double {
        candidates.map { ($0, error($0)) }.min { $0.1 < $1.1 }!.0
    }
    let coarse = Double(largest) / 256
    let first = best(among: (4...256).map { Double($0) * coarse })
    let refined = best(among: (-32...32).map { first + Double($0) * coarse / 32 }.filter { $0 > 0 && $0 <= Double(largest) })
    return Float(refined)
}
