import Testing
@testable import Host

@Suite("Training progress lines")
struct ProgressTests {
    /// A clock the test moves by hand, and everything the reporter wrote.
    private final class Harness {
        var time = 1000.0
        var output: [String] = []
        func reporter(terminal: Bool, epochs: Int = 2, steps: Int = 100) -> ProgressReporter {
            ProgressReporter(label: "fold 1/5", epochs: epochs, stepsPerEpoch: steps, isTerminal: terminal, logInterval: 10,
                             redrawInterval: 0.2, now: { self.time }, write: { self.output.append($0) })
        }
    }

    @Test("a line shows label, epoch, step, mean loss, tokens per second and ETA")
    func lineFormat() {
        let state = ProgressState(label: "fold 2/5", epoch: 3, epochs: 15, step: 120, stepsPerEpoch: 410,
                                  loss: 0.42127, tokensPerSecond: 8_312, etaSeconds: 185)
        #expect(ProgressFormat.line(state) == "fold 2/5  epoch 3/15  step 120/410  loss 0.4213  8.3k tok/s  ETA 3m05s")
        let first = ProgressState(label: nil, epoch: 1, epochs: 1, step: 0, stepsPerEpoch: 10, loss: nil, tokensPerSecond: nil, etaSeconds: nil)
        #expect(ProgressFormat.line(first) == "epoch 1/1  step 0/10  ETA --")
    }

    @Test("durations read as seconds, minutes or hours, rounded up")
    func durations() {
        #expect(ProgressFormat.duration(0) == "0s")
        #expect(ProgressFormat.duration(41.2) == "42s")
        #expect(ProgressFormat.duration(185) == "3m05s")
        #expect(ProgressFormat.duration(3_725) == "1h02m")
        #expect(ProgressFormat.duration(-3) == "0s")
    }

    @Test("token rates scale from tok/s to k and M")
    func rates() {
        #expect(ProgressFormat.tokenRate(950) == "950 tok/s")
        #expect(ProgressFormat.tokenRate(8_312) == "8.3k tok/s")
        #expect(ProgressFormat.tokenRate(12_400) == "12k tok/s")
        #expect(ProgressFormat.tokenRate(1_234_000) == "1.2M tok/s")
    }

    @Test("the ETA is the average pace so far times the steps left")
    func eta() {
        #expect(ProgressFormat.eta(stepsDone: 50, stepsTotal: 200, elapsed: 25) == 75)
        #expect(ProgressFormat.eta(stepsDone: 0, stepsTotal: 200, elapsed: 25) == nil)
        #expect(ProgressFormat.eta(stepsDone: 200, stepsTotal: 200, elapsed: 25) == 0)
    }

    @Test("off a terminal a plain line is printed every 10 seconds and at each epoch's end")
    func logMode() {
        let h = Harness()
        let reporter = h.reporter(terminal: false)
        reporter.startEpoch(1)
        for _ in 0..<100 {          // 100 steps, 0.5 s each: lines at 10 s, 20 s, … 50 s
            h.time += 0.5
            reporter.step(loss: 0.5, tokens: 320)
        }
        reporter.endEpoch()
        #expect(h.output.count == 6)
        #expect(h.output.allSatisfy { $0.hasSuffix("\n") && !$0.contains("\r") })
        #expect(h.output[0] == "fold 1/5  epoch 1/2  step 20/100  loss 0.5000  640 tok/s  ETA 1m30s\n")
        #expect(h.output[5] == "fold 1/5  epoch 1/2  step 100/100  loss 0.5000  640 tok/s  ETA 50s\n")
    }

    @Test("on a terminal one line is redrawn in place and closed with a newline at the epoch's end")
    func terminalMode() {
        let h = Harness()
        let reporter = h.reporter(terminal: true, epochs: 1, steps: 4)
        reporter.startEpoch(1)
        h.time += 0.1; reporter.step(loss: 1.0, tokens: 100)      // too soon to redraw
        h.time += 0.2; reporter.step(loss: 0.5, tokens: 100)      // redraw
        h.time += 0.2; reporter.note("validation macro-F1 0.81")  // clears the live line first
        h.time += 0.2; reporter.step(loss: 0.5, tokens: 100)
        h.time += 0.1; reporter.step(loss: 0.0, tokens: 100)      // last step of the epoch: always drawn
        reporter.endEpoch()
        #expect(h.output[0] == "\rfold 1/5  epoch 1/1  step 2/4  loss 0.7500  667 tok/s  ETA 1s\u{1B}[K")
        #expect(h.output[1] == "\r\u{1B}[K")
        #expect(h.output[2] == "validation macro-F1 0.81\n")
        #expect(h.output[3].hasPrefix("\rfold 1/5  epoch 1/1  step 3/4"))
        #expect(h.output[4].hasPrefix("\rfold 1/5  epoch 1/1  step 4/4  loss 0.5000"))
        #expect(h.output.last == "\n")
    }

    @Test("a job resumed in a later epoch counts only the steps it still has to do")
    func resumed() {
        let h = Harness()
        let reporter = h.reporter(terminal: false, epochs: 4, steps: 10)
        reporter.startEpoch(3)                    // 20 steps left in all
        for _ in 0..<5 { h.time += 1; reporter.step(loss: 0.1, tokens: 10) }
        #expect(reporter.state(at: h.time).etaSeconds == 15)
    }
}
