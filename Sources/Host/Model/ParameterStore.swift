/// All parameters of a model in one allocation, gradients in a second one of the same layout
/// (llm.c's habit): the optimizer, gradient clipping and checkpoint I/O walk one flat buffer, and
/// each layer reads its weights through a named view.
///
/// Names are Hugging Face state-dict names (`bert.encoder.layer.0.attention.self.query.weight`), so
/// loading and saving a checkpoint is a name lookup.
final class ParameterStore: @unchecked Sendable {
    struct View: Sendable {
        let name: String
        let shape: [Int]
        /// Offset of the first scalar in `values` and `gradients`.
        let offset: Int
        var count: Int { shape.reduce(1, *) }
        var range: Range<Int> { offset..<(offset + count) }
    }

    /// Views in layout order.
    let views: [View]
    /// Total number of scalars.
    let count: Int
    let values: UnsafeMutablePointer<Float>
    let gradients: UnsafeMutablePointer<Float>
    /// Views whose parameters the optimizer leaves alone (`--freeze_base`). Their gradients are still
    /// computed where the backward pass needs them, but never applied.
    var frozen: Set<String> = []
    private let indexByName: [String: Int]

    init(layout: [(name: String, shape: [Int])]) {
        var views: [View] = []
        var offset = 0
        for (name, shape) in layout {
            views.append(View(name: name, shape: shape, offset: offset))
            offset += shape.reduce(1, *)
        }
        self.views = views
        self.count = offset
        self.values = .allocate(capacity: max(offset, 1))
        self.values.initialize(repeating: 0, count: max(offset, 1))
        self.gradients = .allocate(capacity: max(offset, 1))
        self.gradients.initialize(repeating: 0, count: max(offset, 1))
        self.indexByName = Dictionary(uniqueKeysWithValues: views.enumerated().map { ($1.name, $0) })
    }

    deinit {
        values.deallocate()
        gradients.deallocate()
    }

    func view(named name: String) -> View? { indexByName[name].map { views[$0] } }

    /// Pointer to the first value of a view; fatal if the name is not in the layout (a programming error).
    func pointer(_ name: String) -> UnsafeMutablePointer<Float> {
        guard let view = view(named: name) else { fatalError("ParameterStore: no parameter named \(name)") }
        return values + view.offset
    }

    func gradientPointer(_ name: String) -> UnsafeMutablePointer<Float> {
        guard let view = view(named: name) else { fatalError("ParameterStore: no parameter named \(name)") }
        return gradients + view.offset
    }

    func tensor(_ name: String) -> Tensor {
        guard let view = view(named: name) else { fatalError("ParameterStore: no parameter named \(name)") }
        return Tensor(shape: view.shape, scalars: Array(UnsafeBufferPointer(start: values + view.offset, count: view.count)))
    }

    func gradientTensor(_ name: String) -> Tensor {
        guard let view = view(named: name) else { fatalError("ParameterStore: no parameter named \(name)") }
        return Tensor(shape: view.shape, scalars: Array(UnsafeBufferPointer(start: gradients + view.offset, count: view.count)))
    }

    func setValues(_ name: String, from tensor: Tensor) {
        guard let view = view(named: name) else { fatalError("ParameterStore: no parameter named \(name)") }
        precondition(view.shape == tensor.shape, "ParameterStore: \(name) has shape \(view.shape), got \(tensor.shape)")
        tensor.scalars.withUnsafeBufferPointer { (values + view.offset).update(from: $0.baseAddress!, count: view.count) }
    }

    /// The first parameter holding an inf or NaN, with that value: weights read from a file are
    /// checked with it, since one such value turns every probability into 1 or NaN.
    func firstNonFinite() -> (name: String, value: Float)? {
        for view in views {
            for index in view.range where !values[index].isFinite { return (view.name, values[index]) }
        }
        return nil
    }

    func zeroGradients() {
        gradients.update(repeating: 0, count: count)
    }
}
