import Foundation
import PluginAPI

/// Where plugins are looked for, in order.
struct PluginSearchPath: Sendable {
    /// `--plugin-path` values: files (which must be plugins) or folders.
    var explicit: [String] = []
    /// `SANKSHEP_PLUGIN_PATH`: colon-separated files or folders.
    var environment: String? = ProcessInfo.processInfo.environment["SANKSHEP_PLUGIN_PATH"]
    /// The folder of the running executable (where `swift build` puts the built-in plugins);
    /// nil to leave it out.
    var executableFolder: String? = PluginSearchPath.runningExecutableFolder

    static var runningExecutableFolder: String? {
        Bundle.main.executableURL?.resolvingSymlinksInPath().deletingLastPathComponent().path
    }

    /// The ordered places to look, with whether each was named explicitly by the user.
    var places: [(path: String, explicit: Bool)] {
        var places = explicit.map { ($0, true) }
        places += (environment ?? "").split(separator: ":").map { (String($0), true) }
        if let executableFolder { places.append((executableFolder, false)) }
        return places
    }
}

/// Every method of every plugin found on the search path, by name.
struct PluginRegistry: Sendable {
    let libraries: [PluginLibrary]
    /// All methods, by kind then name.
    let methods: [PluginMethod]

    /// Loads every plugin on `searchPath`. A named file that is not a plugin, a library with the
    /// wrong ABI, a library or folder other users can write, or two files registering the same
    /// method name are errors; a shared library without the entry symbol inside a folder is simply
    /// not a plugin.
    init(searchPath: PluginSearchPath = PluginSearchPath()) throws {
        var libraries: [PluginLibrary] = []
        for (place, explicit) in searchPath.places {
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: place, isDirectory: &isFolder) else {
                if explicit { throw PluginError("\(place): plugin path does not exist") }
                continue
            }
            let files: [String]
            if isFolder.boolValue {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: place)) ?? []
                files = names.filter(Self.looksLikeLibrary).sorted().map { place + "/" + $0 }
            } else {
                files = [place]
            }
            for file in files {
                switch try PluginLibrary.load(path: file) {
                case .plugin(let library):
                    if !libraries.contains(where: { $0 === library }) { libraries.append(library) }
                case .notAPlugin(let reason):
                    if !isFolder.boolValue { throw PluginError(reason) }
                }
            }
        }
        var byName: [String: PluginMethod] = [:]
        for method in libraries.flatMap(\.methods) {
            if let other = byName[method.name] {
                throw PluginError("method '\(method.name)' is registered twice: by \(other.file) and by \(method.file)")
            }
            byName[method.name] = method
        }
        self.libraries = libraries
        self.methods = byName.values.sorted { ($0.kind.rawValue, $0.name) < ($1.kind.rawValue, $1.name) }
    }

    /// `lib*.so` on Linux, `*.dylib` on macOS.
    static func looksLikeLibrary(_ fileName: String) -> Bool {
        (fileName.hasPrefix("lib") && fileName.hasSuffix(".so")) || fileName.hasSuffix(".dylib")
    }

    /// The method called `name`, of `kind` when given; otherwise an error listing the known ones.
    func method(named name: String, kind: PluginMethodKind? = nil) throws -> PluginMethod {
        if let method = methods.first(where: { $0.name == name }) {
            if let kind, method.kind != kind {
                throw PluginError("method '\(name)' is a \(method.kind), not a \(kind) (\(method.file))")
            }
            return method
        }
        let candidates = methods.filter { kind == nil || $0.kind == kind }.map(\.name)
        let what = kind.map { "\($0) method" } ?? "method"
        let known = candidates.isEmpty ? "no \(what)s are loaded (check --plugin-path and SANKSHEP_PLUGIN_PATH)"
                                       : "known \(what)s: \(candidates.joined(separator: ", "))"
        throw PluginError("unknown \(what) '\(name)'; \(known)")
    }

    func pruner(named name: String) throws -> PrunerMethod { PrunerMethod(try method(named: name, kind: .pruner)) }
    func schedule(named name: String) throws -> ScheduleMethod { ScheduleMethod(try method(named: name, kind: .schedule)) }
    func quantizer(named name: String) throws -> QuantizerMethod { QuantizerMethod(try method(named: name, kind: .quantizer)) }
}
