import Foundation
import Testing
@testable import Host

@Suite("Gradient buckets (tensor fusion)", .serialized)
struct GradientBucketsTests {
    @Test("ranges are sorted and touching ones joined")
    func merging() {
        #expect(GradientBuckets.merged([8..<10, 0..<3, 3..<5, 12..<12, 4..<6]) == [0..<6, 8..<10])
        #expect(GradientBuckets.merged([]) == [])
    }

    /// A store of five views: a, b, c, d contiguous, e frozen.
    private func store() -> ParameterStore {
        let store = ParameterStore(layout: [("a", [3]), ("b", [2, 2]), ("c", [5]), ("d", [1]), ("e", [2])])
        store.frozen = ["e"]
        for i in 0..<store.count { store.gradients[i] = Float(i + 1) }
        return store
    }

    @Test("every gradient not frozen is scaled exactly once, whether reported in buckets, apart, or not at all")
    func scalesEachGradientOnce() throws {
        let communicator = try SingleRankCommunicator.communicator()
        for bucketFloats in [1, 4, 100] {
            let store = store()
            let buckets = GradientBuckets(communicator: communicator, store: store, bucketBytes: bucketFloats * 4)
            buckets.begin(scale: 0.25)
            // As a backward reports them: from the end of the layout down; "a" is never reported.
            buckets.ready(store.view(named: "d")!.range)
            buckets.ready(store.view(named: "b")!.offset..<store.view(named: "c")!.range.upperBound)
            try buckets.finish()
            for view in store.views {
                for i in view.range {
                    let expected = view.name == "e" ? Float(i + 1) : Float(i + 1) * 0.25
                    #expect(store.gradients[i] == expected, "\(view.name)[\(i - view.offset)] with buckets of \(bucketFloats)")
                }
            }
        }
    }

    @Test("a bucket of several blocks is one collective call, summed through the fusion buffer")
    func fusesBlocks() throws {
        let communicator = try SingleRankCommunicator.communicator()
        let store = store()
        let buckets = GradientBuckets(communicator: communicator, store: store, bucketBytes: 1 << 20)
        let before = try SingleRankCommunicator.calls()
        buckets.begin(scale: 1)
        buckets.ready(store.view(named: "d")!.range)   // apart from "b": fused with a copy
        buckets.ready(store.view(named: "b")!.range)
        try buckets.finish()
        // One bucket for b + d, one for what was never reported (a and c, one call again).
        #expect(try SingleRankCommunicator.calls() - before == 2)
        #expect((0..<12).allSatisfy { store.gradients[$0] == Float($0 + 1) })
    }
}

