import Foundation
import Testing
@testable import Host
import Kernels

@Suite("Plugin loader and registry")
struct PluginLoaderTests {
    @Test("the built-in plugins are found next to the executable and register their methods")
    func builtInPlugins() throws {
        let registry = try PluginTestSupport.builtInRegistry()
        #expect(try registry.method(named: "magnitude", kind: .pruner).file.hasSuffix("libSankshepMagnitude.so"))
        #expect(try registry.method(named: "wanda", kind: .pruner).options.map(\.name) == ["group"])
        let gradual = try registry.method(named: "gradual", kind: .schedule)
        #expect(gradual.options.map(\.summary) == ["schedule=cubic (cubic|linear|exponential)", "criterion=magnitude (string)"])
    }

    @Test("the example C plugin, compiled at test time with cc, loads and prunes by name")
    func exampleCPlugin() throws {
        let folder = try PluginTestSupport.makeFolder()
        let library = try PluginTestSupport.compile(sourceFile: PluginTestSupport.exampleSource, name: "random_pruner", in: folder)
        let registry = try PluginTestSupport.builtInRegistry(plus: [library])
        let random = try registry.pruner(named: "random")
        #expect(random.method.file == URL(fileURLWithPath: library).resolvingSymlinksInPath().path)
        var generator = SeededGenerator(seed: 3)
        let weight = generator.weights(37 * 19)
        let mask = try random.prune(weight: weight, rows: 37, cols: 19, sparsity: 0.3, options: ["seed": "7"])
        #expect(mask.filter { $0 == 0 }.count == Int((0.3 * Double(37 * 19)).rounded()))
        // Same seed, same mask; another seed, another mask.
        #expect(try random.prune(weight: weight, rows: 37, cols: 19, sparsity: 0.3, options: ["seed": "7"]) == mask)
        #expect(try random.prune(weight: weight, rows: 37, cols: 19, sparsity: 0.3, options: ["seed": "8"]) != mask)
    }

    @Test("a folder given with --plugin-path is scanned, and a library in it without the entry symbol is skipped")
    func folderScan() throws {
        let folder = try PluginTestSupport.makeFolder()
        _ = try PluginTestSupport.compile(sourceFile: PluginTestSupport.exampleSource, name: "random_pruner", in: folder)
        _ = try PluginTestSupport.compile(source: "int not_a_plugin(void) { return 1; }\n", name: "helper", in: folder)
        let registry = try PluginTestSupport.builtInRegistry(plus: [folder])
        #expect(try registry.method(named: "random").kind == .pruner)
        #expect(registry.libraries.allSatisfy { !$0.path.hasSuffix("libhelper.so") })
    }

