import Foundation
import PluginAPI

/// A plugin library loaded with `dlopen`, checked and initialised: its entry and its methods.
/// Loaded once per process and never unloaded (Swift plugins carry runtime metadata that must not
/// disappear, and a method pointer may be held anywhere).
final class PluginLibrary: @unchecked Sendable {
    /// The library's real path (symlinks resolved).
    let path: String
    let name: String
    let version: String
    let methods: [PluginMethod]
    private let services: HostServices
    /// Position in the process's loading order.
    let order: Int
    /// The plugin's `deinit`, until it has been called.
    private var pendingDeinit: (@convention(c) () -> Void)?

    /// Why loading a file did not give a plugin.
    enum Outcome {
        case plugin(PluginLibrary)
        /// A shared library without the entry symbol: not a plugin (fine inside a scanned folder).
        case notAPlugin(reason: String)
    }

    private init(path: String, name: String, version: String, methods: [PluginMethod], services: HostServices,
                 order: Int, finish: (@convention(c) () -> Void)?) {
        self.order = order
        self.pendingDeinit = finish
        self.path = path
        self.name = name
        self.version = version
        self.methods = methods
        self.services = services
    }

    private nonisolated(unsafe) static var loaded: [String: PluginLibrary] = [:]
    private static let lock = NSLock()

    /// Loads the library at `path` (once per process; later calls return the same object).
    static func load(path: String) throws -> Outcome {
        let realPath = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        lock.lock()
        defer { lock.unlock() }
        if let library = loaded[realPath] { return .plugin(library) }
        try refuseIfWritableByOthers(realPath)

        guard let handle = dlopen(realPath, RTLD_NOW | RTLD_LOCAL) else {
            let reason = dlerror().map { String(cString: $0) } ?? "unknown reason"
            throw PluginError("\(realPath): cannot load the library: \(reason)")
        }
        guard let symbol = dlsym(handle, SANKSHEP_PLUGIN_ENTRY_SYMBOL) else {
            dlclose(handle)
            return .notAPlugin(reason: "\(realPath): not a Sankshep plugin: it does not export \(SANKSHEP_PLUGIN_ENTRY_SYMBOL)")
        }
        let entryFunction = unsafeBitCast(symbol, to: sk_plugin_entry_fn.self)
        guard let entryPointer = entryFunction(UInt32(SANKSHEP_PLUGIN_ABI_VERSION)) else {
            throw PluginError("\(realPath): \(SANKSHEP_PLUGIN_ENTRY_SYMBOL) returned no entry for ABI version \(SANKSHEP_PLUGIN_ABI_VERSION)")
        }
        // The first two fields are the same in every ABI version: check the version before
        // trusting the layout of anything else.
        let abiVersion = UnsafeRawPointer(entryPointer).load(fromByteOffset: 4, as: UInt32.self)
        guard abiVersion == UInt32(SANKSHEP_PLUGIN_ABI_VERSION) else {
            throw PluginError("\(realPath): plugin ABI version \(abiVersion), but this host speaks version \(SANKSHEP_PLUGIN_ABI_VERSION)")
        }
        var entry = sk_plugin_entry()
        guard copyTable(entryPointer, minimum: ABIMinimumSize.entry, into: &entry) else {
            throw PluginError("\(realPath): entry of \(UnsafeRawPointer(entryPointer).load(as: UInt32.self)) bytes is smaller than ABI v1.0's \(ABIMinimumSize.entry)")
        }
        guard let methodCount = entry.method_count, let methodAt = entry.method_at else {
            throw PluginError("\(realPath): the entry lacks method_count or method_at")
        }
        let pluginName = entry.name.map { String(cString: $0) } ?? URL(fileURLWithPath: realPath).lastPathComponent
        let services = HostServices(pluginFile: realPath)
        if let initialise = entry.`init` {
            let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: 1024)
            defer { buffer.deallocate() }
            buffer[0] = 0
            var error = sk_error(struct_size: UInt32(MemoryLayout<sk_error>.size), capacity: 1024, message: buffer)
            let status = initialise(services.table, &error)
            guard status == SK_OK else {
                buffer[1023] = 0
                throw PluginError("\(realPath): plugin init failed (\(statusName(status))): \(String(cString: buffer))")
            }
        }
        var methods: [PluginMethod] = []
        for index in 0..<methodCount() {
            guard let descriptor = methodAt(index) else {
                throw PluginError("\(realPath): method_at(\(index)) returned nothing though method_count() is \(methodCount())")
            }
            let method = try PluginMethod(descriptor: descriptor, position: Int(index), library: realPath, pluginName: pluginName)
            if methods.contains(where: { $0.name == method.name }) {
                throw PluginError("\(realPath): method '\(method.name)' is registered twice by this library")
            }
            methods.append(method)
        }
        let library = PluginLibrary(path: realPath, name: pluginName,
                                    version: entry.version.map { String(cString: $0) } ?? "?",
                                    methods: methods, services: services,
                                    order: loaded.count, finish: entry.`deinit`)
        if loaded.isEmpty { atexit { PluginLibrary.finishAll() } }
        loaded[realPath] = library
        return .plugin(library)
    }

    /// Calls the plugin's `deinit` (once: later calls do nothing). The ABI promises it is the last
    /// call into the library, so the host calls it only at process exit (`finishAll`, registered
    /// with `atexit` when the first library loads), after every other call has returned.
    func finish() {
        PluginLibrary.lock.lock()
        let finish = pendingDeinit
        pendingDeinit = nil
        PluginLibrary.lock.unlock()
        finish?()
    }

    /// Calls every loaded library's `deinit`, in the reverse order of loading.
    static func finishAll() {
        lock.lock()
        let libraries = loaded.values.sorted { $0.order > $1.order }
        lock.unlock()
        libraries.forEach { $0.finish() }
    }

    /// A plugin runs with the host's rights, so a file (or its folder) that other users may change
    /// is refused before any of its code runs.
    static func refuseIfWritableByOthers(_ path: String) throws {
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        for (what, target) in [("plugin file", path), ("plugin folder", folder)] {
            var info = stat()
            guard stat(target, &info) == 0 else {
                throw PluginError("\(target): cannot inspect the \(what): \(String(cString: strerror(errno)))")
            }
            if info.st_mode & (S_IWGRP | S_IWOTH) != 0 {
                let mode = String(info.st_mode & 0o7777, radix: 8)
                throw PluginError("\(target): refusing to load from a \(what) writable by group or others (mode \(mode)); run chmod go-w on it")
            }
        }
    }
}
