import Foundation

/// Where a long training job stands, as a progress line shows it.
struct ProgressState: Sendable, Equatable {
    /// What is being trained, e.g. "fold 2/5"; nil for none.
    var label: String?
    /// 1-based.
    var epoch: Int
    var epochs: Int
    /// Steps done in this epoch.
    var step: Int
    var stepsPerEpoch: Int
    /// Mean training loss over this epoch's steps so far; nil before the first step.
    var loss: Double?
    /// Real (non-padding) tokens per second in this epoch; nil before the first step.
    var tokensPerSecond: Double?
    /// Seconds until the last epoch ends at the pace so far; nil until there is a pace.
    var etaSeconds: Double?
}

/// The text of progress lines: pure functions, tested without a clock or a terminal.
enum ProgressFormat {
    /// `fold 2/5  epoch 3/15  step 120/410  loss 0.4213  8.3k tok/s  ETA 3m05s`
    static func line(_ state: ProgressState) -> String {
        var parts: [String] = []
        if let label = state.label { parts.append(label) }
        parts.append("epoch \(state.epoch)/\(state.epochs)")
        parts.append("step \(state.step)/\(state.stepsPerEpoch)")
        if let loss = state.loss { parts.append("loss " + String(format: "%.4f", loss)) }
        if let rate = state.tokensPerSecond { parts.append(tokenRate(rate)) }
        parts.append("ETA " + (state.etaSeconds.map(duration) ?? "--"))
        return parts.joined(separator: "  ")
    }

    /// `950 tok/s`, `8.3k tok/s`, `12k tok/s`, `1.2M tok/s`.
    static func tokenRate(_ perSecond: Double) -> String {
        switch perSecond {
        case ..<1_000: return "\(Int(perSecond.rounded())) tok/s"
        case ..<10_000: return String(format: "%.1fk tok/s", perSecond / 1_000)
        case ..<999_500: return "\(Int((perSecond / 1_000).rounded()))k tok/s"
        default: return String(format: "%.1fM tok/s", perSecond / 1_000_000)
        }
    }

    /// `42s`, `3m05s`, `1h02m` (whole seconds, rounded up so an almost-done job never shows 0s early).
    static func duration(_ seconds: Double) -> String {
        let total = max(0, Int(seconds.rounded(.up)))
        let hours = total / 3600, minutes = total % 3600 / 60, secs = total % 60
        if hours > 0 { return "\(hours)h" + String(format: "%02dm", minutes) }
        if minutes > 0 { return "\(minutes)m" + String(format: "%02ds", secs) }
        return "\(secs)s"
    }

    /// Remaining time at the average pace so far: `elapsed / done · (total − done)`. The elapsed time
    /// includes the validation passes between epochs, so they are priced in. nil before any step.
    static func eta(stepsDone: Int, stepsTotal: Int, elapsed: Double) -> Double? {
        guard stepsDone > 0, elapsed > 0 else { return nil }
        return elapsed / Double(stepsDone) * Double(max(0, stepsTotal - stepsDone))
    }
}

/// Reports training progress on standard error.
///
/// On a terminal it keeps one line up to date in place (`\r`, redrawn at most every `redrawInterval`
/// seconds); in a log file or CI it prints a plain line every `logInterval` seconds and one at the end
/// of every epoch, so a log stays short and still shows that the job is alive. The clock and the output
/// are injected, so tests drive it with a fake clock.
final class ProgressReporter {
    private let label: String?
    private let epochs: Int
    private let stepsPerEpoch: Int
    private let isTerminal: Bool
    private let logInterval: Double
    private let redrawInterval: Double
    private let now: () -> Double
    private let write: (String) -> Void

    private let startTime: Double
    /// Steps counted from `startTime` (a resumed job starts later than epoch 1 step 0).
    private var stepsSinceStart = 0
    private var firstGlobalStep = 0
    private var epoch = 1
    private var step = 0
    private var epochStart: Double
    private var lossSum = 0.0
    private var tokens = 0
    private var lastOutput: Double
    private var lineOpen = false

    init(label: String? = nil, epochs: Int, stepsPerEpoch: Int,
         isTerminal: Bool = isatty(STDERR_FILENO) != 0, logInterval: Double = 10, redrawInterval: Double = 0.2,
         now: @escaping () -> Double = ProgressReporter.monotonicSeconds,
         write: @escaping (String) -> Void = ProgressReporter.writeToStandardError) {
        self.label = label
        self.epochs = epochs
        self.stepsPerEpoch = stepsPerEpoch
        self.isTerminal = isTerminal
        self.logInterval = logInterval
        self.redrawInterval = redrawInterval
        self.now = now
        self.write = write
        startTime = now()
        epochStart = startTime
        lastOutput = startTime
    }

    /// Begins epoch `epoch` (1-based). A job resumed in epoch 4 calls this with 4 first; the ETA then
    /// counts only the remaining epochs.
    func startEpoch(_ epoch: Int) {
        self.epoch = epoch
        step = 0
        lossSum = 0
        tokens = 0
        epochStart = now()
        if stepsSinceStart == 0 { firstGlobalStep = (epoch - 1) * stepsPerEpoch }
    }

    /// One optimiser step done, with its loss and the real tokens in its batch.
    func step(loss: Double, tokens: Int) {
        step += 1
        stepsSinceStart += 1
        lossSum += loss
        self.tokens += tokens
        let time = now()
        if isTerminal {
            if time - lastOutput >= redrawInterval || step == stepsPerEpoch { redraw(at: time) }
        } else if time - lastOutput >= logInterval {
            write(ProgressFormat.line(state(at: time)) + "\n")
            lastOutput = time
        }
    }

    /// The epoch's training is over: leaves its final line in place (terminal) or prints it (log).
    func endEpoch() {
        let time = now()
        if isTerminal {
            redraw(at: time)
            write("\n")
            lineOpen = false
        } else {
            write(ProgressFormat.line(state(at: time)) + "\n")
        }
        lastOutput = time
    }

    /// A message of its own (validation results, early stopping) that does not garble the live line.
    func note(_ message: String) {
        if isTerminal && lineOpen {
            write("\r\u{1B}[K")
            lineOpen = false
        }
        write(message + "\n")
    }

    /// The state the next line would show.
    func state(at time: Double) -> ProgressState {
        let epochElapsed = time - epochStart
        let totalSteps = epochs * stepsPerEpoch - firstGlobalStep
        return ProgressState(
            label: label, epoch: epoch, epochs: epochs, step: step, stepsPerEpoch: stepsPerEpoch,
            loss: step > 0 ? lossSum / Double(step) : nil,
            tokensPerSecond: step > 0 && epochElapsed > 0 ? Double(tokens) / epochElapsed : nil,
            etaSeconds: ProgressFormat.eta(stepsDone: stepsSinceStart, stepsTotal: totalSteps, elapsed: time - startTime))
    }

    private func redraw(at time: Double) {
        // \r returns to the line start, ESC[K clears what a longer previous line left behind.
        write("\r" + ProgressFormat.line(state(at: time)) + "\u{1B}[K")
        lineOpen = true
        lastOutput = time
    }

    static func monotonicSeconds() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    static func writeToStandardError(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }
}
