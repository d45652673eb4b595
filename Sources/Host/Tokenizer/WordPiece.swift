/// WordPiece's greedy longest-match-first split of one word, with the vocabulary stored as a trie
/// over Unicode scalars. Walking the trie from a piece's start finds the longest vocabulary entry
/// beginning there in one pass, where Hugging Face tries every shorter substring from the end: same
/// answer, no String built per attempt. Continuation pieces walk from the node reached by "##".
struct WordPiece: Sendable {
    /// Trie edges, keyed by (parent node << 21) | scalar — a scalar needs 21 bits. Node 0 is the root.
    private var children: [UInt64: Int32] = [:]
    /// The vocabulary id of the entry ending at each node, or -1.
    private var idAtNode: [Int32] = [-1]
    /// The node reached from the root by the continuation prefix ("##"), or -1 if no entry has it.
    private var continuationRoot: Int32 = -1
    /// What a word no entries cover becomes; set once the vocabulary's [UNK] is known.
    var unkId = 0
    let maxInputCharsPerWord: Int

    /// `tokens[i]` has id i. A token listed twice keeps its last id, as Hugging Face's vocab loading does.
    init(tokens: [String], continuingSubwordPrefix: String = "##", maxInputCharsPerWord: Int = 100) {
        self.maxInputCharsPerWord = maxInputCharsPerWord
        children.reserveCapacity(tokens.count * 4)
        for (id, token) in tokens.enumerated() {
            var node: Int32 = 0
            for scalar in token.unicodeScalars { node = childOrNew(of: node, scalar) }
            idAtNode[Int(node)] = Int32(id)
        }
        var node: Int32 = 0
        for scalar in continuingSubwordPrefix.unicodeScalars {
            guard let next = child(of: node, scalar) else { node = -1; break }
            node = next
        }
        continuationRoot = node
    }

    /// The id of the entry spelled exactly `token` (scalar by scalar, not by canonical equivalence).
    func id(of token: String) -> Int? {
        var node: Int32 = 0
        for scalar in token.unicodeScalars {
            guard let next = child(of: node, scalar) else { return nil }
            node = next
        }
        let id = idAtNode[Int(node)]
        return node == 0 || id < 0 ? nil : Int(id)
    }

    @inline(__always)
    private func child(of node: Int32, _ scalar: Unicode.Scalar) -> Int32? {
        children[UInt64(node) << 21 | UInt64(scalar.value)]
    }

    private mutating func childOrNew(of node: Int32, _ scalar: Unicode.Scalar) -> Int32 {
        let key = UInt64(node) << 21 | UInt64(scalar.value)
        if let existing = children[key] { return existing }
        let new = Int32(idAtNode.count)
        idAtNode.append(-1)
        children[key] = new
        return new
    }

    /// Appends the ids of `word` (non-empty, already normalized and pre-tokenized). A word longer than
    /// `maxInputCharsPerWord` scalars, or with any part no entry covers, becomes one [UNK].
    func appendIds(of word: ArraySlice<Unicode.Scalar>, to ids: inout [Int]) {
        guard word.count <= maxInputCharsPerWord else { ids.append(unkId); return }
        let firstPiece = ids.count
        var start = word.startIndex
        while start < word.endIndex {
            var node: Int32 = start == word.startIndex ? 0 : continuationRoot
            var bestEnd = -1
            var bestId: Int32 = -1
            var i = start
            // Only entries at least one scalar long count: "" or "##" alone never match.
            while node >= 0, i < word.endIndex, let next = child(of: node, word[i]) {
                node = next
                i += 1
                let id = idAtNode[Int(next)]
                if id >= 0 { bestEnd = i; bestId = id }
            }
            guard bestEnd >= 0 else {
                ids.removeSubrange(firstPiece...)
                ids.append(unkId)
                return
            }
            ids.append(Int(bestId))
            start = bestEnd
        }
    }
}
