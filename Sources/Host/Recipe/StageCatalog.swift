/// Every kind of recipe stage, in the order a `--pipeline` name runs them and `--help` lists them.
/// A new kind of stage is a file in Recipe/Stages/ (its `StageDeclaration`) and a line here.
enum StageCatalog {
    static var kinds: [any StageDeclaration.Type] {
        [BaselineSettings.self, DistillStage.self, PruneStage.self, QuantizeStage.self]
    }

    static func kind(named name: String) -> (any StageDeclaration.Type)? {
        kinds.first { $0.name == name }
    }

    /// The stage every recipe starts with.
    static var first: any StageDeclaration.Type { BaselineSettings.self }

    /// The stage after which nothing may come.
    static var last: any StageDeclaration.Type { QuantizeStage.self }
}
