import Foundation
import Testing
@testable import Host

/// `sankshep run` killed with SIGKILL inside each stage, or stopped by a write that fails, and
/// continued with `--resume`: the run ends with the summary of a run that was never interrupted
/// (every column but the timings), no temporary file left, and no partial file under a final name.
@Suite("Kill, fail and resume sankshep run", .serialized)
struct PipelineRunnerTests {
    /// A small slice, every stage, each stage a second or more so a kill lands inside it.
    static let arguments = [
        "--pipeline", "baseline_kd_prune_quant", "--data_path", Fixtures.bundledData.path, "--data_fraction", "0.03",
        "--num_folds", "2", "--epochs", "1", "--max_length", "48", "--fine_tune_epochs", "1", "--quant_method", "dynamic",
        "--prune_method", "magnitude", "--threads", "1", "--seed", "3",
    ]
    /// The log line that starts each stage after the baseline (the baseline starts with the process).
    static let stageStarts = ["stage 2/4: distill", "stage 3/4: prune_magnitude", "stage 4/4: quantize_dynamic"]

    /// One `sankshep run` child process, its standard error read line by line with arrival times.
    final class Run: @unchecked Sendable {
        let process = Process()
        private let lock = NSLock()
        private var lines: [(seconds: Double, text: String)] = []
        private let started = Date()
        private let done = DispatchSemaphore(value: 0)

        init(_ arguments: [String], wrapper: [String] = []) throws {
            let binary = ServerProcess.binary.path
            if wrapper.isEmpty {
                process.executableURL = URL(fileURLWithPath: binary)
                process.arguments = ["run"] + arguments
            } else {
                process.executableURL = URL(fileURLWithPath: "/bin/sh")
                process.arguments = ["-c", wrapper.joined(separator: "; ") + "; exec \"$0\" run \"$@\"", binary] + arguments
            }
            let errors = Pipe()
            process.standardError = errors
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            let handle = errors.fileHandleForReading
            Thread.detachNewThread { [self] in
                var pending = Data()
                while true {
                    let chunk = handle.availableData
                    if chunk.isEmpty { break }
                    pending.append(chunk)
                    while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                        let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                        pending.removeSubrange(pending.startIndex...newline)
                        lock.withLock { lines.append((Date().timeIntervalSince(started), line)) }
                    }
                }
                if !pending.isEmpty { lock.withLock { lines.append((Date().timeIntervalSince(started), String(decoding: pending, as: UTF8.self))) } }
                done.signal()
            }
        }

        var log: [(seconds: Double, text: String)] { lock.withLock { lines } }

