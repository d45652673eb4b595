import Foundation
import PluginAPI

/// The window of gradual pruning, in optimizer steps: sparsity rises from `initialSparsity` at
/// `startStep` to `finalSparsity` at `endStep`, masks recomputed every `frequency` steps.
struct ScheduleWindow: Sendable {
    var startStep: Int
    var endStep: Int
    var frequency: Int
    var initialSparsity: Double = 0
    var finalSparsity: Double
}

/// A schedule method from a plugin, called with Swift values.
struct ScheduleMethod: Sendable {
    let method: PluginMethod
    init(_ method: PluginMethod) { self.method = method }

    var name: String { method.name }

    /// The sparsity masks hold during `step`, and whether they are recomputed at it.
    func sparsity(atStep step: Int, window: ScheduleWindow, options: [String: String] = [:]) throws -> (sparsity: Double, update: Bool) {
        guard window.endStep > window.startStep, window.frequency >= 1 else {
            throw PluginError("schedule '\(name)': window \(window.startStep)...\(window.endStep) every \(window.frequency) steps is empty")
        }
        let sparsityAt = method.schedule.sparsity_at!
        var cWindow = sk_schedule_window(
            struct_size: UInt32(MemoryLayout<sk_schedule_window>.size), start_step: Int64(window.startStep),
            end_step: Int64(window.endStep), frequency: Int64(window.frequency),
            initial_sparsity: window.initialSparsity, final_sparsity: window.finalSparsity)
        var sparsity = 0.0
        var update: Int32 = 0
        try method.withCOptions(options) { options in
            try method.call { sparsityAt(method.descriptor, &cWindow, options, Int64(step), &sparsity, &update, $0) }
        }
        guard sparsity.isFinite, (0...1).contains(sparsity) else {
            throw PluginError("schedule '\(name)' (\(method.file)) gave sparsity \(sparsity) at step \(step)")
        }
        return (sparsity, update != 0)
    }

    /// The name of the pruner method the schedule delegates scoring to.
    func criterion(options: [String: String] = [:]) throws -> String {
        let criterion = method.schedule.criterion!
        return try method.withCOptions(options) { options in
            guard let name = criterion(method.descriptor, options) else {
                throw PluginError("schedule '\(name)' (\(method.file)) named no criterion")
            }
            return String(cString: name)
        }
    }

    /// The criterion, looked up as a pruner in `registry`.
    func criterion(options: [String: String] = [:], in registry: PluginRegistry) throws -> PrunerMethod {
        try registry.pruner(named: criterion(options: options))
    }
}
