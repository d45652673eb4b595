import Testing
import Kernels

@Suite("Kernel thread pool", .serialized)
struct QuantParallelForTests {
    @Test("sk_parallel_for visits every index exactly once, for any length and thread count",
          arguments: [1, 2, 3])
    func visitsEachIndexOnce(threads: Int) {
        withKernelThreads(threads) {
            for n in [0, 1, 2, 3, 17, 1000] {
                var visits = [Int32](repeating: 0, count: max(n, 1))
                visits.withUnsafeMutableBufferPointer { buffer in
                    for _ in 0..<3 {   // the pool is reused across calls
                        sk_parallel_for(Int32(n), { context, begin, end in
                            let counts = context!.assumingMemoryBound(to: Int32.self)
                            for i in Int(begin)..<Int(end) { counts[i] += 1 }
                        }, buffer.baseAddress)
                    }
                }
                #expect(visits.prefix(n).allSatisfy { $0 == 3 }, "n=\(n) threads=\(threads)")
            }
        }
    }
}
