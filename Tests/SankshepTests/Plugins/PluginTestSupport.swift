import Foundation
@testable import Host

/// Helpers for plugin tests: the repository's own files, C plugins compiled at test time, and a
/// seeded generator for test weights.
enum PluginTestSupport {
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // Plugins
        .deletingLastPathComponent()  // SankshepTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()

    static let headerFolder = repositoryRoot.appendingPathComponent("Sources/PluginAPI/include").path
    static let exampleSource = repositoryRoot.appendingPathComponent("Examples/c-plugin/random_pruner.c").path

    /// A fresh folder only the owner can write (plugins in group-writable folders are refused).
    static func makeFolder() throws -> String {
        let folder = FileManager.default.temporaryDirectory
            .appendingPathComponent("sankshep-plugin-test-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o755])
        return folder
    }

    /// Compiles C `source` (or the file at `sourceFile`) into `folder/lib<name>.so` with `cc`,
    /// against the plugin header only, and returns the library's path.
    static func compile(source: String? = nil, sourceFile: String? = nil, name: String, in folder: String) throws -> String {
        var input = sourceFile ?? ""
        if let source {
            input = folder + "/\(name).c"
            try source.write(toFile: input, atomically: true, encoding: .utf8)
        }
        let output = folder + "/lib\(name).so"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["cc", "-shared", "-fPIC", "-std=c11", "-Wall", "-Werror", "-I", headerFolder, input, "-o", output]
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw PluginError("cc failed for \(name): \(message)")
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: output)
        return output
    }

    /// A C plugin with one pruner `method` whose prune body is `body` (a C statement list that
    /// returns an sk_status), and whose entry reports `abiVersion`.
    static func pluginSource(method: String, abiVersion: String = "SANKSHEP_PLUGIN_ABI_VERSION",
                             body: String = "for (int64_t i = 0; i < w->rows * w->cols; i++) { keep[i] = 1; }\n    return SK_OK;") -> String {
        """
        #include "sankshep_plugin.h"
        static sk_status prune(const sk_method *m, const sk_weight_view *w, const sk_activation_stats *s,
                               double sparsity, const sk_options *o, uint8_t *keep, sk_error *error) {
            (void)m; (void)s; (void)sparsity; (void)o; (void)error;
            \(body)
        }
        static const sk_pruner pruner = { sizeof(sk_pruner), prune, NULL };
        static const sk_method method = { .struct_size = sizeof(sk_method), .kind = SK_METHOD_PRUNER,
            .name = "\(method)", .version = "0.1", .description = "test method", .option_count = 0,
            .options = NULL, .pruner = &pruner };
        static uint32_t count(void) { return 1; }
        static const sk_method *at(uint32_t i) { return i == 0 ? &method : NULL; }
        static const sk_plugin_entry entry = { .struct_size = sizeof(sk_plugin_entry),
            .abi_version = \(abiVersion), .name = "test-\(method)", .version = "0.1",
            .method_count = count, .method_at = at };
        SK_EXPORT const sk_plugin_entry *sankshep_plugin_entry(uint32_t v) { (void)v; return &entry; }
        """
    }

    /// The built-in plugins, found next to the test binary where `swift build` puts them.
    static func builtInRegistry(plus explicit: [String] = []) throws -> PluginRegistry {
        try PluginRegistry(searchPath: PluginSearchPath(explicit: explicit, environment: nil))
    }
}

extension SeededGenerator {
    mutating func weights(_ count: Int, in range: ClosedRange<Float> = -1...1) -> [Float] {
        (0..<count).map { _ in Float.random(in: range, using: &self) }
    }
}
