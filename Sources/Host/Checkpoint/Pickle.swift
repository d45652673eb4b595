import Foundation

/// A value on the stack of the restricted pickle machine.
///
/// Lists and dicts are classes because pickle gives them identity: a dict is memoised (BINPUT) and
/// then filled (SETITEMS), and every later BINGET must see the filled dict.
enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case bytes(Data)
    case tuple([PickleValue])
    case list(PickleList)
    case dict(PickleDict)
    /// A global the caller's policy allowed (`collections.OrderedDict`, ...), not yet called.
    case global(module: String, name: String)
    /// A torch storage named by a persistent id; its bytes are read only when a tensor needs them.
    case storage(TorchStorageReference)
    /// A tensor as a view into a storage, materialised once the whole pickle has been read
    /// (the legacy format stores the storages after the pickle).
    case tensor(TorchTensorView)

    /// What a value is, for error messages.
    var kind: String {
        switch self {
        case .none: "None"
        case .bool: "a bool"
        case .int: "an int"
        case .float: "a float"
        case .string: "a string"
        case .bytes: "bytes"
        case .tuple: "a tuple"
        case .list: "a list"
        case .dict: "a dict"
        case .global(let module, let name): "\(module).\(name)"
        case .storage: "a storage"
        case .tensor: "a tensor"
        }
    }
}

final class PickleList {
    var items: [PickleValue] = []
    /// Containers inside it plus one (see `PickleMachine.maximumDepth`).
    var depth = 1
    /// Put inside another container: from then on it may not be filled (which is what rules out cycles).
    var isNested = false
}

/// An insertion-ordered dict, as Python's: SETITEM on an existing key replaces the value in place.
final class PickleDict {
    enum Key: Hashable, CustomStringConvertible {
        case none, bool(Bool), int(Int), string(String)
        var description: String {
            switch self {
            case .none: "None"
            case .bool(let value): "\(value)"
            case .int(let value): "\(value)"
            case .string(let value): value
            }
        }
    }

    private(set) var keys: [Key] = []
    private(set) var values: [PickleValue] = []
    private var index: [Key: Int] = [:]
    /// As PickleList's.
    var depth = 1
    var isNested = false

    func set(_ key: Key, _ value: PickleValue) {
        if let position = index[key] {
            values[position] = value
        } else {
            index[key] = keys.count
            keys.append(key)
            values.append(value)
        }
    }

    subscript(key: Key) -> PickleValue? { index[key].map { values[$0] } }
}

/// A pickle virtual machine that understands only what `torch.save(state_dict)` writes: containers,
/// numbers, strings, memo, persistent ids and REDUCE of globals. It never imports or calls anything
/// by itself: every GLOBAL goes through `resolveGlobal` (which refuses what it does not know), every
/// REDUCE through `call`, every persistent id through `persistentLoad`. Unknown opcodes are refused.
///
/// What it builds is bounded: containers nest at most `maximumDepth` deep, and a list or dict is
/// filled only before it is put inside another container, so no value can contain itself. (A state
/// dict nests about five deep and is always pickled that way; a hostile file that nests 100,000 deep
/// or refers to itself would otherwise overflow the stack of whatever walks or frees the value.)
struct PickleMachine {
    static let maximumDepth = 100

    /// For error messages: the file (and member) being read.
    let file: String
    let resolveGlobal: (_ module: String, _ name: String) throws -> PickleValue
    let persistentLoad: (_ id: PickleValue) throws -> PickleValue
    let call: (_ callable: PickleValue, _ arguments: [PickleValue]) throws -> PickleValue

