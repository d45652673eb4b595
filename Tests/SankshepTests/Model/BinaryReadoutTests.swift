import Foundation
import Testing
@testable import Host

@Suite("Binary readout of one- and two-label heads")
struct BinaryReadoutTests {
    @Test("two logits give softmax(l)[1] as the probability and l1 - l0 as the binary logit")
    func twoLabelsAreSoftmax() {
        let logits: [Float] = [0.3, -1.2, 2.5, 0.5, -4, 7]
        let probabilities = BinaryReadout.probabilities(logits, labels: 2)
        for row in 0..<3 {
            let l0 = Double(logits[2 * row]), l1 = Double(logits[2 * row + 1])
            let softmax = exp(l1) / (exp(l0) + exp(l1))
            #expect(abs(Double(probabilities[row]) - softmax) < 1e-7)
        }
        #expect(BinaryReadout.binaryLogits(logits, labels: 2) == [-1.5, -2, 11])
    }

    @Test("one logit reads as before: sigmoid of the logit itself")
    func oneLabelIsUnchanged() {
        let logits: [Float] = [0.3, -1.2, 9]
        #expect(BinaryReadout.binaryLogits(logits, labels: 1) == logits)
        #expect(BinaryReadout.probabilities(logits, labels: 1) == logits.map { Float(Losses.sigmoid(Double($0))) })
        #expect(BinaryReadout.logitGradients([0.5, -1, 2], labels: 1) == [0.5, -1, 2])
    }

    @Test("cross-entropy on two logits equals BCE on l1 - l0, in value and in gradient")
    func crossEntropyIsBCEOnTheDifference() {
        let logits: [Float] = [0.3, -1.2, 2.5, 0.5, -4, 7, 1, 1]
        let labels: [Float] = [1, 0, 0, 1]
        let bce = Losses.binaryCrossEntropyWithLogits(logits: BinaryReadout.binaryLogits(logits, labels: 2), labels: labels,
                                                      positiveWeights: [1])
        let gradient = BinaryReadout.logitGradients(bce.gradient, labels: 2)
        var loss = 0.0
        for row in 0..<4 {
            let l = [Double(logits[2 * row]), Double(logits[2 * row + 1])]
            let normaliser = log(exp(l[0]) + exp(l[1]))
            let target = Int(labels[row])
            loss += (normaliser - l[target]) / 4
            for k in 0..<2 {
                // d/dl_k of mean −log softmax(l)[y] = (softmax_k − [k == y]) / N
                let expected = (exp(l[k] - normaliser) - (k == target ? 1 : 0)) / 4
                #expect(abs(Double(gradient[2 * row + k]) - expected) < 1e-6, "row \(row), logit \(k)")
            }
        }
        #expect(abs(Double(bce.loss) - loss) < 1e-6)
    }

    @Test("id2label: index 1 is the positive class unless its name is a negative one and index 0's is not",
          arguments: [([0: "not hate", 1: "hate"], 1), ([0: "hate", 1: "not hate"], 0), ([0: "LABEL_0", 1: "LABEL_1"], 1),
                      ([0: "HOF", 1: "NOT"], 0), ([0: "NOT", 1: "HOF"], 1), ([0: "hate", 1: "non-hate"], 0),
                      ([0: "normal", 1: "offensive"], 1), ([0: "abusive", 1: "Normal"], 0), ([0: "no", 1: "not"], 1),
                      ([0: "nothing", 1: "notable"], 1)])
    func positiveIndex(_ names: [Int: String], _ expected: Int) {
        #expect(BinaryReadout.positiveIndex(id2label: names) == expected)
    }
}
