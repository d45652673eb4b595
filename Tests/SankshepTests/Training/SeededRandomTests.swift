import Testing
@testable import Host

@Suite("Seeded random numbers")
struct SeededRandomTests {
    @Test("the generator is xoshiro256** seeded by SplitMix64, output for output")
    func knownAnswers() throws {
        for reference in try TrainingReference.load().xoshiro256starstar {
            var random = SeededRandom(seed: try #require(UInt64(reference.seed)))
            #expect((0..<reference.outputs.count).map { _ in random.next() } == reference.outputs.map { UInt64($0)! })
        }
    }

    @Test("the same seed gives the same floats, normals and shuffles; another seed does not")
    func sameSeedSameSequence() {
        func draw(_ seed: UInt64) -> (floats: [Float], normals: [Float], order: [Int]) {
            var random = SeededRandom(seed: seed)
            let floats = (0..<100).map { _ in random.nextFloat() }
            let normals = (0..<100).map { _ in random.normal(mean: 1, std: 2) }
            var order = Array(0..<50)
            order.shuffle(using: &random)
            return (floats, normals, order)
        }
        let first = draw(42), again = draw(42), other = draw(43)
        #expect(first.floats == again.floats && first.normals == again.normals && first.order == again.order)
        #expect(first.floats != other.floats && first.order != other.order)
        #expect(first.order.sorted() == Array(0..<50))
    }

    @Test("a generator rebuilt from its saved state continues the same sequence")
    func stateRoundTrip() throws {
        var random = SeededRandom(seed: 9)
        for _ in 0..<17 { _ = random.next() }
        var copy = try #require(SeededRandom(stateWords: random.stateWords))
        #expect((0..<10).map { _ in copy.next() } == (0..<10).map { _ in random.next() })
        #expect(SeededRandom(stateWords: [0, 0, 0, 0]) == nil)
        #expect(SeededRandom(stateWords: [1, 2]) == nil)
    }

    @Test("floats lie in [0, 1) and normals have the requested mean and spread")
    func distributions() {
        var random = SeededRandom(seed: 2024)
        let count = 200_000
        let floats = (0..<count).map { _ in random.nextFloat() }
        #expect(floats.allSatisfy { $0 >= 0 && $0 < 1 })
        let floatMean = floats.reduce(0.0) { $0 + Double($1) } / Double(count)
        #expect(abs(floatMean - 0.5) < 0.005)
        let normals = (0..<count).map { _ in random.normal(mean: 3, std: 0.5) }
        let mean = normals.reduce(0.0) { $0 + Double($1) } / Double(count)
        let variance = normals.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(count)
        #expect(abs(mean - 3) < 0.01)
        #expect(abs(variance.squareRoot() - 0.5) < 0.01)
    }
}
