import ArgumentParser
import Foundation

/// Where to look for plugins; shared by every command that loads methods.
struct PluginPathOptions: ParsableArguments {
    @Option(name: .customLong("plugin-path"),
            help: ArgumentHelp("A plugin library or a folder of them; repeatable. Searched before SANKSHEP_PLUGIN_PATH and the executable's folder.",
                               valueName: "path"))
    var pluginPaths: [String] = []

    func registry() throws -> PluginRegistry {
        try PluginRegistry(searchPath: PluginSearchPath(explicit: pluginPaths))
    }
}

/// `sankshep plugins list|show`: the compression methods the loaded plugins register.
struct PluginsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plugins",
        abstract: "List the compression methods that plugins provide, or show one.",
        subcommands: [List.self, Show.self],
        defaultSubcommand: List.self
    )

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every method: name, kind, version, options, file.")
        @OptionGroup var paths: PluginPathOptions

        func run() throws {
            let registry = try paths.registry()
            print(PluginsCommand.table(registry.methods))
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One method in full: description and each option's type, default and help.")
        @OptionGroup var paths: PluginPathOptions
        @Argument(help: "The method's name, as `plugins list` shows it.") var name: String

        func run() throws {
            let method = try paths.registry().method(named: name)
            print(PluginsCommand.details(method))
        }
    }

    static func table(_ methods: [PluginMethod]) -> String {
        guard !methods.isEmpty else {
            return "no plugins found (searched --plugin-path, SANKSHEP_PLUGIN_PATH and the executable's folder)"
        }
        let header = ["NAME", "KIND", "VERSION", "OPTIONS", "FILE"]
        let rows = methods.map { method in
            [method.name, method.kind.rawValue, method.version,
             method.options.isEmpty ? "-" : method.options.map(\.summary).joined(separator: " "), method.file]
        }
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max()! }
        return ([header] + rows).map { row in
            row.enumerated().map { column, text in
                column == row.count - 1 ? text : text.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }

    static func details(_ method: PluginMethod) -> String {
        var lines = [
            "\(method.name) (\(method.kind), version \(method.version))",
            "  \(method.summary)",
            "  plugin: \(method.pluginName), \(method.file)",
        ]
        if method.kind == .pruner {
            let pruner = PrunerMethod(method)
            var features: [String] = []
            if pruner.neededStatistics != 0 { features.append("needs calibration statistics") }
            if pruner.supportsStructured { features.append("structured mode") }
            if pruner.supportsGlobal { features.append("global ranking") }
            if !features.isEmpty { lines.append("  features: \(features.joined(separator: ", "))") }
        }
        if method.kind == .quantizer {
            let quantizer = QuantizerMethod(method)
            var features: [String] = []
            if quantizer.neededStatistics != 0 { features.append("needs calibration statistics") }
            if quantizer.offersQAT { features.append("quantization-aware training (--quant_method qat)") }
            if !features.isEmpty { lines.append("  features: \(features.joined(separator: ", "))") }
        }
        lines.append(method.options.isEmpty ? "  options: none" : "  options:")
        for option in method.options {
            lines.append("    \(option.summary)  \(option.help)")
        }
        return lines.joined(separator: "\n")
    }
}
