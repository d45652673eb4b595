import Foundation
import Testing
@testable import Host

@Suite("Losses")
struct LossesTests {
    /// Central differences of `loss` at every logit, in Double on Float inputs.
    static func numericalGradient(_ logits: [Float], step: Float = 1e-2, loss: ([Float]) -> Float) -> [Double] {
        logits.indices.map { i in
            var plus = logits, minus = logits
            plus[i] += step
            minus[i] -= step
            return (Double(loss(plus)) - Double(loss(minus))) / Double(plus[i] - minus[i])
        }
    }

    static func expectClose(_ actual: [Float], _ expected: [Double], tolerance: Double, _ what: String) {
        #expect(actual.count == expected.count)
        for (index, (a, e)) in zip(actual, expected).enumerated() {
            #expect(abs(Double(a) - e) <= tolerance, "\(what)[\(index)]: \(a) vs \(e)")
        }
    }

    static let logits: [Float] = [1.7, -0.4, 0.05, -3.2, 2.9, 0.8, -1.1]
    static let labels: [Float] = [1, 0, 1, 1, 0, 0.3, 1]

    @Test("BCE with pos_weight on the fixture batch gives PyTorch's loss", arguments: ["bert-tiny", "distilbert-tiny", "seed-checkpoint"])
    func bceMatchesFixture(folder: String) throws {
        let reference = try SafeTensorsFile(contentsOf: Fixtures.url("\(folder)/reference.safetensors"))
        let logits = try reference.tensor(named: "logits").scalars
        let labels = try reference.tensor(named: "labels").scalars
        let positiveWeight = try reference.tensor(named: "pos_weight").scalars
        let expected = try reference.tensor(named: "loss").scalars[0]
        let result = Losses.binaryCrossEntropyWithLogits(logits: logits, labels: labels, positiveWeights: positiveWeight)
        #expect(abs(result.loss - expected) <= 1e-6, "\(result.loss) vs \(expected)")
    }

    @Test("BCE with one pos_weight per label, soft labels and ±40 logits matches PyTorch's loss and gradient")
    func bceMatchesPyTorchPerLabel() throws {
        let bce = try TrainingReference.load().bce
        let result = Losses.binaryCrossEntropyWithLogits(logits: bce.logits, labels: bce.labels, positiveWeights: bce.pos_weight)
        #expect(abs(Double(result.loss) - bce.loss) <= 1e-6 * max(1, abs(bce.loss)))
        Self.expectClose(result.gradient, bce.gradient, tolerance: 1e-7, "dBCE/dx")
    }

    @Test("BCE's gradient matches finite differences")
    func bceGradientMatchesFiniteDifferences() {
        let loss = { (x: [Float]) in Losses.binaryCrossEntropyWithLogits(logits: x, labels: Self.labels, positiveWeights: [1.7]).loss }
        let analytic = Losses.binaryCrossEntropyWithLogits(logits: Self.logits, labels: Self.labels, positiveWeights: [1.7]).gradient
        Self.expectClose(analytic, Self.numericalGradient(Self.logits, loss: loss), tolerance: 2e-4, "dBCE/dx")
    }

    @Test("focal loss matches torchvision's sigmoid_focal_loss for several alpha and gamma")
    func focalMatchesPyTorch() throws {
        let cases = try TrainingReference.load().focal
        #expect(cases.count == 5)
        for reference in cases {
            let result = Losses.focal(logits: reference.logits, labels: reference.labels, alpha: reference.alpha, gamma: reference.gamma)
            #expect(abs(Double(result.loss) - reference.loss) <= 1e-6, "α \(reference.alpha) γ \(reference.gamma): \(result.loss) vs \(reference.loss)")
            Self.expectClose(result.gradient, reference.gradient, tolerance: 1e-7, "α \(reference.alpha) γ \(reference.gamma) dFocal/dx")
        }
    }

