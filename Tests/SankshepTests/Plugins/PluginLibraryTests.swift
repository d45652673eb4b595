import Foundation
import Testing
@testable import Host

/// `init` first, `deinit` once and last (Sources/Host/Plugins/PluginLibrary.swift).
@Suite("Plugin ABI: library lifetime")
struct PluginLibraryTests {
    /// A pruner whose `deinit` counts its calls and, when SANKSHEP_TEST_DEINIT_FILE is set, appends
    /// a line to that file (so a test can see what a finished process did).
    static let countingSource = PluginTestSupport.pluginSource(method: "counted")
        .replacingOccurrences(of: ".method_count = count", with: ".init = on_init, .deinit = on_deinit, .method_count = count")
        .replacingOccurrences(of: "#include \"sankshep_plugin.h\"\n", with: """
            #include "sankshep_plugin.h"
            #include <stdio.h>
            #include <stdlib.h>
            static int inits = 0, deinits = 0;
            SK_EXPORT int counted_init_calls(void) { return inits; }
            SK_EXPORT int counted_deinit_calls(void) { return deinits; }
            static sk_status on_init(const sk_host *host, sk_error *error) { (void)host; (void)error; inits++; return SK_OK; }
            static void on_deinit(void) {
                deinits++;
                const char *path = getenv("SANKSHEP_TEST_DEINIT_FILE");
                FILE *file = path ? fopen(path, "a") : NULL;
                if (file) { fprintf(file, "deinit after %d init\\n", inits); fclose(file); }
            }

            """)

    @Test("deinit runs once however often the library is finished, after init")
    func deinitOnce() throws {
        let folder = try PluginTestSupport.makeFolder()
        let path = try PluginTestSupport.compile(source: Self.countingSource, name: "counted", in: folder)
        guard case .plugin(let library) = try PluginLibrary.load(path: path) else {
            Issue.record("the counting plugin did not load")
            return
        }
        let handle = try #require(dlopen(library.path, RTLD_NOW | RTLD_NOLOAD))
        defer { dlclose(handle) }
        typealias Counter = @convention(c) () -> Int32
        let inits = unsafeBitCast(try #require(dlsym(handle, "counted_init_calls")), to: Counter.self)
        let deinits = unsafeBitCast(try #require(dlsym(handle, "counted_deinit_calls")), to: Counter.self)
        #expect(inits() == 1 && deinits() == 0)
        library.finish()
        library.finish()
        #expect(inits() == 1 && deinits() == 1)
    }

    @Test("a sankshep process calls each plugin's deinit exactly once when it exits")
    func deinitAtExit() throws {
        let folder = try PluginTestSupport.makeFolder()
        let path = try PluginTestSupport.compile(source: Self.countingSource, name: "counted", in: folder)
        let record = folder + "/deinit.txt"
        let process = Process()
        process.executableURL = ServerProcess.binary
        process.arguments = ["plugins", "list", "--plugin-path", path]
        process.environment = ProcessInfo.processInfo.environment.merging(["SANKSHEP_TEST_DEINIT_FILE": record], uniquingKeysWith: { $1 })
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(try String(contentsOfFile: record, encoding: .utf8) == "deinit after 1 init\n")
    }
}
