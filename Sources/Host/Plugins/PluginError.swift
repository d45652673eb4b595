/// A problem with a plugin, its options or its search path: one line naming the file, method or
/// option and what is wrong.
struct PluginError: Error, CustomStringConvertible, Equatable {
    let message: String
    init(_ message: String) {
        // One line, whatever a plugin wrote into its error buffer.
        self.message = message.split(whereSeparator: \.isNewline).joined(separator: " ")
    }
    var description: String { message }
}
