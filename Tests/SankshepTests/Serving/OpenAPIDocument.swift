import Foundation
import Yams
@testable import Host

/// docs/openapi.yaml, and a check of a JSON answer against the schema it gives a route's status:
/// the subset of JSON Schema the document uses ($ref, type, required, properties, items, enum,
/// minimum, maximum, minItems, oneOf).
struct OpenAPIDocument {
    let root: [String: Any]

    static func load() throws -> OpenAPIDocument {
        let url = Fixtures.repositoryRoot.appendingPathComponent("docs/openapi.yaml")
        guard let root = try Yams.load(yaml: String(contentsOf: url, encoding: .utf8)) as? [String: Any] else {
            throw ServingTestFailure("\(url.path): not a YAML mapping")
        }
        return OpenAPIDocument(root: root)
    }

    /// The problems of `value` as the answer of `method path` with `status` (none: it conforms).
    func problems(path: String, method: String, status: Int, contentType: String = "application/json", value: Any) -> [String] {
        guard let operation = ((root["paths"] as? [String: Any])?[path] as? [String: Any])?[method.lowercased()] as? [String: Any],
              let responses = operation["responses"] as? [String: Any] else {
            return ["\(method) \(path) is not in the document"]
        }
        guard let declared = responses[String(status)] else { return ["\(method) \(path) does not declare status \(status)"] }
        guard let response = resolve(declared) as? [String: Any],
              let schema = ((response["content"] as? [String: Any])?[contentType] as? [String: Any])?["schema"] else {
            return ["\(method) \(path) \(status) has no \(contentType) schema"]
        }
        return problems(of: value, against: schema, at: "$")
    }

    func resolve(_ node: Any) -> Any {
        guard let object = node as? [String: Any], let reference = object["$ref"] as? String, reference.hasPrefix("#/") else { return node }
        var current: Any = root
        for part in reference.dropFirst(2).split(separator: "/") {
            guard let next = (current as? [String: Any])?[String(part)] else { return [String: Any]() }
            current = next
        }
        return resolve(current)
    }

    func problems(of value: Any, against node: Any, at location: String) -> [String] {
        guard let schema = resolve(node) as? [String: Any] else { return ["\(location): unreadable schema"] }
        if let choices = schema["oneOf"] as? [Any] {
            let matching = choices.filter { problems(of: value, against: $0, at: location).isEmpty }.count
            return matching == 1 ? [] : ["\(location): matches \(matching) of the oneOf schemas"]
        }
        var found: [String] = []
        if let type = schema["type"] as? String, !Self.has(type: type, value) {
            return ["\(location): \(type) expected, got \(value)"]
        }
        if let options = schema["enum"] as? [Any], !options.contains(where: { Self.same($0, value) }) {
            found.append("\(location): \(value) is not one of \(options)")
        }
        if let number = Self.number(value) {
            if let minimum = schema["minimum"].flatMap(Self.number), number < minimum { found.append("\(location): \(number) < \(minimum)") }
            if let maximum = schema["maximum"].flatMap(Self.number), number > maximum { found.append("\(location): \(number) > \(maximum)") }
        }
        if let object = value as? [String: Any] {
            for key in schema["required"] as? [String] ?? [] where object[key] == nil { found.append("\(location): no \(key)") }
            for (key, property) in schema["properties"] as? [String: Any] ?? [:] {
                if let member = object[key] { found += problems(of: member, against: property, at: "\(location).\(key)") }
            }
        }
        if let array = value as? [Any] {
            if let minItems = schema["minItems"] as? Int, array.count < minItems { found.append("\(location): fewer than \(minItems) items") }
            if let items = schema["items"] {
                for (index, item) in array.enumerated() { found += problems(of: item, against: items, at: "\(location)[\(index)]") }
            }
        }
        return found
    }

    /// A JSON `true`/`false`: `is Bool` alone would also take the numbers 0 and 1 (bridged through NSNumber).
    static func isBoolean(_ value: Any) -> Bool {
        if type(of: value) == Bool.self { return true }
        if let number = value as? NSNumber, type(of: value) != Int.self, type(of: value) != Double.self {
            return String(cString: number.objCType) == "c"
        }
        return false
    }

    static func number(_ value: Any) -> Double? {
        if isBoolean(value) { return nil }
        if let int = value as? Int { return Double(int) }
        return value as? Double
    }

    /// JSON equality of two enum values: numbers by value (0 is 0.0), the rest by their text.
    static func same(_ lhs: Any, _ rhs: Any) -> Bool {
        if let left = number(lhs), let right = number(rhs) { return left == right }
        return "\(lhs)" == "\(rhs)"
    }

    static func has(type: String, _ value: Any) -> Bool {
        switch type {
        case "object": value is [String: Any]
        case "array": value is [Any]
        case "string": value is String
        case "boolean": isBoolean(value)
        case "number": number(value) != nil
        case "integer": number(value).map { $0 == $0.rounded() } ?? false
        default: false
        }
    }
}
