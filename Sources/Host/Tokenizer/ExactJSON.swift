/// A JSON value whose object keys keep their exact Unicode scalars and their order.
///
/// Why not JSONSerialization/JSONDecoder: they key objects by Swift `String`, and Swift strings
/// compare by canonical equivalence, so "ড়" (U+09DC) and "ড়" (U+09A1 U+09BC) — two different
/// entries of a Bangla WordPiece vocabulary — collapse into one key and ids go missing.
/// tokenizer.json's `model.vocab` is read and written through this type instead.
enum ExactJSON: Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([ExactJSON])
    case object([(key: String, value: ExactJSON)])

    /// The value of the first `key` in an object (keys compared as exact scalars).
    subscript(key: String) -> ExactJSON? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.key.unicodeScalars.elementsEqual(key.unicodeScalars) }?.value
    }

    var string: String? { if case .string(let s) = self { s } else { nil } }
    var bool: Bool? { if case .bool(let b) = self { b } else { nil } }
    var isNull: Bool { if case .null = self { true } else { false } }
    var int: Int? {
        guard case .number(let n) = self, n == n.rounded(), abs(n) < 9e15 else { return nil }
        return Int(n)
    }

    // MARK: - Reading

    struct SyntaxError: Error { let offset: Int; let problem: String }

    static func parse(_ bytes: [UInt8]) throws(SyntaxError) -> ExactJSON {
        var reader = Reader(bytes: bytes)
        let value = try reader.value(depth: 0)
        reader.skipWhitespace()
        guard reader.position == bytes.count else { throw SyntaxError(offset: reader.position, problem: "text after the JSON value") }
        return value
    }

    private struct Reader {
        let bytes: [UInt8]
        var position = 0

        mutating func skipWhitespace() {
            while position < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[position]) { position += 1 }
        }

        func fail(_ problem: String) -> SyntaxError { SyntaxError(offset: position, problem: problem) }

        mutating func expect(_ literal: String) throws(SyntaxError) {
            for byte in literal.utf8 {
                guard position < bytes.count, bytes[position] == byte else { throw fail("expected \(literal)") }
                position += 1
            }
        }

        mutating func value(depth: Int) throws(SyntaxError) -> ExactJSON {
            guard depth < 512 else { throw fail("nested too deeply") }
            skipWhitespace()
            guard position < bytes.count else { throw fail("unexpected end") }
            switch bytes[position] {
            case UInt8(ascii: "{"):
                position += 1
                var members: [(key: String, value: ExactJSON)] = []
                skipWhitespace()
                if position < bytes.count, bytes[position] == UInt8(ascii: "}") { position += 1; return .object(members) }
                while true {
                    skipWhitespace()
                    guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { throw fail("expected a key") }
                    let key = try string()
                    skipWhitespace()
                    try expect(":")
                    members.append((key, try value(depth: depth + 1)))
                    skipWhitespace()
                    guard position < bytes.count else { throw fail("unexpected end in an object") }
                    if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
                    try expect("}")
                    return .object(members)
                }
            case UInt8(ascii: "["):
                position += 1
                var elements: [ExactJSON] = []
                skipWhitespace()
                if position < bytes.count, bytes[position] == UInt8(ascii: "]") { position += 1; return .array(elements) }
                while true {
                    elements.append(try value(depth: depth + 1))
                    skipWhitespace()
                    guard position < bytes.count else { throw fail("unexpected end in an array") }
                    if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
                    try expect("]")
                    return .array(elements)
                }
            case UInt8(ascii: "\""):
                return .string(try string())
            case UInt8(ascii: "t"): try expect("true"); return .bool(true)
            case UInt8(ascii: "f"): try expect("false"); return .bool(false)
            case UInt8(ascii: "n"): try expect("null"); return .null
            default:
                let start = position
                while position < bytes.count, "+-.0123456789eE".utf8.contains(bytes[position]) { position += 1 }
                guard let number = Double(String(decoding: bytes[start..<position], as: UTF8.self)) else {
                    position = start
                    throw fail("expected a value")
                }
                return .number(number)
            }
        }

        /// A string starting at the opening quote; escapes decoded, raw bytes checked to be UTF-8.
        mutating func string() throws(SyntaxError) -> String {
            position += 1
            var utf8: [UInt8] = []
            while true {
                guard position < bytes.count else { throw fail("unterminated string") }
                let byte = bytes[position]
                position += 1
                if byte == UInt8(ascii: "\"") { break }
                guard byte == UInt8(ascii: "\\") else { utf8.append(byte); continue }
                guard position < bytes.count else { throw fail("unterminated escape") }
                let escape = bytes[position]
                position += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(escape)
                case UInt8(ascii: "b"): utf8.append(0x08)
                case UInt8(ascii: "f"): utf8.append(0x0C)
                case UInt8(ascii: "n"): utf8.append(0x0A)
                case UInt8(ascii: "r"): utf8.append(0x0D)
                case UInt8(ascii: "t"): utf8.append(0x09)
                case UInt8(ascii: "u"):
                    var code = try hex4()
                    if (0xD800..<0xDC00).contains(code) {
                        // A UTF-16 surrogate pair spelled as two escapes.
                        try expect("\\u")
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw fail("unpaired surrogate") }
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let scalar = Unicode.Scalar(code) else { throw fail("unpaired surrogate") }
                    utf8.append(contentsOf: String(Character(scalar)).utf8)
                default:
                    throw fail("unknown escape")
                }
            }
            guard let text = String(validating: utf8, as: UTF8.self) else { throw fail("string is not valid UTF-8") }
            return text
        }

        mutating func hex4() throws(SyntaxError) -> UInt32 {
            guard position + 4 <= bytes.count,
                  let code = UInt32(String(decoding: bytes[position..<(position + 4)], as: UTF8.self), radix: 16)
            else { throw fail("bad \\u escape") }
            position += 4
            return code
        }
    }

    // MARK: - Writing

    /// Indented two spaces a level, as Hugging Face writes tokenizer.json; non-ASCII kept as UTF-8.
    func serialized() -> String {
        var out = ""
        write(to: &out, indent: 0)
        out.append("\n")
        return out
    }

    private func write(to out: inout String, indent: Int) {
        let pad = String(repeating: "  ", count: indent + 1)
        let closingPad = String(repeating: "  ", count: indent)
        switch self {
        case .null: out.append("null")
        case .bool(let b): out.append(b ? "true" : "false")
        case .number(let n):
            if let int = self.int { out.append(String(int)) } else { out.append("\(n)") }
        case .string(let s): Self.writeString(s, to: &out)
        case .array(let elements):
            guard !elements.isEmpty else { out.append("[]"); return }
            out.append("[\n")
            for (i, element) in elements.enumerated() {
                out.append(pad)
                element.write(to: &out, indent: indent + 1)
                out.append(i + 1 < elements.count ? ",\n" : "\n")
            }
            out.append(closingPad + "]")
        case .object(let members):
            guard !members.isEmpty else { out.append("{}"); return }
            out.append("{\n")
            for (i, member) in members.enumerated() {
                out.append(pad)
                Self.writeString(member.key, to: &out)
                out.append(": ")
                member.value.write(to: &out, indent: indent + 1)
                out.append(i + 1 < members.count ? ",\n" : "\n")
            }
            out.append(closingPad + "}")
        }
    }

    private static func writeString(_ s: String, to out: inout String) {
        out.append("\"")
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out.append("\\\"")
            case "\\": out.append("\\\\")
            case "\n": out.append("\\n")
            case "\r": out.append("\\r")
            case "\t": out.append("\\t")
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                let hex = String(scalar.value, radix: 16)
                out.append("\\u" + String(repeating: "0", count: 4 - hex.count) + hex)
            default: out.unicodeScalars.append(scalar)
            }
        }
        out.append("\"")
    }
}
