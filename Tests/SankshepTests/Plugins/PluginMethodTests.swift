import Foundation
import Testing
@testable import Host
import PluginAPI

/// The promises the header makes about descriptors and tables (Sources/Host/Plugins/PluginMethod.swift),
/// each checked with a small C plugin compiled at test time.
@Suite("Plugin ABI: descriptors, tables and option schemas")
struct PluginMethodTests {
    /// The test INT8 quantizer re-exported with its table cut to ABI v1.0's layout (ending at
    /// `destroy`), as a plugin compiled against the header before `dequantize` existed fills it in.
    /// A word that is not a function pointer follows the short table in memory: the host must read
    /// the absent field as NULL, not as that word.
    static let olderQuantizerSource = """
        #define sankshep_plugin_entry fixture_entry
        #include "\(Fixtures.url("plugins/int8_rows_quantizer.c").path)"
        #undef sankshep_plugin_entry
        static struct { _Alignas(8) unsigned char bytes[offsetof(sk_quantizer, dequantize)]; uintptr_t after; } v10_table;
        static sk_method v10_method;
        static uint32_t v10_count(void) { return 1; }
        static const sk_method *v10_at(uint32_t i) { return i == 0 ? &v10_method : NULL; }
        static sk_plugin_entry v10_entry;
        SK_EXPORT const sk_plugin_entry *sankshep_plugin_entry(uint32_t v) {
            (void)v;
            memcpy(v10_table.bytes, &quantizer, sizeof v10_table.bytes);
            ((sk_quantizer *)(void *)v10_table.bytes)->struct_size = (uint32_t)offsetof(sk_quantizer, dequantize);
            v10_table.after = (uintptr_t)0xdeadbeef;
            v10_method = method;
            v10_method.name = "int8-rows-v10";
            v10_method.quantizer = (const sk_quantizer *)(const void *)v10_table.bytes;
            v10_entry = entry;
            v10_entry.name = "test-int8-rows-v10";
            v10_entry.method_count = v10_count;
            v10_entry.method_at = v10_at;
            return &v10_entry;
        }
        """

    static func load(_ source: String, name: String) throws -> PluginRegistry {
        let folder = try PluginTestSupport.makeFolder()
        let library = try PluginTestSupport.compile(source: source, name: name, in: folder)
        return try PluginRegistry(searchPath: PluginSearchPath(explicit: [library], environment: nil, executableFolder: nil))
    }

    @Test("a quantizer compiled against the v1.0 table (no dequantize) loads, quantizes and runs; the absent field reads as NULL")
    func olderShorterQuantizerTable() throws {
        let quantizer = try Self.load(Self.olderQuantizerSource, name: "int8_rows_v10").quantizer(named: "int8-rows-v10")
        #expect(Int(quantizer.method.descriptor.pointee.quantizer.pointee.struct_size) == ABIMinimumSize.quantizer)
        #expect(ABIMinimumSize.quantizer < MemoryLayout<sk_quantizer>.size)
        var generator = SeededGenerator(seed: 5)
        let (rows, cols) = (6, 11)
        let w = generator.weights(rows * cols), x = generator.weights(2 * cols)
        let layer = try w.withUnsafeBufferPointer {
            try quantizer.quantize(weight: WeightView(data: $0, rows: rows, cols: cols, layerName: "dense"))
        }
        let y = try layer.forward(x, tokens: 2)
        for t in 0..<2 {
            for r in 0..<rows {
                let exact = (0..<cols).reduce(Float(0)) { $0 + x[t * cols + $1] * w[r * cols + $1] }
                #expect(abs(y[t * rows + r] - exact) < 0.05)
            }
        }
        // Accepted without dequantize (the header says so); asking for it is one line naming the method.
        #expect(!layer.canDequantize)
        let error = try #require(throws: PluginError.self) { try layer.dequantize() }
        #expect(error.message.hasPrefix("quantizer 'int8-rows-v10' ("))
    }

    @Test("a table smaller than its v1.0 layout is still refused, naming the method")
    func tableSmallerThanV10() throws {
        let source = PluginTestSupport.pluginSource(method: "tiny")
            .replacingOccurrences(of: "{ sizeof(sk_pruner), prune, NULL }", with: "{ offsetof(sk_pruner, prune_structured), prune, NULL }")
        let error = try #require(throws: PluginError.self) { try Self.load(source, name: "tiny") }
        #expect(error.message.hasSuffix("method #0 'tiny': a pruner without a complete pruner function table (ABI v1.0's fields at least)"))
    }

    /// A pruner declaring one option `spec` (a C initializer for the fields after struct_size).
    static func prunerWithOption(_ method: String, size: String = "sizeof(sk_option_spec)", spec: String,
                                 calibration: String? = nil) -> String {
        var source = PluginTestSupport.pluginSource(method: method)
        source = source.replacingOccurrences(of: ".option_count = 0,", with: ".option_count = 1,")
            .replacingOccurrences(of: ".options = NULL,", with: ".options = options,")
        let extensionCode = calibration.map { needs in
            """
            static const sk_calibration_ext calibration = { sizeof(sk_calibration_ext), \(needs), 64 };
            static const void *get_extension(const sk_method *m, const char *id) {
                (void)m; return strcmp(id, SK_EXT_CALIBRATION) == 0 ? &calibration : NULL;
            }
            """
        } ?? ""
        if calibration != nil { source = source.replacingOccurrences(of: ".pruner = &pruner", with: ".pruner = &pruner, .get_extension = get_extension") }
        let header = "#include \"sankshep_plugin.h\"\n"
        return source.replacingOccurrences(of: header, with: header + """
            static const sk_option_spec option = { .struct_size = \(size), \(spec) };
            static const sk_option_spec *const options[] = { &option };
            \(extensionCode)

            """)
    }

