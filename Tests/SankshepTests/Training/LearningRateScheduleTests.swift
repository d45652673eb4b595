import Testing
@testable import Host

@Suite("Learning-rate schedules")
struct LearningRateScheduleTests {
    @Test("linear and cosine warm-up schedules give PyTorch's learning rate at every step of a run")
    func matchesHuggingFace() throws {
        let reference = try TrainingReference.load()
        #expect(reference.schedules.count == 4)
        for run in reference.schedules {
            let kind = try #require(LearningRateSchedule.Kind(rawValue: run.kind))
            let schedule = try LearningRateSchedule(kind: kind, warmupSteps: run.warmup, totalSteps: run.total)
            for (step, expected) in run.rates.enumerated() {
                let actual = schedule.learningRate(base: run.base, atStep: step)
                #expect(abs(actual - expected) <= 1e-12 * run.base, "\(run.kind) warm-up \(run.warmup), step \(step): \(actual) vs \(expected)")
            }
        }
    }

    @Test("warm-up from a ratio rounds down as the seed framework's int(ratio * total) does")
    func warmupRatioRoundsDown() throws {
        let schedule = try LearningRateSchedule(kind: .linear, warmupRatio: 0.1, totalSteps: 29)
        #expect(schedule.warmupSteps == 2)
        #expect(schedule.multiplier(atStep: 0) == 0)
        #expect(schedule.multiplier(atStep: 1) == 0.5)
        #expect(schedule.multiplier(atStep: 2) == 1)
        #expect(schedule.multiplier(atStep: 29) == 0)
    }

    @Test("impossible schedules are refused naming the option")
    func refusesImpossibleSchedules() {
        #expect(throws: TrainingError("learning-rate schedule: total steps must be positive, got 0")) {
            try LearningRateSchedule(kind: .cosine, warmupSteps: 0, totalSteps: 0)
        }
        #expect(throws: TrainingError("--warmup_ratio must lie in [0, 1], got 1.5")) {
            try LearningRateSchedule(kind: .linear, warmupRatio: 1.5, totalSteps: 10)
        }
    }
}
