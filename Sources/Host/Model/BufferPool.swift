/// Activation buffers reused from one step to the next.
///
/// A step asks for its buffers in the same order every time (`rewind()`, then `take` per buffer);
/// slot i keeps its allocation and only grows when a later step needs more (a longer padded batch).
/// So a training loop allocates during its first steps and never again.
final class BufferPool<Element> {
    private var slots: [(pointer: UnsafeMutablePointer<Element>, capacity: Int)] = []
    private var nextSlot = 0

    /// Number of slots handed out since the last rewind: where a later phase (backward) may resume.
    var position: Int { nextSlot }

    /// Bytes held by the pool.
    var allocatedBytes: Int { slots.reduce(0) { $0 + $1.capacity } * MemoryLayout<Element>.stride }

    func rewind(to position: Int = 0) { nextSlot = position }

    /// A buffer of at least `count` elements holding whatever the previous step left there, or zeros
    /// when `zeroed`.
    func take(_ count: Int, zeroed: Bool = false) -> UnsafeMutablePointer<Element> where Element: Numeric {
        let needed = Swift.max(count, 1)
        if nextSlot == slots.count {
            slots.append((.allocate(capacity: needed), needed))
        } else if slots[nextSlot].capacity < needed {
            slots[nextSlot].pointer.deallocate()
            slots[nextSlot] = (.allocate(capacity: needed), needed)
        }
        let pointer = slots[nextSlot].pointer
        nextSlot += 1
        if zeroed { pointer.initialize(repeating: 0, count: count) }
        return pointer
    }

    deinit {
        for slot in slots { slot.pointer.deallocate() }
    }
}
