import ArgumentParser

/// The `sankshep` command: one root with a subcommand per job.
@main
struct Sankshep: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sankshep",
        abstract: "Train a Bangla hate-speech classifier and compress it into a small, fast model.",
        version: "0.1.0",
        subcommands: [RunCommand.self, EvalCommand.self, PredictCommand.self, ExportCommand.self, ServeCommand.self, BenchCommand.self, TokenizeCommand.self, TrimVocabCommand.self, PluginsCommand.self]
    )
}
