// The named choices a recipe's stages are made of. The CLI accepts them by these raw values
// (CLI/RunOptions.swift adds the argument-parsing conformances); recipes spell them the same way.

enum PipelineName: String, CaseIterable, Sendable {
    case baseline, baseline_kd, baseline_prune, baseline_quant, baseline_kd_prune, baseline_kd_quant
    case baseline_prune_quant, baseline_kd_prune_quant

    var includesDistillation: Bool { rawValue.contains("_kd") }
    var includesPruning: Bool { rawValue.contains("prune") }
    var includesQuantization: Bool { rawValue.contains("quant") }
}

enum LossType: String, CaseIterable, Sendable { case bce, focal }
enum KDMethod: String, CaseIterable, Sendable { case logit, hidden, attention, multi_level }
enum PruneScheduleName: String, CaseIterable, Sendable { case cubic, linear, exponential }
/// What `--prune_layers` selects: `all` = every linear layer but the final classifier row, plus the
/// word embeddings; `linear` = the same without the embeddings; `encoder` = the encoder's linear layers;
/// `attention` / `ffn` = one block of them; `embeddings` = the word embeddings alone.
enum PruneLayers: String, CaseIterable, Sendable { case all, linear, attention, ffn, encoder, embeddings }

