import Testing
@testable import Host

@Suite("Gradient clipping")
struct GradientClippingTests {
    static func store(gradients: [String: [Float]]) -> ParameterStore {
        let names = gradients.keys.sorted()
        let store = ParameterStore(layout: names.map { ($0, [gradients[$0]!.count]) })
        for name in names {
            gradients[name]!.withUnsafeBufferPointer { store.gradientPointer(name).update(from: $0.baseAddress!, count: $0.count) }
        }
        return store
    }

    @Test("gradients with global norm 13 are scaled by 6.5 / (13 + 1e-6) when the limit is 6.5")
    func clipsToMaxNorm() {
        let store = Self.store(gradients: ["a": [3, 4], "b": [-12]])
        let norm = GradientClipping.clipGlobalNorm(store, maxNorm: 6.5)
        #expect(norm == 13)
        let coefficient: Float = 6.5 / (13 + 1e-6)
        #expect(store.gradientTensor("a").scalars == [3 * coefficient, 4 * coefficient])
        #expect(store.gradientTensor("b").scalars == [-12 * coefficient])
    }

    @Test("gradients already inside the limit are left exactly as they were")
    func leavesSmallGradients() {
        let store = Self.store(gradients: ["a": [3, 4], "b": [-12]])
        #expect(GradientClipping.clipGlobalNorm(store, maxNorm: 13.5) == 13)
        #expect(store.gradientTensor("a").scalars == [3, 4])
        #expect(store.gradientTensor("b").scalars == [-12])
    }

    @Test("frozen parameters count neither in the norm nor in the scaling")
    func ignoresFrozen() {
        let store = Self.store(gradients: ["a": [3, 4], "frozen": [100]])
        store.frozen = ["frozen"]
        #expect(GradientClipping.clipGlobalNorm(store, maxNorm: 1) == 5)
        #expect(store.gradientTensor("frozen").scalars == [100])
        let a = store.gradientTensor("a").scalars
        #expect(abs(a[0] - 0.6) < 1e-6 && abs(a[1] - 0.8) < 1e-6)
    }

    @Test("the norm of a long vector with an odd tail matches a Double sum")
    func normOfLongVector() {
        let count = 10_007
        var random = SeededRandom(seed: 3)
        let values = (0..<count).map { _ in random.normal() }
        let expected = values.reduce(0.0) { $0 + Double($1) * Double($1) }
        let actual = values.withUnsafeBufferPointer { GradientClipping.squaredNorm($0.baseAddress!, count: count) }
        #expect(abs(actual - expected) <= 1e-5 * expected)
    }
}
