// swift-tools-version: 6.0
import PackageDescription

// Sankshep: train a Bangla hate-speech classifier and compress it (distillation, pruning,
// quantization) with compression methods loaded as compiled plugins through a C ABI.
//
// Layout:
//   Sources/Host        the `sankshep` executable (CLI, pipeline, model, training, data, I/O, loader)
//   Sources/PluginAPI   the C header that is the whole plugin contract
//   Sources/Plugins/*   the built-in plugins, each a dynamic library found by the host at run time
//   Sources/Kernels     compute kernels in C: OpenBLAS GEMM, SIMD element-wise, INT8/INT4/FP16

// Release builds drop Swift's bounds checks in the hot loops; debug builds keep them for tests.
let hostSwiftSettings: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked", "-wmo"], .when(configuration: .release)),
]

// Kernels pick their SIMD path at run time (`__builtin_cpu_supports`), so the whole target is
// compiled for baseline x86-64 and only the marked functions use AVX2/FMA/F16C.
let kernelCSettings: [CSetting] = [
    .unsafeFlags(["-O3", "-fno-math-errno"]),
]

let package = Package(
    name: "Sankshep",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "sankshep", targets: ["Host"]),
        .library(name: "SankshepMagnitude", type: .dynamic, targets: ["Magnitude"]),
        .library(name: "SankshepWanda", type: .dynamic, targets: ["Wanda"]),
        .library(name: "SankshepGradual", type: .dynamic, targets: ["Gradual"]),
        .library(name: "SankshepQuant", type: .dynamic, targets: ["Quant"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.19"),
        .package(url: "https://github.com/yaslab/CSV.swift", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        .target(
            name: "PluginAPI",
            path: "Sources/PluginAPI"
        ),
        .target(
            name: "Kernels",
            path: "Sources/Kernels",
            cSettings: kernelCSettings,
            linkerSettings: [.linkedLibrary("openblas"), .linkedLibrary("m")]
        ),
        .executableTarget(
            name: "Host",
            dependencies: [
                "Kernels",
                "PluginAPI",
                "PluginSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
                .product(name: "CSV", package: "CSV.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            path: "Sources/Host",
            swiftSettings: hostSwiftSettings
        ),
        // What every built-in plugin needs to describe itself through the ABI; each links its own copy.
        .target(name: "PluginSupport", dependencies: ["PluginAPI"], path: "Sources/Plugins/Support",
                swiftSettings: hostSwiftSettings),
        .target(name: "Magnitude", dependencies: ["PluginAPI", "PluginSupport"], path: "Sources/Plugins/Magnitude",
                swiftSettings: hostSwiftSettings),
        .target(name: "Wanda", dependencies: ["PluginAPI", "PluginSupport"], path: "Sources/Plugins/Wanda",
                swiftSettings: hostSwiftSettings),
        .target(name: "Gradual", dependencies: ["PluginAPI", "PluginSupport"], path: "Sources/Plugins/Gradual",
                swiftSettings: hostSwiftSettings),
        .target(name: "Quant", dependencies: ["PluginAPI", "PluginSupport", "Kernels"], path: "Sources/Plugins/Quant",
                swiftSettings: hostSwiftSettings),
        .testTarget(
            name: "SankshepTests",
            dependencies: ["Host", "Kernels"],
            path: "Tests/SankshepTests",
            exclude: ["Fixtures"]
        ),
    ]
)
