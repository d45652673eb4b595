import PluginAPI
import PluginSupport
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Gradual pruning (Zhu & Gupta 2017, "To prune, or not to prune"): during fine-tuning the sparsity
// rises from s_i to s_f between steps t0 and t0 + n*dt, and the masks are recomputed every dt
// steps by a criterion (any pruner method, magnitude by default). This plugin only says HOW MUCH
// to prune at a step; the criterion says WHICH weights.
//
// With p = (t_k - t0) / (n*dt), where t_k = t0 + floor((t - t0) / dt) * dt is the last update step:
//   cubic        s = s_f + (s_i - s_f) * (1 - p)^3          (the paper's schedule: fast early, gentle late)
//   linear       s = s_i + (s_f - s_i) * p
//   exponential  s = 1 - (1 - s_i) * ((1 - s_f) / (1 - s_i))^p
//                (the kept fraction shrinks by the same factor at every update, as in iterative pruning)
// Before t0 the sparsity is s_i; from t0 + n*dt on it is s_f. Masks are recomputed at t0, t0 + dt,
// ... and at t0 + n*dt (also when n*dt is not a multiple of dt), never after.

@_cdecl("sankshep_plugin_entry")
public func sankshepPluginEntry(_ hostABIVersion: UInt32) -> UnsafePointer<sk_plugin_entry>? { entry }

nonisolated(unsafe) let entry = makeEntry(name: "sankshep-gradual", version: "1.0.0", methods: [gradual])

nonisolated(unsafe) let gradual: UnsafePointer<sk_method> = {
    let options = [
        optionSpec("schedule", type: SK_OPTION_ENUM, default: "cubic",
                   help: "how sparsity rises from the initial to the final value",
                   choices: ["cubic", "linear", "exponential"]),
        optionSpec("criterion", type: SK_OPTION_STRING, default: "magnitude",
                   help: "the pruner method that picks which weights to remove at each update"),
    ]
    return leak(sk_method(
        struct_size: UInt32(MemoryLayout<sk_method>.size), kind: UInt32(SK_METHOD_SCHEDULE),
        name: cString("gradual"), version: cString("1.0.0"),
        description: cString("raise sparsity during fine-tuning (cubic schedule of Zhu & Gupta 2017, linear, exponential)"),
        option_count: UInt32(options.count), options: leakArray(options),
        pruner: nil,
        schedule: leak(sk_schedule(
            struct_size: UInt32(MemoryLayout<sk_schedule>.size),
            sparsity_at: { _, window, options, step, sparsity, update, error in
                sparsityAt(window, options, step, sparsity, update, error)
            },
            criterion: { _, options in
                sk_options_get(options, "criterion") ?? defaultCriterion
            })),
        quantizer: nil, get_extension: nil, plugin_data: nil))
}()

nonisolated(unsafe) let defaultCriterion = cString("magnitude")

func sparsityAt(_ window: UnsafePointer<sk_schedule_window>?, _ options: UnsafePointer<sk_options>?, _ step: Int64,
                _ sparsity: UnsafeMutablePointer<Double>?, _ update: UnsafeMutablePointer<Int32>?,
                _ error: UnsafeMutablePointer<sk_error>?) -> sk_status {
    guard let window = window?.pointee, let sparsity, let update else {
        return fail(error, SK_ERR_INVALID_ARGUMENT, "gradual: no window or output given")
    }
    let t0 = window.start_step, end = window.end_step, dt = window.frequency
    let initial = window.initial_sparsity, final = window.final_sparsity
    guard end > t0 else {
        return fail(error, SK_ERR_INVALID_ARGUMENT, "gradual: end step \(end) is not after start step \(t0)")
    }
    guard dt >= 1 else { return fail(error, SK_ERR_INVALID_ARGUMENT, "gradual: frequency \(dt) is not a positive number of steps") }
    guard (0...1).contains(initial), (0...1).contains(final) else {
        return fail(error, SK_ERR_INVALID_ARGUMENT, "gradual: sparsities \(initial) -> \(final) are not both within 0...1")
    }
    let schedule = option(options, "schedule") ?? "cubic"
    if step < t0 { sparsity.pointee = initial; update.pointee = 0; return SK_OK }
    if step >= end { sparsity.pointee = final; update.pointee = step == end ? 1 : 0; return SK_OK }
    let lastUpdate = t0 + (step - t0) / dt * dt
    let p = Double(lastUpdate - t0) / Double(end - t0)
    switch schedule {
    case "cubic": sparsity.pointee = final + (initial - final) * pow(1 - p, 3)
    case "linear": sparsity.pointee = initial + (final - initial) * p
    case "exponential":
        sparsity.pointee = initial >= 1 ? 1 : 1 - (1 - initial) * pow((1 - final) / (1 - initial), p)
    default:
        return fail(error, SK_ERR_INVALID_ARGUMENT, "gradual: unknown schedule '\(schedule)' (cubic, linear, exponential)")
    }
    update.pointee = step == lastUpdate ? 1 : 0
    return SK_OK
}
