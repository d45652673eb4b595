/// A dense float32 tensor in row-major order: the currency between checkpoint files and the model.
///
/// The model keeps its parameters in one flat buffer (see `Model/`); a `Tensor` is what a file
/// reader returns and a writer takes, so loading and saving are a name lookup plus a copy.
struct Tensor: Equatable, Sendable {
    var shape: [Int]
    var scalars: [Float]

    init(shape: [Int], scalars: [Float]) {
        precondition(shape.reduce(1, *) == scalars.count, "Tensor: shape \(shape) needs \(shape.reduce(1, *)) scalars, got \(scalars.count)")
        self.shape = shape
        self.scalars = scalars
    }

    init(zeros shape: [Int]) {
        self.init(shape: shape, scalars: [Float](repeating: 0, count: shape.reduce(1, *)))
    }

    var count: Int { scalars.count }
}
