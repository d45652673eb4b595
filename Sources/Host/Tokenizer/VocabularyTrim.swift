import Foundation

/// Tokenizers with part of their vocabulary: the tokenizer side of vocabulary trimming
/// (Pipeline/Trimming keeps the matching embedding rows).
///
/// Kept entries keep their order and are numbered again from 0, so id `ids[i]` becomes `i`. Every
/// other entry is deleted from the files — vocab.txt for WordPiece, the piece table of tokenizer.json
/// for Unigram — so a text whose tokens were all kept tokenizes to the same tokens as before:
/// WordPiece's longest match and Unigram's best path never needed a deleted entry for it. A word
/// that used a deleted entry is cut again from the kept ones (WordPiece: [UNK] when none fits;
/// Unigram: shorter pieces, the unknown piece for a character no kept piece covers).
extension BertTokenizer {
    /// The special tokens (and added tokens) of the vocabulary.
    var requiredIds: [Int] {
        var ids = [padId, unkId, clsId, sepId] + (maskId.map { [$0] } ?? [])
        for token in options.addedTokens ?? [] { if let id = id(forToken: token) { ids.append(id) } }
        return ids
    }

    func keeping(_ ids: [Int]) throws -> any Tokenizer {
        var trimmed = try BertTokenizer(vocabulary: ids.map { vocabulary[$0] }, options: options, source: source)
        trimmed.logger = logger
        return trimmed
    }
}

extension PipelineTokenizer {
    /// Special and added tokens, the post-processor's, and the lowest-scoring piece: its score sets
    /// the unknown piece's (lowest score − 10), which must not move.
    var requiredIds: [Int] {
        var ids = [padId, unkId, clsId, sepId] + (maskId.map { [$0] } ?? []) + prefix + suffix
        if case .array(let added)? = tokenizerJSON["added_tokens"] { ids += added.compactMap { $0["id"]?.int } }
        if let lowest = unigram.scores.indices.min(by: { unigram.scores[$0] < unigram.scores[$1] }) { ids.append(lowest) }
        return ids
    }

    func keeping(_ ids: [Int]) throws -> any Tokenizer {
        var newId = [Int](repeating: -1, count: vocabulary.count)
        for (index, id) in ids.enumerated() { newId[id] = index }
        func remap(_ value: ExactJSON) -> ExactJSON? {
            guard let id = value.int, newId.indices.contains(id), newId[id] >= 0 else { return nil }
            return .number(Double(newId[id]))
        }
        func edit(_ json: ExactJSON, _ key: String, _ change: (ExactJSON) -> ExactJSON) -> ExactJSON {
            guard case .object(var members) = json, let index = members.firstIndex(where: { $0.key == key }) else { return json }
            members[index].value = change(members[index].value)
            return .object(members)
        }
        // Ids inside the post-processor: TemplateProcessing's special_tokens.*.ids, [token, id] pairs.
        func remapProcessor(_ json: ExactJSON) -> ExactJSON {
            switch json {
            case .object(let members):
                return .object(members.map { member in
                    if member.key == "ids", case .array(let list) = member.value { return (member.key, .array(list.map { remap($0) ?? $0 })) }
                    if ["cls", "sep"].contains(member.key), case .array(let pair) = member.value, pair.count == 2 {
                        return (member.key, .array([pair[0], remap(pair[1]) ?? pair[1]]))
                    }
                    return (member.key, remapProcessor(member.value))
                })
            case .array(let items): return .array(items.map(remapProcessor))
            default: return json
            }
        }
        var root = tokenizerJSON
        root = edit(root, "model") { model in
            var model = edit(model, "vocab") { vocab in
                guard case .array(let entries) = vocab else { return vocab }
                return .array(ids.filter { $0 < entries.count }.map { entries[$0] })
            }
            model = edit(model, "unk_id") { remap($0) ?? $0 }
            return model
        }
        root = edit(root, "added_tokens") { added in
            guard case .array(let tokens) = added else { return added }
            return .array(tokens.compactMap { token in
                guard let id = token["id"], let mapped = remap(id) else { return nil }
                return edit(token, "id") { _ in mapped }
            })
        }
        root = edit(root, "post_processor", remapProcessor)
        root = edit(root, "padding") { edit($0, "pad_id") { remap($0) ?? $0 } }
        return try PipelineTokenizer(tokenizerJSON: root, config: configJSON, source: source)
    }
}
