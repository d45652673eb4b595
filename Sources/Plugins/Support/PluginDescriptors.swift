import PluginAPI
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Shared by the built-in plugins, each of which links its own copy (so each keeps its own host pointer
// and method table): the C descriptors a plugin hands to the host. They are built once, on the first call of the
// entry symbol (Swift globals are initialised exactly once, thread-safely), and never freed: the ABI
// says they live until the library is unloaded.

/// The host's services, kept from `init` until `deinit`.
nonisolated(unsafe) public var host: UnsafePointer<sk_host>?

public func cString(_ text: String) -> UnsafePointer<CChar> { UnsafePointer(strdup(text)!) }

public func leak<T>(_ value: T) -> UnsafePointer<T> {
    let pointer = UnsafeMutablePointer<T>.allocate(capacity: 1)
    pointer.initialize(to: value)
    return UnsafePointer(pointer)
}

public func leakArray<T>(_ values: [T]) -> UnsafePointer<T> {
    let pointer = UnsafeMutablePointer<T>.allocate(capacity: max(values.count, 1))
    pointer.initialize(from: values, count: values.count)
    return UnsafePointer(pointer)
}

public func optionSpec(_ name: String, type: Int32, default value: String, help: String,
                choices: [String] = []) -> UnsafePointer<sk_option_spec>? {
    let choiceList: UnsafePointer<UnsafePointer<CChar>?>? =
        choices.isEmpty ? nil : leakArray(choices.map { Optional(cString($0)) } + [nil])
    return leak(sk_option_spec(
        struct_size: UInt32(MemoryLayout<sk_option_spec>.size), type: UInt32(type),
        name: cString(name), default_value: cString(value), help: cString(help), choices: choiceList,
        min_value: nil, max_value: nil))
}

public func makeEntry(name: String, version: String, methods: [UnsafePointer<sk_method>]) -> UnsafePointer<sk_plugin_entry> {
    methodTable = methods
    return leak(sk_plugin_entry(
        struct_size: UInt32(MemoryLayout<sk_plugin_entry>.size),
        abi_version: UInt32(SANKSHEP_PLUGIN_ABI_VERSION),
        name: cString(name), version: cString(version),
        init: { services, _ in host = services; onInit?(); return SK_OK },
        deinit: { host = nil },
        method_count: { UInt32(methodTable.count) },
        method_at: { index in Int(index) < methodTable.count ? methodTable[Int(index)] : nil }))
}

/// Run once when the host initialises the plugin (after `host` is set), e.g. to size a thread pool.
nonisolated(unsafe) public var onInit: (() -> Void)?

nonisolated(unsafe) private var methodTable: [UnsafePointer<sk_method>] = []

/// Writes a one-line message into the host's error buffer and returns `status`.
public func fail(_ error: UnsafeMutablePointer<sk_error>?, _ status: Int32, _ message: String) -> sk_status {
    sk_error_set(error, status, message)
}

/// The value of a declared option (the host always passes every declared option).
public func option(_ options: UnsafePointer<sk_options>?, _ name: String) -> String? {
    guard let value = sk_options_get(options, name) else { return nil }
    return String(cString: value)
}
