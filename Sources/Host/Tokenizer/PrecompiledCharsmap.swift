import Foundation

/// SentencePiece's normalization rules as tokenizer.json's `Precompiled` normalizer carries them
/// (`precompiled_charsmap`: base64 of the `.model` file's charsmap), applied as Hugging Face
/// `tokenizers` applies them.
///
/// The charsmap is `[u32 trie size in bytes][trie: u32 units][normalized strings, each ending in 0]`.
/// The trie is a Darts double array over the UTF-8 bytes of the source text; a key's leaf holds the
/// byte offset of its replacement in the strings.
///
/// `tokenizers` walks the text grapheme by grapheme: a grapheme of fewer than 6 bytes whose bytes
/// start with any key is replaced whole by the SHORTEST such key's replacement (the first the trie
/// meets); otherwise each character is looked up alone the same way and kept when nothing matches.
/// (SentencePiece itself takes the longest key; transformers' ids follow `tokenizers`.)
struct PrecompiledCharsmap: Sendable {
    private let units: [UInt32]
    private let normalized: [UInt8]

    init(charsmap bytes: [UInt8], source: String) throws {
        func failure(_ problem: String) -> TokenizerError {
            TokenizerError(file: source, problem: "normalizer Precompiled: precompiled_charsmap \(problem)")
        }
        guard bytes.count >= 4 else { throw failure("is \(bytes.count) bytes, too short for its header") }
        let trieBytes = Int(UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24)
        guard trieBytes % 4 == 0, trieBytes >= 4, 4 + trieBytes <= bytes.count else {
            throw failure("announces a trie of \(trieBytes) bytes in \(bytes.count - 4)")
        }
        var units: [UInt32] = []
        units.reserveCapacity(trieBytes / 4)
        for offset in stride(from: 4, to: 4 + trieBytes, by: 4) {
            units.append(UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8
                         | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24)
        }
        self.units = units
        normalized = Array(bytes[(4 + trieBytes)...])
        guard String(validating: normalized, as: UTF8.self) != nil else { throw failure("holds replacement strings that are not UTF-8") }
    }

    /// Decodes tokenizer.json's base64 field.
    init(base64: String, source: String) throws {
        guard let data = Data(base64Encoded: base64) else {
            throw TokenizerError(file: source, problem: "normalizer Precompiled: precompiled_charsmap is not base64")
        }
        try self.init(charsmap: [UInt8](data), source: source)
    }

    // A double-array unit: bit 8 says a leaf hangs below, bits 0-7 (and 31) are the label, the
    // offset to the children is bits 10-31, shifted left by 8 when bit 9 is set.
    private static func hasLeaf(_ unit: UInt32) -> Bool { (unit >> 8) & 1 == 1 }
    private static func value(_ unit: UInt32) -> Int { Int(unit & ((1 << 31) - 1)) }
    private static func label(_ unit: UInt32) -> UInt32 { unit & ((1 << 31) | 0xFF) }
    private static func offset(_ unit: UInt32) -> Int { Int((unit >> 10) << ((unit & (1 << 9)) >> 6)) }

    /// The replacement of the shortest key that `key` starts with, if any.
    func replacement<C: Collection>(forPrefixOf key: C) -> Substring.UTF8View? where C.Element == UInt8 {
        guard !units.isEmpty else { return nil }
        var position = Self.offset(units[0])
        for byte in key {
            if byte == 0 { return nil }
            position ^= Int(byte)
            guard position >= 0, position < units.count else { return nil }
            let unit = units[position]
            guard Self.label(unit) == UInt32(byte) else { return nil }
            position ^= Self.offset(unit)
            guard position >= 0, position < units.count else { return nil }
            if Self.hasLeaf(unit) { return text(at: Self.value(units[position])) }
        }
        return nil
    }

    /// The 0-terminated string starting at byte `start` of the replacement strings.
    private func text(at start: Int) -> Substring.UTF8View? {
        guard start <= normalized.count else { return nil }
        var end = start
        while end < normalized.count, normalized[end] != 0 { end += 1 }
        // The whole blob was checked to be UTF-8; an offset inside a character would not decode.
        guard let string = String(validating: normalized[start..<end], as: UTF8.self) else { return nil }
        return Substring(string).utf8
    }

    /// `text` normalized as `tokenizers`' Precompiled normalizer does.
    func normalize(_ text: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for grapheme in text {
            let bytes = grapheme.utf8
            if bytes.count < 6, let whole = replacement(forPrefixOf: bytes) {
                out.append(contentsOf: whole)
                continue
            }
            for scalar in grapheme.unicodeScalars {
                let utf8 = Array(String(scalar).utf8)
                if let replaced = replacement(forPrefixOf: utf8) { out.append(contentsOf: replaced) } else { out.append(contentsOf: utf8) }
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
