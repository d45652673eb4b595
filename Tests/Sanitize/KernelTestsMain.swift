import Foundation
import Testing

// The entry point of the kernel tests (Tests/SankshepTests/Kernels) built on their own by
// scripts/sanitize_kernels.sh, with the C kernels under AddressSanitizer and UndefinedBehaviorSanitizer.
@main
struct KernelTestsUnderSanitizers {
    static func main() async {
        let status: CInt = await Testing.__swiftPMEntryPoint()
        exit(status)
    }
}
