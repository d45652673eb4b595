import Testing
@testable import Host

@Suite("sankshep bench options")
struct BenchCommandTests {
    @Test("--kept_heads outside 1…heads of the shape is refused in one line naming the option")
    func keptHeadsRange() throws {
        for value in ["0", "5"] {
            do {
                _ = try BenchCommand.parseAsRoot(["--shape", "small", "--kept_heads", value])
                Issue.record("--kept_heads \(value) was accepted for the 4-head small shape")
            } catch {
                let message = BenchCommand.message(for: error)
                #expect(message.contains("--kept_heads") && message.contains("4 heads") && !message.contains("\n"), "\(message)")
            }
        }
        let command = try #require(try BenchCommand.parseAsRoot(["--shape", "small", "--kept_heads", "1"]) as? BenchCommand)
        #expect(command.keptHeads == 1)
    }
}