    private enum Opcode: UInt8 {
        case proto = 0x80, frame = 0x95, stop = 0x2E                       // \x80 \x95 .
        case mark = 0x28, pop = 0x30, popMark = 0x31, dup = 0x32            // ( 0 1 2
        case none = 0x4E, newTrue = 0x88, newFalse = 0x89                   // N
        case binInt = 0x4A, binInt1 = 0x4B, binInt2 = 0x4D, long1 = 0x8A    // J K M
        case binFloat = 0x47                                                // G
        case binUnicode = 0x58, shortBinUnicode = 0x8C, binUnicode8 = 0x8D  // X
        case binBytes = 0x42, shortBinBytes = 0x43                          // B C
        case emptyTuple = 0x29, tuple = 0x74, tuple1 = 0x85, tuple2 = 0x86, tuple3 = 0x87  // ) t
        case emptyList = 0x5D, append = 0x61, appends = 0x65, list = 0x6C   // ] a e l
        case emptyDict = 0x7D, dict = 0x64, setItem = 0x73, setItems = 0x75 // } d s u
        case global = 0x63, stackGlobal = 0x93                              // c
        case binPersId = 0x51, reduce = 0x52, build = 0x62                  // Q R b
        case binPut = 0x71, longBinPut = 0x72, memoize = 0x94               // q r
        case binGet = 0x68, longBinGet = 0x6A                               // h j
    }

    /// Runs the pickle that starts at byte `start` of `data`; returns its value and the offset just
    /// after its STOP (files may hold several pickles back to back).
    func run(_ data: Data, from start: Int = 0) throws -> (value: PickleValue, end: Int) {
        let data = data.startIndex == 0 ? data : Data(data)
        return try data.withUnsafeBytes { try run(bytes: $0, from: start) }
    }

