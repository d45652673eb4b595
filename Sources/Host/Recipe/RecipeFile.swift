import Foundation
import Yams

// Reading a recipe file: YAML through Yams, each stage's keys by the kinds its declaration gives them.

extension Recipe {
    static let topLevelKeys = ["name", "stages"]

    /// Reads and parses a recipe file (not yet validated against the plugins: see `validate`).
    static func load(contentsOf url: URL) throws -> Recipe {
        let data: Data
        do { data = try InputFile.read(url) } catch {
            let reason = (error as? InputFile.NotRegular)?.errorDescription
                ?? ((error as NSError).code == NSFileReadNoSuchFileError ? "no such file" : "cannot be read")
            throw RecipeError("\(url.path): recipe \(reason)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw RecipeError("\(url.path): recipe is not UTF-8 text")
        }
        return try parse(yaml: text, file: url.path,
                         defaultName: url.deletingPathExtension().lastPathComponent)
    }

    /// Parses recipe YAML. `file` names the source in errors; `defaultName` is the run's name when the
    /// recipe has no `name:`.
    static func parse(yaml: String, file: String, defaultName: String = "recipe") throws -> Recipe {
        let root: Node?
        do { root = try Yams.compose(yaml: yaml) } catch let error as YamlError {
            throw RecipeError("\(file):\(Self.oneLine(error))")
        }
        guard let root, root.null == nil else {
            throw RecipeError("\(file): the recipe is empty; it needs a 'stages:' list starting with baseline")
        }
        guard let top = root.mapping else {
            throw RecipeError("\(file):\(line(root)): a recipe is a mapping with a 'stages:' list")
        }
        var name = defaultName
        var stageList: Node.Sequence?
        for (keyNode, value) in top {
            let key = keyNode.string ?? ""
            switch key {
            case "name":
                guard let text = value.scalar?.string, isArtifactName(text) else {
                    throw RecipeError("\(file):\(line(keyNode)): name must be letters, digits, '-', '_' or '.' (it becomes part of file names)")
                }
                name = text
            case "stages":
                guard let sequence = value.sequence else {
                    throw RecipeError("\(file):\(line(keyNode)): stages must be a list, e.g. '- baseline: {}'")
                }
                stageList = sequence
            default:
                throw RecipeError("\(file):\(line(keyNode)): unknown key '\(key)' (known: \(topLevelKeys.joined(separator: ", ")))")
            }
        }
        guard let stageList else {
            throw RecipeError("\(file): the recipe has no 'stages:' list")
        }

        var recipe = Recipe(name: name, origin: .file(file), stages: [], locations: [])
        for (index, item) in stageList.enumerated() {
            let (stage, location) = try parseStage(item, index: index, file: file)
            recipe.stages.append(stage)
            recipe.locations.append(location)
        }
        return recipe
    }

    /// One stage: `- name: {key: value, …}`, `- name:` or `- name`.
    private static func parseStage(_ item: Node, index: Int, file: String) throws -> (RecipeStage, StageLocation) {
        let itemLine = line(item)
        let stageName: String
        var body: Node.Mapping?
        var bodyLine = itemLine
        if let scalar = item.scalar {
            stageName = scalar.string
        } else if let mapping = item.mapping, mapping.count == 1, let (keyNode, value) = mapping.first {
            stageName = keyNode.string ?? ""
            bodyLine = line(keyNode)
            if value.null == nil {
                guard let values = value.mapping else {
                    throw RecipeError("\(file):\(line(value)): stage \(index + 1) (\(stageName)): its options must be a mapping, e.g. {sparsity: 0.5}")
                }
                body = values
            }
        } else {
            throw RecipeError("\(file):\(itemLine): stage \(index + 1): expected one stage name with its options, e.g. '- prune: {method: wanda, sparsity: 0.3}'")
        }
        guard let kind = StageCatalog.kind(named: stageName) else {
            throw RecipeError("\(file):\(bodyLine): stage \(index + 1): unknown stage '\(stageName)' (known: \(StageCatalog.kinds.map { $0.name }.joined(separator: ", ")))")
        }
        let known = recipeKeys(of: kind)
        var location = StageLocation(line: bodyLine)
        var nodes: [String: Node] = [:]
        for (keyNode, value) in body ?? [:] {
            let key = keyNode.string ?? ""
            guard known.contains(key) else {
                let list = known.isEmpty ? "\(stageName) takes no keys; its training options come from the command line"
                                         : "known: \(known.joined(separator: ", "))"
                throw RecipeError("\(file):\(line(keyNode)): stage \(index + 1) (\(stageName)): unknown key '\(key)' (\(list))")
            }
            nodes[key] = value
            location.keyLines[key] = line(keyNode)
            for (optionNode, _) in key == "options" ? value.mapping ?? [:] : [:] {
                location.keyLines["options." + (optionNode.string ?? "")] = line(optionNode)
            }
        }
        let keyLines = location.keyLines
        let fail: (String, String) -> RecipeError = { key, problem in
            RecipeError("\(file):\(keyLines[key] ?? bodyLine): stage \(index + 1) (\(stageName)): \(key) \(problem)")
        }
        let place = OptionPlace(name: { $0 }, fail: fail)
        return (try readStage(kind, nodes, place: place), location)
    }

    private static func recipeKeys<Stage: StageDeclaration>(of kind: Stage.Type) -> [String] { Stage.recipeKeys }

    private static func line(_ node: Node) -> Int { node.mark?.line ?? 0 }

    static func isArtifactName(_ text: String) -> Bool {
        !text.isEmpty && text != "." && text != ".." &&
            text.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "-_.".unicodeScalars.contains($0)) }
    }

    /// Yams reports problems over several lines (with a snippet); keep `line:column: problem`.
    private static func oneLine(_ error: YamlError) -> String {
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _),
             let .composer(context, problem, mark, _):
            let context = context.map { " (\($0.text) at line \($0.mark.line))" } ?? ""
            return "\(mark.line):\(mark.column): YAML syntax error: \(problem)\(context)"
        case let .duplicatedKeysInMapping(duplicates, context):
            return "\(context.mark.line): duplicate key \(duplicates.map { "'\($0)'" }.joined(separator: ", "))"
        default:
            return " YAML error: \(error)"
        }
    }

    /// Reads a stage's YAML values by their declared kinds into the stage's settings.
    private static func readStage<Stage: StageDeclaration>(_ kind: Stage.Type, _ nodes: [String: Node], place: OptionPlace) throws -> RecipeStage {
        var values: [String: OptionValue] = [:]
        for option in Stage.options where option.inRecipes {
            guard let node = nodes[option.key] else { continue }
            do { values[option.key] = try option.kind.value(of: node) } catch { throw place.fail(option.key, error.text) }
        }
        return RecipeStage(try Stage.make(values, place: place))
    }
}
