import ArgumentParser
import Foundation

/// `sankshep tokenize`: shows how a tokenizer folder splits text, one JSON line per input line.
struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Encode text with a model folder's tokenizer (WordPiece or Unigram), one JSON line {\"input_ids\", \"tokens\"} per input line.",
        discussion: """
            Input lines are JSON objects {"text": ...} (or plain text with --plain), read from --input \
            or standard input. Ids include [CLS] and [SEP], as the model sees them.
            """
    )

    @Option(name: .customLong("tokenizer"), help: "Folder with vocab.txt + tokenizer_config.json, or tokenizer.json.")
    var tokenizerDirectory: String

    @Option(name: .customLong("input"), help: "File to read (default: standard input).")
    var input: String?

    @Flag(name: .customLong("plain"), help: "Each input line is the text itself, not a JSON object.")
    var plain = false

    @Option(name: .customLong("max_length"), help: "Truncate to this many ids, [CLS] and [SEP] included.")
    var maxLength: Int?

    func validate() throws {
        if let maxLength, maxLength < 2 {
            throw ValidationError("--max_length must be at least 2 (room for [CLS] and [SEP]), not \(maxLength)")
        }
    }

    private struct Line: Encodable {
        let inputIds: [Int]
        let tokens: [String]
        enum CodingKeys: String, CodingKey { case inputIds = "input_ids", tokens }
    }

    func run() throws {
        let tokenizer = try TokenizerFolder.load(URL(fileURLWithPath: tokenizerDirectory))
        let data: Data
        if let input {
            do { data = try InputFile.read(URL(fileURLWithPath: input)) } catch {
                throw TokenizerError(file: input, problem: "cannot read the file (\(error.localizedDescription))")
            }
        } else {
            data = FileHandle.standardInput.readDataToEndOfFile()
        }

        var output = Data()
        try Self.encodeLines(of: data, source: input ?? "standard input", plain: plain, maxLength: maxLength,
                             with: tokenizer) { line in
            output.append(line)
            if output.count > 1 << 20 {
                FileHandle.standardOutput.write(output)
                output.removeAll(keepingCapacity: true)
            }
        }
        FileHandle.standardOutput.write(output)
    }

    /// Encodes each line of `data` and hands `emit` its JSON line (newline included). Errors name
    /// `source` and the line number.
    static func encodeLines(of data: Data, source: String, plain: Bool, maxLength: Int?, with tokenizer: any Tokenizer,
                            emit: (Data) -> Void) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]  // input_ids before tokens
        var lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }
        for (index, line) in lines.enumerated() {
            let location = "\(source):\(index + 1)"
            var bytes = line
            if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
            let text: String
            if plain {
                guard let decoded = String(validating: bytes, as: UTF8.self) else {
                    throw TokenizerError(file: location, problem: "the line is not valid UTF-8")
                }
                text = decoded
            } else {
                if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }  // blank line between records
                guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
                    throw TokenizerError(file: location, problem: "the line is not a JSON object (use --plain for plain text)")
                }
                guard let value = object["text"] as? String else {
                    throw TokenizerError(file: location, problem: "the object has no string \"text\"")
                }
                text = value
            }
            let ids = tokenizer.encode(text, maxLength: maxLength)
            var json = try encoder.encode(Line(inputIds: ids, tokens: tokenizer.tokens(forIds: ids)))
            json.append(UInt8(ascii: "\n"))
            emit(json)
        }
    }
}
