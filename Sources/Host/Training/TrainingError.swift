/// A problem with training state or options that a user can cause (a checkpoint from another model,
/// an impossible schedule). The description is one line naming what is wrong.
struct TrainingError: Error, CustomStringConvertible, Equatable {
    let description: String
    init(_ description: String) { self.description = description }
}