    private func run(bytes: UnsafeRawBufferPointer, from start: Int) throws -> (value: PickleValue, end: Int) {
        var position = start
        /// Each value with the depth of the containers in it (0 for a number or a string).
        struct Item { var value: PickleValue; var depth: Int }
        var stack: [Item] = []
        var marks: [Int] = []
        var memo: [Int: Item] = [:]

        func fail(_ problem: String) -> CheckpointError {
            CheckpointError(file: file, problem: "pickle byte \(position): \(problem)")
        }
        func read(_ count: Int) throws -> Slice<UnsafeRawBufferPointer> {
            guard count >= 0, count <= bytes.count - position else { throw fail("truncated (needs \(count) more bytes)") }
            defer { position += count }
            return bytes[position..<(position + count)]
        }
        func readUInt(_ count: Int) throws -> UInt64 {
            try read(count).reversed().reduce(0) { $0 << 8 | UInt64($1) }   // little-endian
        }
        func readLine() throws -> String {
            guard let newline = bytes[position...].firstIndex(of: 0x0A) else { throw fail("truncated GLOBAL name") }
            defer { position = newline + 1 }
            return String(decoding: bytes[position..<newline], as: UTF8.self)
        }
        func readString(_ count: UInt64) throws -> String {
            guard count <= UInt64(bytes.count - position) else { throw fail("string of \(count) bytes runs past the end") }
            guard let text = String(validating: try read(Int(count)), as: UTF8.self) else { throw fail("string is not UTF-8") }
            return text
        }
        /// A list's or dict's depth is its own (it grows while it is filled); a tuple's is fixed.
        func depth(_ item: Item) -> Int {
            switch item.value {
            case .list(let list): list.depth
            case .dict(let dict): dict.depth
            default: item.depth
            }
        }
        func push(_ value: PickleValue, depth: Int = 0) throws {
            guard depth <= Self.maximumDepth else { throw fail("containers nest deeper than \(Self.maximumDepth); a state dict nests a few levels") }
            stack.append(Item(value: value, depth: depth))
        }
        /// A container holding `children`: they are nested from now on, and it is one deeper than the deepest.
        func nest(_ children: [Item]) -> Int {
            var deepest = 0
            for child in children {
                deepest = max(deepest, depth(child))
                switch child.value {
                case .list(let list): list.isNested = true
                case .dict(let dict): dict.isNested = true
                default: break
                }
            }
            return deepest + 1
        }
        func pop() throws -> Item {
            guard let value = stack.popLast() else { throw fail("stack underflow") }
            if let mark = marks.last, stack.count < mark { throw fail("stack underflow past a MARK") }
            return value
        }
        func popToMark() throws -> [Item] {
            guard let mark = marks.popLast() else { throw fail("no MARK on the stack") }
            defer { stack.removeSubrange(mark...) }
            return Array(stack[mark...])
        }
        func top() throws -> Item {
            guard let value = stack.last else { throw fail("stack underflow") }
            return value
        }
        func key(_ value: PickleValue) throws -> PickleDict.Key {
            switch value {
            case .none: return .none
            case .bool(let value): return .bool(value)
            case .int(let value): return .int(value)
            case .string(let value): return .string(value)
            default: throw fail("dict key is \(value.kind); a state dict only has string keys")
            }
        }
        func isSameContainer(_ item: Item, _ target: PickleValue) -> Bool {
            switch (item.value, target) {
            case (.list(let a), .list(let b)): a === b
            case (.dict(let a), .dict(let b)): a === b
            default: false
            }
        }
        func fill(_ target: Item, with children: [Item], operation: String) throws {
            if children.contains(where: { isSameContainer($0, target.value) }) { throw fail("\(operation) puts a container inside itself") }
            let isNested = switch target.value {
            case .list(let list): list.isNested
            case .dict(let dict): dict.isNested
            default: false
            }
            guard !isNested else { throw fail("\(operation) fills a container already inside another one; a state dict never does") }
            let childDepth = nest(children)
            guard childDepth <= Self.maximumDepth else { throw fail("containers nest deeper than \(Self.maximumDepth); a state dict nests a few levels") }
            switch target.value {
            case .list(let list): list.depth = max(list.depth, childDepth)
            case .dict(let dict): dict.depth = max(dict.depth, childDepth)
            default: break
            }
        }
        func setItems(_ pairs: [Item], into target: Item) throws {
            guard case .dict(let dict) = target.value else { throw fail("SETITEM on \(target.value.kind), not a dict") }
            guard pairs.count % 2 == 0 else { throw fail("SETITEMS with an odd number of values") }
            try fill(target, with: pairs, operation: "SETITEMS")
            for i in stride(from: 0, to: pairs.count, by: 2) { dict.set(try key(pairs[i].value), pairs[i + 1].value) }
        }
        func appendItems(_ items: [Item], to target: Item) throws {
            guard case .list(let list) = target.value else { throw fail("APPEND on \(target.value.kind), not a list") }
            try fill(target, with: items, operation: "APPEND")
            list.items.append(contentsOf: items.map(\.value))
        }
        func memoGet(_ index: Int) throws -> Item {
            guard let value = memo[index] else { throw fail("memo entry \(index) was never stored") }
            return value
        }

        while true {
            let opcodePosition = position
            guard position < bytes.count else { throw fail("truncated: no STOP opcode") }
            let byte = bytes[position]
            position += 1
            guard let opcode = Opcode(rawValue: byte) else {
                position = opcodePosition
                throw fail("opcode 0x\(String(byte, radix: 16)) is not one a state dict uses; refusing to interpret it")
            }
            switch opcode {
            case .proto:
                let version = try readUInt(1)
                guard version <= 5 else { throw fail("pickle protocol \(version) is newer than 5") }
            case .frame:
                _ = try readUInt(8)   // framing is only a read-ahead hint
            case .stop:
                let result = try pop()
                guard stack.isEmpty, marks.isEmpty else { throw fail("STOP with values left on the stack") }
                return (result.value, position)
            case .mark:
                marks.append(stack.count)
            case .pop:
                _ = try pop()
            case .popMark:
                _ = try popToMark()
            case .dup:
                stack.append(try top())
            case .none:
                try push(.none)
            case .newTrue:
                try push(.bool(true))
            case .newFalse:
                try push(.bool(false))
            case .binInt:
                try push(.int(Int(Int32(truncatingIfNeeded: try readUInt(4)))))
            case .binInt1:
                try push(.int(Int(try readUInt(1))))
            case .binInt2:
                try push(.int(Int(try readUInt(2))))
            case .long1:
                // Two's-complement little-endian integer of n bytes; sizes and offsets fit in 8.
                let count = Int(try readUInt(1))
                guard count <= 8 else { throw fail("integer of \(count) bytes is too large") }
                let raw = try readUInt(count)
                let shift = UInt64(64 - 8 * count)
                try push(.int(count == 0 ? 0 : Int(Int64(bitPattern: raw << shift) >> Int64(shift))))
            case .binFloat:
                let raw = try read(8).reduce(0) { $0 << 8 | UInt64($1) }   // big-endian
                try push(.float(Double(bitPattern: raw)))
            case .binUnicode:
                try push(.string(try readString(try readUInt(4))))
            case .shortBinUnicode:
                try push(.string(try readString(try readUInt(1))))
            case .binUnicode8:
                try push(.string(try readString(try readUInt(8))))
            case .binBytes:
                let count = try readUInt(4)
                try push(.bytes(Data(try read(Int(count)))))
            case .shortBinBytes:
                try push(.bytes(Data(try read(Int(try readUInt(1))))))
            case .emptyTuple:
                try push(.tuple([]), depth: 1)
            case .tuple:
                let items = try popToMark()
                try push(.tuple(items.map(\.value)), depth: nest(items))
            case .tuple1:
                let a = try pop()
                try push(.tuple([a.value]), depth: nest([a]))
            case .tuple2:
                let b = try pop(), a = try pop()
                try push(.tuple([a.value, b.value]), depth: nest([a, b]))
            case .tuple3:
                let c = try pop(), b = try pop(), a = try pop()
                try push(.tuple([a.value, b.value, c.value]), depth: nest([a, b, c]))
            case .emptyList:
                try push(.list(PickleList()), depth: 1)
            case .list:
                let list = PickleList()
                let items = try popToMark()
                list.depth = nest(items)
                list.items = items.map(\.value)
                try push(.list(list), depth: list.depth)
            case .append:
                let item = try pop()
                try appendItems([item], to: try top())
            case .appends:
                let items = try popToMark()
                try appendItems(items, to: try top())
            case .emptyDict:
                try push(.dict(PickleDict()), depth: 1)
            case .dict:
                let dict = Item(value: .dict(PickleDict()), depth: 1)
                try setItems(try popToMark(), into: dict)
                try push(dict.value, depth: depth(dict))
            case .setItem:
                let value = try pop(), key = try pop()
                try setItems([key, value], into: try top())
            case .setItems:
                let pairs = try popToMark()
                try setItems(pairs, into: try top())
            case .global:
                let module = try readLine(), name = try readLine()
                try push(try resolveGlobal(module, name))
            case .stackGlobal:
                let name = try pop(), module = try pop()
                guard case .string(let moduleName) = module.value, case .string(let globalName) = name.value else {
                    throw fail("STACK_GLOBAL needs two strings")
                }
                try push(try resolveGlobal(moduleName, globalName))
            case .binPersId:
                let id = try pop()
                try push(try persistentLoad(id.value), depth: id.depth)
            case .reduce:
                let arguments = try pop(), callable = try pop()
                guard case .tuple(let items) = arguments.value else { throw fail("REDUCE arguments are \(arguments.value.kind), not a tuple") }
                // What a call builds holds at most its arguments, so it is no deeper than they are.
                try push(try call(callable.value, items), depth: depth(arguments))
            case .build:
                // OrderedDict.__reduce__ carries instance attributes (`_metadata`, the module versions)
                // as BUILD state; they do not change the tensors, so the state is dropped.
                _ = try pop()
                let target = try top()
                guard case .dict = target.value else { throw fail("BUILD on \(target.value.kind); only a state dict's attributes are accepted") }
            case .binPut:
                memo[Int(try readUInt(1))] = try top()
            case .longBinPut:
                memo[Int(try readUInt(4))] = try top()
            case .memoize:
                memo[memo.count] = try top()
            case .binGet:
                stack.append(try memoGet(Int(try readUInt(1))))
            case .longBinGet:
                stack.append(try memoGet(Int(try readUInt(4))))
            }
        }
    }
}