    @Test("an option's min_value and max_value are enforced; a spec from before they existed reads as unbounded")
    func optionRange() throws {
        let ranged = try Self.load(Self.prunerWithOption("ranged", spec: """
            .type = SK_OPTION_FLOAT, .name = "alpha", .default_value = "0.5", .help = "h", .min_value = "0", .max_value = "1"
            """), name: "ranged").pruner(named: "ranged")
        #expect(ranged.method.options.map(\.summary) == ["alpha=0.5 (float in 0...1)"])
        #expect(try ranged.prune(weight: [1, 2], rows: 1, cols: 2, sparsity: 0.5, options: ["alpha": "1"]).count == 2)
        let above = try #require(throws: PluginError.self) {
            try ranged.prune(weight: [1, 2], rows: 1, cols: 2, sparsity: 0.5, options: ["alpha": "1.5"])
        }
        #expect(above.message == "option 'alpha' of method 'ranged': '1.5' is above the maximum 1")
        let below = try #require(throws: PluginError.self) {
            try ranged.prune(weight: [1, 2], rows: 1, cols: 2, sparsity: 0.5, options: ["alpha": "-0.1"])
        }
        #expect(below.message == "option 'alpha' of method 'ranged': '-0.1' is below the minimum 0")
        // Built against v1.0's spec (no bounds): the words after `choices` are not read.
        let older = try Self.load(Self.prunerWithOption("unranged", size: "offsetof(sk_option_spec, min_value)", spec: """
            .type = SK_OPTION_INT, .name = "count", .default_value = "3", .help = "h", .min_value = "bogus", .max_value = "bogus"
            """), name: "unranged").pruner(named: "unranged")
        #expect(older.method.options.map(\.summary) == ["count=3 (int)"])
        #expect(try older.prune(weight: [1, 2], rows: 1, cols: 2, sparsity: 0.5, options: ["count": "1000000"]).count == 2)
    }

    @Test("a range-violating plugin option is refused when the recipe is validated, before any stage runs")
    func optionRangeAtValidation() throws {
        let registry = try Self.load(Self.prunerWithOption("ranged_recipe", spec: """
            .type = SK_OPTION_INT, .name = "passes", .default_value = "2", .help = "h", .min_value = "1", .max_value = "8"
            """), name: "ranged_recipe")
        let recipe = try Recipe.parse(yaml: """
            stages:
              - baseline: {}
              - prune: {method: ranged_recipe, sparsity: 0.3, options: {passes: 9}}
            """, file: "r.yaml")
        let error = try #require(throws: RecipeError.self) { try recipe.validate(methods: registry) }
        #expect(error.message.contains("'9' is above the maximum 8"))
        #expect(error.message.hasPrefix("r.yaml"))
    }

    @Test("bounds on an option that is not int or float refuse the plugin at load", arguments: ["SK_OPTION_STRING", "SK_OPTION_BOOL"])
    func boundOnWrongType(type: String) throws {
        let error = try #require(throws: PluginError.self) {
            try Self.load(Self.prunerWithOption("badbound", spec: """
                .type = \(type), .name = "mode", .default_value = "true", .help = "h", .max_value = "2"
                """), name: "badbound_\(type.lowercased())")
        }
        #expect(error.message.hasSuffix("'badbound': option 'mode' has max_value '2', but only int and float options take a finite numeric max_value"))
    }

    @Test("a pruner option named like the pruning stage's own (scope, structure) is refused at load", arguments: ["scope", "structure"])
    func hostOptionShadowed(name: String) throws {
        let error = try #require(throws: PluginError.self) {
            try Self.load(Self.prunerWithOption("shadow_\(name)", spec: """
                .type = SK_OPTION_STRING, .name = "\(name)", .default_value = "x", .help = "h"
                """), name: "shadow_\(name)")
        }
        #expect(error.message.hasSuffix("'shadow_\(name)': option '\(name)' is the pruning stage's own (scope, structure); a pruner cannot declare it"))
    }

    @Test("a pruner asking for input samples, which the host gives quantizers only, is refused at load; L2 norms load")
    func prunerSamplesRefused() throws {
        let spec = ".type = SK_OPTION_INT, .name = \"n\", .default_value = \"1\", .help = \"h\""
        let error = try #require(throws: PluginError.self) {
            try Self.load(Self.prunerWithOption("samples", spec: spec, calibration: "SK_STAT_INPUT_SAMPLES"), name: "samples")
        }
        #expect(error.message.hasSuffix("'samples': a pruner cannot ask for SK_STAT_INPUT_SAMPLES (the host gives pruners L2 norms, abs-max and range only)"))
        let norms = try Self.load(Self.prunerWithOption("norms", spec: spec, calibration: "SK_STAT_INPUT_L2_NORM"), name: "norms")
        #expect(try norms.pruner(named: "norms").neededStatistics == UInt32(SK_STAT_INPUT_L2_NORM))
    }
}