    @Test("focal loss's gradient matches finite differences, including gamma below 1", arguments: [Float(2), 0.5, 0])
    func focalGradientMatchesFiniteDifferences(gamma: Float) {
        let loss = { (x: [Float]) in Losses.focal(logits: x, labels: Self.labels, alpha: 0.25, gamma: gamma).loss }
        let analytic = Losses.focal(logits: Self.logits, labels: Self.labels, alpha: 0.25, gamma: gamma).gradient
        Self.expectClose(analytic, Self.numericalGradient(Self.logits, loss: loss), tolerance: 2e-4, "dFocal/dx")
    }

    @Test("focal loss with gamma 0 and alpha off is plain BCE")
    func focalReducesToBCE() {
        let focal = Losses.focal(logits: Self.logits, labels: Self.labels, alpha: -1, gamma: 0)
        let bce = Losses.binaryCrossEntropyWithLogits(logits: Self.logits, labels: Self.labels)
        #expect(abs(focal.loss - bce.loss) <= 1e-7)
        Self.expectClose(focal.gradient, bce.gradient.map(Double.init), tolerance: 1e-7, "dFocal/dx")
    }

    @Test("binary KL between tempered sigmoids matches PyTorch's kl_div and its gradient")
    func binaryKLMatchesPyTorch() throws {
        let kl = try TrainingReference.load().binary_kl
        let result = Losses.binaryKLDivergence(studentLogits: kl.student, teacherLogits: kl.teacher, temperature: kl.temperature)
        #expect(abs(Double(result.loss) - kl.loss) <= 1e-7, "\(result.loss) vs \(kl.loss)")
        Self.expectClose(result.gradient, kl.gradient, tolerance: 1e-8, "dKL/dz")
    }

    @Test("binary KL's gradient matches finite differences and vanishes when student equals teacher")
    func binaryKLGradient() {
        let teacher: [Float] = [0.3, 2.2, -1.4, 5.0, -0.6, 1.0, -7.5]
        let loss = { (x: [Float]) in Losses.binaryKLDivergence(studentLogits: x, teacherLogits: teacher, temperature: 2).loss }
        let analytic = Losses.binaryKLDivergence(studentLogits: Self.logits, teacherLogits: teacher, temperature: 2).gradient
        Self.expectClose(analytic, Self.numericalGradient(Self.logits, step: 5e-2, loss: loss), tolerance: 2e-4, "dKL/dz")
        let same = Losses.binaryKLDivergence(studentLogits: teacher, teacherLogits: teacher, temperature: 4)
        #expect(abs(same.loss) <= 1e-7)
        #expect(same.gradient.allSatisfy { $0 == 0 })
    }

    @Test("logit MSE and its gradient match finite differences")
    func logitMSE() {
        let teacher: [Float] = [0.3, 2.2, -1.4, 5.0, -0.6, 1.0, -7.5]
        let result = Losses.logitMeanSquaredError(studentLogits: Self.logits, teacherLogits: teacher)
        let expected = zip(Self.logits, teacher).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +) / 7
        #expect(abs(Double(result.loss) - expected) <= 1e-6)
        let loss = { (x: [Float]) in Losses.logitMeanSquaredError(studentLogits: x, teacherLogits: teacher).loss }
        Self.expectClose(result.gradient, Self.numericalGradient(Self.logits, loss: loss), tolerance: 2e-4, "dMSE/dz")
    }

    @Test("extreme logits give finite losses and gradients")
    func extremeLogitsStayFinite() {
        let logits: [Float] = [100, -100, 88, -88]
        let labels: [Float] = [0, 1, 1, 0]
        for result in [Losses.binaryCrossEntropyWithLogits(logits: logits, labels: labels, positiveWeights: [2]),
                       Losses.focal(logits: logits, labels: labels),
                       Losses.binaryKLDivergence(studentLogits: logits, teacherLogits: logits.reversed(), temperature: 1)] {
            #expect(result.loss.isFinite)
            #expect(result.gradient.allSatisfy { $0.isFinite })
        }
        // Wrong by 100 on each of the first two: each contributes about 100 (times pos_weight 2 for the positive).
        let bce = Losses.binaryCrossEntropyWithLogits(logits: [100, -100], labels: [0, 1], positiveWeights: [2])
        #expect(abs(bce.loss - 150) <= 1e-3)
    }
}