    @Test("SANKSHEP_PLUGIN_PATH entries are searched after --plugin-path")
    func environmentPath() throws {
        let folder = try PluginTestSupport.makeFolder()
        _ = try PluginTestSupport.compile(sourceFile: PluginTestSupport.exampleSource, name: "random_pruner", in: folder)
        let search = PluginSearchPath(explicit: [], environment: "/nonexistent-is-not-here-either:\(folder)", executableFolder: nil)
        #expect(throws: PluginError("/nonexistent-is-not-here-either: plugin path does not exist")) {
            try PluginRegistry(searchPath: search)
        }
        let registry = try PluginRegistry(searchPath: PluginSearchPath(explicit: [], environment: folder, executableFolder: nil))
        #expect(registry.methods.map(\.name) == ["random"])
    }

    @Test("a library named with --plugin-path that has no entry symbol is refused, naming the file and the symbol")
    func missingEntrySymbol() throws {
        let folder = try PluginTestSupport.makeFolder()
        let library = try PluginTestSupport.compile(source: "int not_a_plugin(void) { return 1; }\n", name: "plain", in: folder)
        let error = try #require(throws: PluginError.self) { try PluginTestSupport.builtInRegistry(plus: [library]) }
        #expect(error.message == "\(library): not a Sankshep plugin: it does not export sankshep_plugin_entry")
    }

    @Test("a plugin built for another ABI version is refused in one line naming both versions")
    func wrongABIVersion() throws {
        let folder = try PluginTestSupport.makeFolder()
        let library = try PluginTestSupport.compile(
            source: PluginTestSupport.pluginSource(method: "from-the-future", abiVersion: "7"), name: "future", in: folder)
        let error = try #require(throws: PluginError.self) { try PluginTestSupport.builtInRegistry(plus: [library]) }
        #expect(error.message == "\(library): plugin ABI version 7, but this host speaks version 1")
        #expect(!error.message.contains("\n"))
    }

    @Test("a pruner whose table has no prune function is refused when it loads, not called through later")
    func missingRequiredFunction() throws {
        let folder = try PluginTestSupport.makeFolder()
        let source = PluginTestSupport.pluginSource(method: "hollow")
            .replacingOccurrences(of: "{ sizeof(sk_pruner), prune, NULL }", with: "{ sizeof(sk_pruner), NULL, NULL }")
            .replacingOccurrences(of: "static sk_status prune(", with: "__attribute__((unused)) static sk_status prune(")
        let library = try PluginTestSupport.compile(source: source, name: "hollow", in: folder)
        let error = try #require(throws: PluginError.self) { try PluginTestSupport.builtInRegistry(plus: [library]) }
        #expect(error.message.hasSuffix("'hollow': the pruner table has no prune (NULL), which the ABI requires"), "\(error.message)")
        #expect(!error.message.contains("\n"))
    }

    @Test("two libraries registering the same method name are an error naming both files")
    func duplicateMethodName() throws {
        let folder = try PluginTestSupport.makeFolder()
        let first = try PluginTestSupport.compile(source: PluginTestSupport.pluginSource(method: "twin"), name: "twin_a", in: folder)
        let second = try PluginTestSupport.compile(source: PluginTestSupport.pluginSource(method: "twin"), name: "twin_b", in: folder)
        let error = try #require(throws: PluginError.self) {
            try PluginRegistry(searchPath: PluginSearchPath(explicit: [first, second], environment: nil, executableFolder: nil))
        }
        #expect(error.message == "method 'twin' is registered twice: by \(first) and by \(second)")
    }

    @Test("a built-in method name taken by a third-party plugin is a duplicate too")
    func duplicateOfBuiltIn() throws {
        let folder = try PluginTestSupport.makeFolder()
        let impostor = try PluginTestSupport.compile(source: PluginTestSupport.pluginSource(method: "magnitude"), name: "impostor", in: folder)
        let error = try #require(throws: PluginError.self) { try PluginTestSupport.builtInRegistry(plus: [impostor]) }
        #expect(error.message.hasPrefix("method 'magnitude' is registered twice: by \(impostor) and by "))
        #expect(error.message.hasSuffix("libSankshepMagnitude.so"))
    }

    @Test("an unknown method name is an error listing the known methods of that kind")
    func unknownMethod() throws {
        let registry = try PluginTestSupport.builtInRegistry()
        let error = try #require(throws: PluginError.self) { try registry.pruner(named: "sparsegpt") }
        #expect(error.message == "unknown pruner method 'sparsegpt'; known pruner methods: magnitude, wanda")
        let wrongKind = try #require(throws: PluginError.self) { try registry.schedule(named: "magnitude") }
        #expect(wrongKind.message.hasPrefix("method 'magnitude' is a pruner, not a schedule"))
    }

    @Test("an option the method does not declare is refused, listing the declared ones")
    func undeclaredOption() throws {
        let magnitude = try PluginTestSupport.builtInRegistry().pruner(named: "magnitude")
        let error = try #require(throws: PluginError.self) {
            try magnitude.prune(weight: [1, 2, 3, 4], rows: 2, cols: 2, sparsity: 0.5, options: ["nrom": "l1"])
        }
        #expect(error.message == "pruner method 'magnitude' has no option 'nrom' (declared: norm)")
    }

    @Test("an option value of the wrong type or outside an enum's choices is refused")
    func invalidOptionValue() throws {
        let registry = try PluginTestSupport.builtInRegistry()
        let magnitude = try registry.pruner(named: "magnitude")
        let error = try #require(throws: PluginError.self) {
            try magnitude.prune(weight: [1, 2, 3, 4], rows: 2, cols: 2, sparsity: 0.5, options: ["norm": "l3"])
        }
        #expect(error.message == "option 'norm' of method 'magnitude': 'l3' is not one of l2, l1")
        let folder = try PluginTestSupport.makeFolder()
        let library = try PluginTestSupport.compile(sourceFile: PluginTestSupport.exampleSource, name: "random_pruner", in: folder)
        let random = try PluginTestSupport.builtInRegistry(plus: [library]).pruner(named: "random")
        let notInteger = try #require(throws: PluginError.self) {
            try random.prune(weight: [1, 2], rows: 1, cols: 2, sparsity: 0.5, options: ["seed": "seven"])
        }
        #expect(notInteger.message == "option 'seed' of method 'random': 'seven' is not an integer")
    }

    @Test("a plugin returning an error status becomes one line naming the method, its file and the plugin's message")
    func errorStatus() throws {
        let folder = try PluginTestSupport.makeFolder()
        let library = try PluginTestSupport.compile(
            source: PluginTestSupport.pluginSource(
                method: "grumpy",
                body: #"return sk_error_set(error, SK_ERR_UNSUPPORTED, "grumpy: layer has the wrong mood\nsecond line");"#),
            name: "grumpy", in: folder)
        let grumpy = try PluginTestSupport.builtInRegistry(plus: [library]).pruner(named: "grumpy")
        let error = try #require(throws: PluginError.self) {
            try grumpy.prune(weight: [1, 2, 3, 4], rows: 2, cols: 2, sparsity: 0.5)
        }
        #expect(error.message == "pruner 'grumpy' (\(library)): grumpy: layer has the wrong mood second line")
    }

    @Test("an error status without a message still names the status")
    func errorStatusWithoutMessage() throws {
        let folder = try PluginTestSupport.makeFolder()
        let library = try PluginTestSupport.compile(
            source: PluginTestSupport.pluginSource(method: "silent", body: "return SK_ERR_INTERNAL;"), name: "silent", in: folder)
        let silent = try PluginTestSupport.builtInRegistry(plus: [library]).pruner(named: "silent")
        let error = try #require(throws: PluginError.self) { try silent.prune(weight: [1], rows: 1, cols: 1, sparsity: 0) }
        #expect(error.message == "pruner 'silent' (\(library)): failed with status internal and no message")
    }

    @Test("a plugin file writable by group is refused before it is loaded")
    func groupWritableFile() throws {
        let folder = try PluginTestSupport.makeFolder()
        let library = try PluginTestSupport.compile(
            source: PluginTestSupport.pluginSource(method: "loose"), name: "loose", in: folder)
        try FileManager.default.setAttributes([.posixPermissions: 0o775], ofItemAtPath: library)
        let error = try #require(throws: PluginError.self) { try PluginTestSupport.builtInRegistry(plus: [library]) }
        #expect(error.message == "\(library): refusing to load from a plugin file writable by group or others (mode 775); run chmod go-w on it")
    }

    @Test("a plugin in a folder writable by others is refused, naming the folder")
    func otherWritableFolder() throws {
        let folder = try PluginTestSupport.makeFolder()
        let library = try PluginTestSupport.compile(
            source: PluginTestSupport.pluginSource(method: "open-door"), name: "open_door", in: folder)
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: folder)
        let error = try #require(throws: PluginError.self) { try PluginTestSupport.builtInRegistry(plus: [library]) }
        #expect(error.message == "\(folder): refusing to load from a plugin folder writable by group or others (mode 777); run chmod go-w on it")
    }

    @Test("sankshep plugins show with an unknown name fails listing the known methods; --plugin-path repeats")
    func showCommand() throws {
        let unknown = try #require(try Sankshep.parseAsRoot(["plugins", "show", "obs"]) as? PluginsCommand.Show)
        #expect(throws: PluginError("unknown method 'obs'; known methods: magnitude, wanda, dynamic, fp16, int4, static, gradual")) { try unknown.run() }
        let folder = try PluginTestSupport.makeFolder()
        let library = try PluginTestSupport.compile(sourceFile: PluginTestSupport.exampleSource, name: "random_pruner", in: folder)
        let show = try #require(try Sankshep.parseAsRoot(["plugins", "show", "random", "--plugin-path", library, "--plugin-path", folder])
                                as? PluginsCommand.Show)
        #expect(show.paths.pluginPaths == [library, folder])
        let method = try show.paths.registry().method(named: "random")
        #expect(PluginsCommand.details(method).contains("seed=0 (int)  seed of the random draw"))
    }

    @Test("plugins list shows every method with kind, version, options and file")
    func listTable() throws {
        let registry = try PluginTestSupport.builtInRegistry()
        let lines = PluginsCommand.table(registry.methods).split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("NAME") == true)
        let wanda = try #require(lines.first { $0.hasPrefix("wanda ") })
        #expect(wanda.contains("pruner") && wanda.contains("1.0.0") && wanda.contains("group=row (row|layer)")
                && wanda.hasSuffix("libSankshepWanda.so"))
        let details = PluginsCommand.details(try registry.method(named: "wanda"))
        #expect(details.contains("needs calibration statistics"))
    }

    @Test("a plugin's loop through the host's parallel_for service covers every index exactly once on the host's threads")
    func hostParallelFor() throws {
        // The pruner counts, through parallel_for, how often each weight's index is visited, and keeps
        // exactly the weights visited once; it also checks thread_count against the host's setting.
        let source = """
        #include "sankshep_plugin.h"
        #include <stdlib.h>
        static const sk_host *host_table;
        static uint8_t *visits;
        static void visit(void *context, int32_t begin, int32_t end) {
            (void)context;
            for (int32_t i = begin; i < end; i++) visits[i] += 1;
        }
        static sk_status prune(const sk_method *m, const sk_weight_view *w, const sk_activation_stats *s,
                               double sparsity, const sk_options *o, uint8_t *keep, sk_error *error) {
            (void)m; (void)s; (void)sparsity; (void)o;
            if (!SK_HAS_FIELD(host_table, sk_host, thread_count) || !host_table->parallel_for || !host_table->thread_count)
                return sk_error_set(error, SK_ERR_UNSUPPORTED, "the host offers no parallel_for");
            if (host_table->thread_count(host_table) != 2)
                return sk_error_set(error, SK_ERR_INTERNAL, "thread_count is not the host's 2");
            int32_t n = (int32_t)(w->rows * w->cols);
            visits = calloc((size_t)n, 1);
            if (!visits) return SK_ERR_OUT_OF_MEMORY;
            host_table->parallel_for(host_table, n, visit, NULL);
            for (int32_t i = 0; i < n; i++) keep[i] = visits[i] == 1;
            free(visits);
            return SK_OK;
        }
        static sk_status init(const sk_host *host, sk_error *error) { (void)error; host_table = host; return SK_OK; }
        static const sk_pruner pruner = { sizeof(sk_pruner), prune, NULL };
        static const sk_method method = { .struct_size = sizeof(sk_method), .kind = SK_METHOD_PRUNER,
            .name = "visit_all", .version = "0.1", .description = "test method", .option_count = 0,
            .options = NULL, .pruner = &pruner };
        static uint32_t count(void) { return 1; }
        static const sk_method *at(uint32_t i) { return i == 0 ? &method : NULL; }
        static const sk_plugin_entry entry = { .struct_size = sizeof(sk_plugin_entry),
            .abi_version = SANKSHEP_PLUGIN_ABI_VERSION, .name = "test-visit-all", .version = "0.1",
            .init = init, .method_count = count, .method_at = at };
        SK_EXPORT const sk_plugin_entry *sankshep_plugin_entry(uint32_t v) { (void)v; return &entry; }
        """
        let folder = try PluginTestSupport.makeFolder()
        let library = try PluginTestSupport.compile(source: source, name: "visit_all", in: folder)
        let registry = try PluginTestSupport.builtInRegistry(plus: [library])
        let visitAll = try registry.pruner(named: "visit_all")
        let previous = sk_get_threads()
        sk_set_threads(2)
        defer { sk_set_threads(previous) }
        for (rows, cols) in [(1, 1), (3, 7), (97, 131)] {
            let mask = try visitAll.prune(weight: [Float](repeating: 1, count: rows * cols), rows: rows, cols: cols, sparsity: 0)
            #expect(mask == [UInt8](repeating: 1, count: rows * cols), "\(rows) x \(cols)")
        }
    }
}
