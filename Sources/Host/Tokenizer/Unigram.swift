/// The Unigram model of SentencePiece as Hugging Face `tokenizers` runs it (tokenizer.json
/// `"model": {"type": "Unigram", "unk_id", "vocab": [[piece, score], …], "byte_fallback"}`):
///
///   one pre-tokenized word ─ Viterbi over its UTF-8 bytes ─ pieces ─ ids
///
/// Viterbi: `best[end]` is the highest total score of pieces covering bytes 0..<end. From each
/// character boundary every vocabulary piece that starts there (found in a byte trie, shortest
/// first) is tried; a character no one-character piece covers may also be the unknown piece,
/// scored `min(score) - 10`. A candidate replaces the best only when strictly higher, so among
/// equal scores the first tried wins, as in `tokenizers`. Consecutive unknown pieces are fused into
/// one; with `byte_fallback`, a fused unknown whose every byte has a `<0xHH>` piece becomes those
/// pieces instead of the unknown id.
struct Unigram: Sendable {
    let pieces: [String]
    let scores: [Double]
    let unkId: Int?
    let byteFallback: Bool

    /// A byte trie of the pieces: `children[node]` maps a byte to the next node; `pieceId[node]`
    /// is the id of the piece ending there (the last one listed when a piece repeats, as a hash map
    /// filled in id order keeps).
    private var children: [[UInt8: Int32]] = [[:]]
    private var pieceId: [Int32] = [-1]
    private let unknownScore: Double
    private let byteIds: [Int?]

    /// Throws (naming `source`) when the unknown id is outside the vocabulary.
    init(pieces: [String], scores: [Double], unkId: Int?, byteFallback: Bool, source: String) throws {
        guard !pieces.isEmpty else { throw TokenizerError(file: source, problem: "model.vocab of the Unigram model is empty") }
        if let unkId, !pieces.indices.contains(unkId) {
            throw TokenizerError(file: source, problem: "model.unk_id \(unkId) is outside the vocabulary of \(pieces.count) pieces")
        }
        self.pieces = pieces
        self.scores = scores
        self.unkId = unkId
        self.byteFallback = byteFallback
        unknownScore = (scores.min() ?? 0) - 10
        for (id, piece) in pieces.enumerated() {
            var node = 0
            for byte in piece.utf8 {
                if let next = children[node][byte] {
                    node = Int(next)
                } else {
                    children.append([:])
                    pieceId.append(-1)
                    children[node][byte] = Int32(children.count - 1)
                    node = children.count - 1
                }
            }
            pieceId[node] = Int32(id)
        }
        var byteIds: [Int?] = Array(repeating: nil, count: 256)
        if byteFallback {
            for byte in 0..<256 { byteIds[byte] = Self.lookUp(Array(Self.bytePiece(UInt8(byte)).utf8), children, pieceId) }
        }
        self.byteIds = byteIds
    }

    /// `<0x41>` for the byte 0x41, SentencePiece's name for a byte piece.
    static func bytePiece(_ byte: UInt8) -> String {
        let hex = String(byte, radix: 16, uppercase: true)
        return "<0x" + (hex.count == 1 ? "0" + hex : hex) + ">"
    }

    private static func lookUp(_ bytes: [UInt8], _ children: [[UInt8: Int32]], _ pieceId: [Int32]) -> Int? {
        var node = 0
        for byte in bytes {
            guard let next = children[node][byte] else { return nil }
            node = Int(next)
        }
        return pieceId[node] >= 0 ? Int(pieceId[node]) : nil
    }

    /// The id of a piece, if the vocabulary has it.
    func id(of piece: String) -> Int? { Self.lookUp(Array(piece.utf8), children, pieceId) }

    /// Appends the ids of one pre-tokenized word. Returns false when a character is unknown and the
    /// model has no unknown piece (`tokenizers` fails the whole text then).
    @discardableResult
    func appendIds(of word: String, to ids: inout [Int]) -> Bool {
        let bytes = Array(word.utf8)
        guard !bytes.isEmpty else { return true }
        let size = bytes.count
        // best[end]: (score, start of the last piece, its id); start -1: not reached yet.
        var bestScore = [Double](repeating: 0, count: size + 1)
        var bestStart = [Int](repeating: -1, count: size + 1)
        var bestId = [Int](repeating: 0, count: size + 1)
        var start = 0
        while start < size {
            let scoreHere = bestScore[start]
            let characterLength = Self.utf8Length(leading: bytes[start])
            var hasSingleCharacterPiece = false
            var node = 0
            var end = start
            while end < size, let next = children[node][bytes[end]] {
                node = Int(next)
                end += 1
                let id = Int(pieceId[node])
                guard id >= 0 else { continue }
                let candidate = scores[id] + scoreHere
                if bestStart[end] < 0 || candidate > bestScore[end] {
                    bestScore[end] = candidate
                    bestStart[end] = start
                    bestId[end] = id
                }
                if end - start == characterLength { hasSingleCharacterPiece = true }
            }
            if !hasSingleCharacterPiece {
                guard let unkId else { return false }
                let end = min(start + characterLength, size)
                let candidate = unknownScore + scoreHere
                if bestStart[end] < 0 || candidate > bestScore[end] {
                    bestScore[end] = candidate
                    bestStart[end] = start
                    bestId[end] = unkId
                }
            }
            start += characterLength
        }

        // Back from the end: pieces in reverse, runs of unknown pieces fused into one byte range.
        var path: [(range: Range<Int>, id: Int)] = []
        var end = size
        while end > 0 {
            let start = bestStart[end]
            guard start >= 0 else { return false }
            if bestId[end] == unkId, let last = path.last, last.id == unkId, last.range.lowerBound == end {
                path[path.count - 1].range = start..<last.range.upperBound
            } else {
                path.append((start..<end, bestId[end]))
            }
            end = start
        }
        for (range, id) in path.reversed() {
            guard id == unkId, let unkId else {
                ids.append(id)
                continue
            }
            // A (fused) unknown piece is looked up as a string first, as `tokenizers` does.
            if let whole = Self.lookUp(Array(bytes[range]), children, pieceId) {
                ids.append(whole)
            } else if byteFallback, bytes[range].allSatisfy({ byteIds[Int($0)] != nil }) {
                for byte in bytes[range] { if let byteId = byteIds[Int(byte)] { ids.append(byteId) } }
            } else {
                ids.append(unkId)
            }
        }
        return true
    }

    /// Bytes of the UTF-8 character that starts with `byte`.
    private static func utf8Length(leading byte: UInt8) -> Int {
        switch byte {
        case 0..<0x80: 1
        case 0xF0...: 4
        case 0xE0...: 3
        default: 2
        }
    }
}
