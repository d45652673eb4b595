import Foundation
import Logging
import Kernels
import PluginAPI

/// The `sk_host` table a library receives at `init`, with what its callbacks need. One per loaded
/// library, alive for the rest of the process (libraries are never unloaded).
final class HostServices: @unchecked Sendable {
    let logger: Logger
    let table: UnsafeMutablePointer<sk_host>
    private let versionString: UnsafeMutablePointer<CChar>

    init(pluginFile: String) {
        logger = Logger(label: "sankshep.plugin.\(URL(fileURLWithPath: pluginFile).lastPathComponent)")
        versionString = strdup(Sankshep.configuration.version)!
        table = .allocate(capacity: 1)
        table.initialize(to: sk_host(
            struct_size: UInt32(MemoryLayout<sk_host>.size),
            abi_version: UInt32(SANKSHEP_PLUGIN_ABI_VERSION),
            host_version: UnsafePointer(versionString),
            host_data: nil,
            log: { host, level, message in
                guard let services = HostServices.from(host), let message else { return }
                let text = String(cString: message)
                switch level {
                case SK_LOG_DEBUG: services.logger.debug("\(text)")
                case SK_LOG_INFO: services.logger.info("\(text)")
                case SK_LOG_WARNING: services.logger.warning("\(text)")
                default: services.logger.error("\(text)")
                }
            },
            progress: { host, task, done, total in
                guard let services = HostServices.from(host) else { return }
                services.logger.trace("\(task.map { String(cString: $0) } ?? "progress"): \(done)/\(total)")
            },
            alloc: { _, bytes, alignment in
                // posix_memalign wants a power of two that is a multiple of the pointer size.
                guard alignment.nonzeroBitCount == 1, alignment <= 4096 else { return nil }
                var pointer: UnsafeMutableRawPointer?
                let status = posix_memalign(&pointer, max(alignment, MemoryLayout<UnsafeRawPointer>.size), max(bytes, 1))
                return status == 0 ? pointer : nil
            },
            free: { _, pointer in free(pointer) },
            // No calibration data is reachable through the table yet: methods that need statistics
            // receive them as call arguments (`sk_activation_stats`), which the ABI allows.
            calibration_stats: nil,
            // The host's own pool, so plugin kernels and the model's loops share one set of threads.
            parallel_for: { _, n, body, context in sk_parallel_for(n, body, context) },
            thread_count: { _ in sk_get_threads() }))
        table.pointee.host_data = Unmanaged.passUnretained(self).toOpaque()
    }

    private static func from(_ host: UnsafePointer<sk_host>?) -> HostServices? {
        guard let data = host?.pointee.host_data else { return nil }
        return Unmanaged<HostServices>.fromOpaque(data).takeUnretainedValue()
    }
}
