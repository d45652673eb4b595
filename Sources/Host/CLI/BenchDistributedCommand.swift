import ArgumentParser
import Foundation
import Kernels

/// `mpirun -np N sankshep bench-distributed`: what data-parallel training costs on this network, as
/// one JSON object printed by rank 0 (docs/distributed.md).
struct BenchDistributedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-distributed",
        abstract: "Time the gradient allreduce, or a data-parallel training step, across the ranks of an mpirun job; prints one JSON object.",
        discussion: """
            allreduce: the whole gradient of the shape summed across the ranks in fused buckets, as a \
            backward reports it (layer by layer, from the head down), with no computation in between. \
            step: a data-parallel training step at a global --batch (each rank a shard), the allreduce \
            overlapping the backward; exposed_ms is how long the step waited for the allreduce after \
            its backward. bus_gbps is ring-allreduce bus bandwidth: 2(N-1)/N x gradient bytes / time.
            """
    )

    enum Mode: String, ExpressibleByArgument, CaseIterable { case allreduce, step }

    @Option(help: "allreduce or step.")
    var mode: Mode = .allreduce
    @Option(help: "small, bert-base or distilbert-multilingual.")
    var shape: BenchCommand.Shape = .bertBase
    @Option(help: "step: sequences per global batch (split over the ranks).")
    var batch: Int = 32
    @Option(help: "step: tokens per sequence.")
    var seq: Int = 32
    @Option(help: "Threads per rank for OpenBLAS and the kernels.")
    var threads: Int = 1
    @Option(help: "Untimed runs first.")
    var warmup: Int = 1
    @Option(help: "Timed runs.")
    var iterations: Int = 5
    @Option(name: .customLong("allreduce_bucket_mb"), help: "Megabytes of gradients per collective call.")
    var allreduceBucketMB: Double = 25
    @Option(help: "The communicator plugin.")
    var distributed: String = "mpi"

    func validate() throws {
        if batch < 1 || seq < 1 || threads < 1 || iterations < 1 || warmup < 0 || allreduceBucketMB <= 0 {
            throw ValidationError("--batch, --seq, --threads, --iterations and --allreduce_bucket_mb must be positive, --warmup at least 0")
        }
    }

    struct Result: Encodable {
        let mode, shape, engine, cpu: String
        let ranks, threads_per_rank, params, buckets_mb_limit: Int
        let gradient_mb: Double
        let batch, seq: Int?
        let median_ms, min_ms: Double
        let allreduce_ms: Double?, exposed_ms: Double?
        let bus_gbps: Double
        let iterations: Int
    }

    func run() throws {
        sk_set_threads(Int32(threads))
        let communicator = try Communicator.open(named: distributed, registry: PluginRegistry())
        let encoder = shape.encoder
        let model = SequenceClassifier(shape: encoder, head: .huggingFace(for: encoder.modelType), numLabels: 1)
        // The allreduce reads gradients only: the weights stay zero.
        if mode == .step { model.initializeRandomly(seed: 42) }
        let store = model.store
        let bucketBytes = Int(allreduceBucketMB * 1024 * 1024)
        let buckets = GradientBuckets(communicator: communicator, store: store, bucketBytes: bucketBytes)
        var timings: [Double] = []
        var allreduceTimes: [Double] = []
        var exposedTimes: [Double] = []
        func milliseconds(since start: UInt64) -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6 }

        switch mode {
        case .allreduce:
            // The blocks in the order a backward finishes them: head, layers from the last, embeddings.
            let layerBlocks = (0..<encoder.layers).reversed().compactMap { layer -> Range<Int>? in
                let views = store.views.filter { $0.name.contains(".layer.\(layer).") }
                guard let first = views.first, let last = views.last else { return nil }
                return first.offset..<last.range.upperBound
            }
            for iteration in 0..<(warmup + iterations) {
                store.gradients.update(repeating: 1e-3, count: store.count)
                try communicator.barrier()
                let start = DispatchTime.now().uptimeNanoseconds
                buckets.begin(scale: 1)
                for block in layerBlocks { buckets.ready(block) }
                try buckets.finish()
                if iteration >= warmup { timings.append(milliseconds(since: start)) }
            }
        case .step:
            var state: UInt64 = 7
            func nextRandom() -> UInt64 { state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407; return state >> 33 }
            let ids = (0..<(batch * seq)).map { _ in Int32(5 + Int(nextRandom() % UInt64(encoder.vocabSize - 5))) }
            let labels = (0..<batch).map { Float($0 % 2) }
            let shard = DataParallel.shard(of: batch, rank: communicator.rank, size: communicator.size)
            let myIds = Array(ids[(shard.lowerBound * seq)..<(shard.upperBound * seq)])
            let mask = [Int32](repeating: 1, count: myIds.count)
            let optimizer = AdamW(store: store, learningRate: 2e-5, epsilon: 1e-8, weightDecay: 0.01)
            model.onGradientsFinal = { buckets.ready($0) }
            for iteration in 0..<(warmup + iterations) {
                try communicator.barrier()
                let start = DispatchTime.now().uptimeNanoseconds
                store.zeroGradients()
                buckets.begin(scale: Float(shard.count) / Float(batch))
                if !shard.isEmpty {
                    let logits = try model.forward(inputIds: myIds, attentionMask: mask, batch: shard.count, length: seq, training: true)
                    model.backward(dLogits: BenchCommand.bceGradient(logits: logits, labels: Array(labels[shard])))
                }
                let waitStart = DispatchTime.now().uptimeNanoseconds
                let allreduceSeconds = try buckets.finish()
                let exposed = milliseconds(since: waitStart)
                optimizer.step()
                if iteration >= warmup {
                    timings.append(milliseconds(since: start))
                    allreduceTimes.append(allreduceSeconds * 1000)
                    exposedTimes.append(exposed)
                }
            }
            model.onGradientsFinal = nil
        }
        func median(_ values: [Double]) -> Double { Latency.median(values) }
        func rounded(_ value: Double) -> Double { (value * 100).rounded() / 100 }
        let gradientBytes = Double(store.count * MemoryLayout<Float>.size)
        let ranks = Double(communicator.size)
        let communicated = mode == .allreduce ? median(timings) : median(allreduceTimes)
        let busBandwidth = communicator.size > 1 ? 2 * (ranks - 1) / ranks * gradientBytes / (communicated / 1000) / 1e9 : 0
        let result = Result(mode: mode.rawValue, shape: shape.rawValue, engine: communicator.engine, cpu: BenchCommand.cpuModel(),
                            ranks: communicator.size, threads_per_rank: threads, params: store.count,
                            buckets_mb_limit: Int(allreduceBucketMB), gradient_mb: rounded(gradientBytes / 1e6),
                            batch: mode == .step ? batch : nil, seq: mode == .step ? seq : nil,
                            median_ms: rounded(median(timings)), min_ms: rounded(timings.min() ?? 0),
                            allreduce_ms: mode == .step ? rounded(median(allreduceTimes)) : nil,
                            exposed_ms: mode == .step ? rounded(median(exposedTimes)) : nil,
                            bus_gbps: rounded(busBandwidth), iterations: iterations)
        if communicator.isRoot {
            let json = JSONEncoder()
            json.outputFormatting = [.sortedKeys]
            print(String(decoding: try json.encode(result), as: UTF8.self))
        }
        communicator.close()
    }
}
