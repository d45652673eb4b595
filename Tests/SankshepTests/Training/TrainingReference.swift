import Foundation
@testable import Host

/// Values computed once with PyTorch and transformers by `scripts/fixtures/make_training_fixtures.py`
/// (Fixtures/training/reference.json).
struct TrainingReference: Decodable {
    struct Focal: Decodable {
        let alpha: Float, gamma: Float
        let logits: [Float], labels: [Float]
        let loss: Double, gradient: [Double]
    }
    struct BCE: Decodable {
        let logits: [Float], labels: [Float]
        let pos_weight: [Float]
        let loss: Double, gradient: [Double]
    }
    struct BinaryKL: Decodable {
        let student: [Float], teacher: [Float]
        let temperature: Float
        let loss: Double, gradient: [Double]
    }
    struct Schedule: Decodable {
        let kind: String
        let warmup: Int, total: Int
        let base: Double
        let rates: [Double]
    }
    struct AdamWRun: Decodable {
        struct Step: Decodable {
            let lr: Double
            let gradients: [String: [Float]]
            let after: [String: [Float]]
        }
        let shapes: [String: [Int]]
        let order: [String]
        let initial: [String: [Float]]
        let lr: Double, weight_decay: Double
        let frozen: [String]
        let steps: [Step]
    }
    struct RandomOutputs: Decodable {
        let seed: String
        let outputs: [String]
    }

    let focal: [Focal]
    let bce: BCE
    let binary_kl: BinaryKL
    let schedules: [Schedule]
    let adamw: AdamWRun
    let xoshiro256starstar: [RandomOutputs]

    static func load() throws -> TrainingReference {
        let data = try Data(contentsOf: Fixtures.url("training/reference.json"))
        return try JSONDecoder().decode(TrainingReference.self, from: data)
    }
}
