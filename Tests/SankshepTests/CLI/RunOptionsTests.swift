import ArgumentParser
import Foundation
import Testing
@testable import Host

/// Every numeric option of every command, with values no run can use: each is refused in one line
/// naming the option, before anything is read or allocated.
@Suite("Command-line options are range-checked where they are declared")
struct RunOptionsTests {
    static let integerValues = ["-1", "9223372036854775807", "-9223372036854775808", "9223372036854775808"]
    static let floatValues = ["nan", "inf", "-inf", "1e300", "-1e300"]

    /// Each command's numeric options, and the arguments it needs besides them.
    static let commands: [(command: any ParsableCommand.Type, required: [String], integers: [String], floats: [String])] = [
        (RunCommand.self, [],
         ["--batch", "--epochs", "--num_folds", "--seed", "--early_stopping_patience", "--threads", "--max_length",
          "--student_hidden_size", "--prune_start_epoch", "--prune_end_epoch", "--prune_frequency", "--calib_samples",
          "--fine_tune_epochs", "--quant_calibration_batches"],
         ["--lr", "--dropout", "--weight_decay", "--warmup_ratio", "--gradient_clip_norm", "--focal_gamma", "--focal_alpha",
          "--data_fraction", "--kd_alpha", "--kd_temperature", "--hidden_loss_weight", "--attention_loss_weight",
          "--prune_sparsity"]),
        (PredictCommand.self, ["--model", "m", "--text", "t"], ["--batch", "--threads", "--max_length"], ["--threshold"]),
        (EvalCommand.self, ["--model", "m"], ["--batch", "--threads", "--max_length", "--seed"], ["--data_fraction"]),
        (ServeCommand.self, ["--model", "m"],
         ["--port", "--max-batch", "--max-wait-ms", "--max-queue", "--max-texts", "--max-body-bytes", "--read-timeout-s",
          "--max_length", "--threads"], ["--threshold"]),
        (BenchCommand.self, [], ["--batch", "--seq", "--threads", "--warmup", "--iterations", "--intermediate_size", "--kept_heads"], []),
        (TokenizeCommand.self, ["--tokenizer", "t"], ["--max_length"], []),
    ]

    @Test("an impossible number for any numeric option is refused in one line naming the option")
    func numericSweep() {
        var checked = 0
        for entry in Self.commands {
            for (options, values) in [(entry.integers, Self.integerValues), (entry.floats, Self.floatValues)] {
                for option in options {
                    for value in values {
                        let arguments = entry.required + ["\(option)=\(value)"]
                        do {
                            _ = try entry.command.parse(arguments)
                            Issue.record("\(entry.command._commandName) \(option) \(value) was accepted")
                        } catch {
                            let message = entry.command.message(for: error)
                            #expect(!message.contains("\n"), "\(option) \(value): \(message)")
                            #expect(message.contains(option), "\(option) \(value): \(message)")
                        }
                        checked += 1
                    }
                }
            }
        }
        #expect(checked > 150)
    }

    @Test("the issue's two numbers: --quant_calibration_batches 2⁶³−1 and --kd_temperature 1e300")
    func issueNumbers() {
        for (option, value, expected) in [("--quant_calibration_batches", "9223372036854775807", "must be at most 1000000"),
                                          ("--kd_temperature", "1e300", "must be in (0, 1000]")] {
            do {
                _ = try RunCommand.parse([option, value])
                Issue.record("\(option) \(value) was accepted")
            } catch {
                let message = RunCommand.message(for: error)
                #expect(message == "\(option) \(expected), got \(value == "1e300" ? "1e+300" : value)", "\(message)")
            }
        }
    }

    @Test("ordinary values of the same options still parse")
    func ordinaryValuesParse() throws {
        _ = try RunCommand.parse(["--batch", "16", "--seed", "0", "--kd_temperature", "4", "--quant_calibration_batches", "100",
                                  "--gradient_clip_norm", "1.0", "--threads", "2", "--tag", "my-run_1.2"])
        _ = try PredictCommand.parse(["--model", "m", "--text", "t", "--batch", "64", "--threshold", "0.5"])
    }

    @Test("--tag outside a file-name-safe alphabet is refused: it could make folders or write above --output_dir",
          arguments: ["a/b", "..", ".", "", "x y", "../up", "tag\u{0}", "নাম"])
    func unsafeTag(tag: String) {
        do {
            _ = try RunCommand.parse(["--tag", tag])
            Issue.record("--tag '\(tag)' was accepted")
        } catch {
            let message = RunCommand.message(for: error)
            #expect(!message.contains("\n"), "\(message)")
            #expect(message.contains("--tag") && message.contains("letters, digits"), "\(message)")
        }
    }
}