        /// Seconds from the start to the first line containing `text`, waiting for it (nil: the run ended first).
        func wait(for text: String, timeout: Double = 600) -> Double? {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                if let line = log.first(where: { $0.text.contains(text) }) { return line.seconds }
                if !process.isRunning { return log.first(where: { $0.text.contains(text) })?.seconds }
                Thread.sleep(forTimeInterval: 0.01)
            }
            return nil
        }

        func killNow() { kill(process.processIdentifier, SIGKILL) }

        /// Waits for the process and its standard error to end; the exit status (or the signal).
        func finish() -> (status: Int32, reason: Process.TerminationReason) {
            process.waitUntilExit()
            done.wait()
            return (process.terminationStatus, process.terminationReason)
        }
    }

    /// The summary without its timing columns, one array of values per row.
    static func summaryWithoutTimings(_ folder: URL) throws -> [[String]] {
        // The model column holds quoted commas ("bert 2×64, dynamic"): read as the CSV it is.
        let table = try CSVTable(contentsOf: folder.appendingPathComponent("pipeline_summary_baseline_kd_prune_quant.csv"))
        let kept = table.header.indices.filter { !table.header[$0].hasPrefix("latency") }
        return [kept.map { table.header[$0] }] + table.records.map { record in kept.map { $0 < record.fields.count ? record.fields[$0] : "" } }
    }

    /// Temporary files and folders anywhere under `folder`.
    static func leftovers(_ folder: URL) -> [String] {
        let walker = FileManager.default.enumerator(atPath: folder.path)
        var found: [String] = []
        while let path = walker?.nextObject() as? String {
            let name = (path as NSString).lastPathComponent
            if name.contains(".tmp-") || name.contains(".partial-") { found.append(path) }
        }
        return found
    }

    /// Every file under a final name is complete: each safetensors and JSON file parses.
    static func expectCompleteFiles(_ folder: URL, sourceLocation: SourceLocation = #_sourceLocation) {
        let walker = FileManager.default.enumerator(atPath: folder.path)
        while let path = walker?.nextObject() as? String {
            let url = folder.appendingPathComponent(path)
            if path.hasSuffix(".safetensors") {
                #expect((try? SafeTensorsFile(contentsOf: url)) != nil, "\(path) is not a complete safetensors file", sourceLocation: sourceLocation)
            } else if path.hasSuffix(".json") {
                #expect((try? JSONValue.parse(Data(contentsOf: url))) != nil, "\(path) is not complete JSON", sourceLocation: sourceLocation)
            }
        }
    }

    /// The uninterrupted run every test compares with, made once.
    nonisolated(unsafe) static var reference: (summary: [[String]], stageSeconds: [Double])?

    static func referenceRun() throws -> (summary: [[String]], stageSeconds: [Double]) {
        if let reference { return reference }
        let folder = try Fixtures.temporaryFolder("reference")
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = try Run(arguments + ["--output_dir", folder.path, "--cache_dir", folder.appendingPathComponent("cache").path])
        let (status, _) = run.finish()
        guard status == 0 else { throw ServingTestFailure("the reference run failed: \(run.log.suffix(5).map(\.text))") }
        // When each stage started and ended (the next one's start, or the end of the log).
        let end = run.log.last?.seconds ?? 0
        let starts = [0.0] + stageStarts.map { marker in run.log.first { $0.text.contains(marker) }?.seconds ?? end }
        let result = (try summaryWithoutTimings(folder), starts)
        reference = result
        return result
    }

    @Test("SIGKILL at a random point inside each stage, then --resume, ends with the uninterrupted run's summary and no temporary file")
    func killInsideEachStage() throws {
        let reference = try Self.referenceRun()
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let arguments = Self.arguments + ["--output_dir", folder.path, "--cache_dir", folder.appendingPathComponent("cache").path]
        let starts = reference.stageSeconds
        var generator = SystemRandomNumberGenerator()
        for stage in 0..<4 {
            let run = try Run(arguments + (stage == 0 ? [] : ["--resume"]))
            // The stage's length in the uninterrupted run; the kill lands 10 %–60 % into it.
            let length = (stage + 1 < starts.count ? starts[stage + 1] : (starts.last ?? 0) + 1) - starts[stage]
            let fraction = Double.random(in: 0.1...0.6, using: &generator)
            let begin = stage == 0 ? 0 : run.wait(for: Self.stageStarts[stage - 1])
            let stageBegin = try #require(begin, "stage \(stage + 1) never started: \(run.log.suffix(3).map(\.text))")
            let elapsed = run.log.last?.seconds ?? stageBegin
            Thread.sleep(forTimeInterval: max(0, stageBegin + fraction * max(length, 0.2) - elapsed))
            run.killNow()
            let (_, reason) = run.finish()
            #expect(reason == .uncaughtSignal, "stage \(stage + 1): the run ended before the kill (at \(fraction) of \(length) s)")
        }
        let final = try Run(arguments + ["--resume"])
        let (status, _) = final.finish()
        #expect(status == 0, "the resumed run failed: \(final.log.suffix(5).map(\.text))")
        let summary = try Self.summaryWithoutTimings(folder)
        #expect(summary == reference.summary, "resumed \(summary) vs uninterrupted \(reference.summary)")
        #expect(Self.leftovers(folder).isEmpty, "left behind: \(Self.leftovers(folder))")
        Self.expectCompleteFiles(folder)
    }

    @Test("a write that fails (RLIMIT_FSIZE, the disk full) stops the run with one line, leaves no partial file, and --resume completes",
          arguments: [256, 4096])
    func failingWrite(kilobytes: Int) throws {
        let reference = try Self.referenceRun()
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let arguments = Self.arguments + ["--output_dir", folder.path, "--cache_dir", folder.appendingPathComponent("cache").path]
        // SIGXFSZ ignored, so the write that crosses the limit returns EFBIG as on a full disk.
        let limited = try Run(arguments, wrapper: ["trap '' XFSZ", "ulimit -f \(kilobytes * 2)"])
        let (status, reason) = limited.finish()
        #expect(reason == .exit && status != 0, "the run under a \(kilobytes) KB limit did not fail: \(status)")
        let errorLines = limited.log.filter { $0.text.hasPrefix("Error:") }
        #expect(errorLines.count == 1 && errorLines.first?.text.contains("File too large") == true,
                "expected one error line naming the failed write: \(limited.log.suffix(3).map(\.text))")
        #expect(Self.leftovers(folder).isEmpty, "left behind: \(Self.leftovers(folder))")
        Self.expectCompleteFiles(folder)
        let resumed = try Run(arguments + ["--resume"])
        #expect(resumed.finish().status == 0, "the resumed run failed: \(resumed.log.suffix(5).map(\.text))")
        let summary = try Self.summaryWithoutTimings(folder)
        #expect(summary == reference.summary, "resumed \(summary) vs uninterrupted \(reference.summary)")
        #expect(Self.leftovers(folder).isEmpty)
    }
}
