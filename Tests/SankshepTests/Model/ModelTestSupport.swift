import Foundation
@testable import Host

/// Helpers shared by the model tests: load a fixture model, the reference batch, a local BCE loss.
enum ModelFixture {
    static func shape(_ folder: String) throws -> EncoderShape {
        let url = Fixtures.url("\(folder)/config.json")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        return try EncoderShape(json: json, file: url.path)
    }

    /// A Hugging Face classifier with the weights of `folder/model.safetensors`.
    static func huggingFaceModel(_ folder: String) throws -> SequenceClassifier {
        let shape = try shape(folder)
        let model = SequenceClassifier(shape: shape, head: .huggingFace(for: shape.modelType), numLabels: 1)
        let weights = try SafeTensorsFile(contentsOf: Fixtures.url("\(folder)/model.safetensors"))
        for view in model.store.views { model.store.setValues(view.name, from: try weights.tensor(named: view.name)) }
        return model
    }

    struct Batch {
        let ids: [Int32], mask: [Int32], types: [Int32]?
        let batch: Int, length: Int
        let labels: [Float], posWeight: Float
    }

    static func batch(_ reference: SafeTensorsFile) throws -> Batch {
        let ids = try reference.integers(named: "input_ids")
        let mask = try reference.integers(named: "attention_mask")
        let types = reference.entry(named: "token_type_ids") == nil ? nil : try reference.integers(named: "token_type_ids").values.map(Int32.init)
        return Batch(ids: ids.values.map(Int32.init), mask: mask.values.map(Int32.init), types: types,
                     batch: ids.shape[0], length: ids.shape[1],
                     labels: try reference.tensor(named: "labels").scalars,
                     posWeight: try reference.tensor(named: "pos_weight").scalars[0])
    }

    /// BCE-with-logits with pos_weight, mean over the batch (torch.nn.BCEWithLogitsLoss), and its
    /// gradient w.r.t. the logits, computed in Double.
    static func bceWithLogits(_ logits: [Float], labels: [Float], posWeight: Float) -> (loss: Double, dLogits: [Float]) {
        let n = Double(logits.count), pw = Double(posWeight)
        var loss = 0.0
        var grad = [Float](repeating: 0, count: logits.count)
        for i in 0..<logits.count {
            let x = Double(logits[i]), y = Double(labels[i])
            // log(sigmoid(x)) = -softplus(-x), log(1 - sigmoid(x)) = -softplus(x)
            let softplusNeg = max(-x, 0) + log1p(exp(-abs(x)))
            let softplusPos = softplusNeg + x
            loss += pw * y * softplusNeg + (1 - y) * softplusPos
            let sigmoid = 1 / (1 + exp(-x))
            grad[i] = Float((sigmoid * (pw * y + 1 - y) - pw * y) / n)
        }
        return (loss / n, grad)
    }

    static func maxAbsDifference(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count)
        return zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
    }

    static func norm(_ a: [Float]) -> Double { a.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot() }

    /// ||a - b|| / ||b||, in Double.
    static func relativeError(_ a: [Float], _ b: [Float]) -> Double {
        precondition(a.count == b.count)
        var diff = 0.0, norm = 0.0
        for (x, y) in zip(a, b) { diff += Double(x - y) * Double(x - y); norm += Double(y) * Double(y) }
        return norm == 0 ? diff.squareRoot() : (diff / norm).squareRoot()
    }
}
