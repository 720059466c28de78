// swift-tools-version: 6.1
import PackageDescription

// Kernels are hot loops: in release builds drop exclusivity checks (we hand out
// raw pointers ourselves) but keep the default, portable x86-64 target.
let kernelFlags: [SwiftSetting] = [
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "Lopper",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "lopper", targets: ["lopper"]),
        .library(name: "LopperCore", targets: ["LopperCore"]),
        .library(name: "LopperIO", targets: ["LopperIO"]),
        .library(name: "LopperPrune", targets: ["LopperPrune"]),
        .library(name: "LopperLua", targets: ["LopperLua"]),
        .library(name: "LopperModels", targets: ["LopperModels"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CLua",
            pkgConfig: "lua5.4",
            providers: [.apt(["liblua5.4-dev"])]
        ),
        .target(name: "CLuaShim", dependencies: ["CLua"]),
        .systemLibrary(
            name: "CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        // libedit (BSD editline, not GNU readline) for `lopper repl`, behind a small C layer.
        .systemLibrary(
            name: "CEditLine",
            pkgConfig: "libedit",
            providers: [.apt(["libedit-dev"])]
        ),
        .target(name: "CLineEdit", dependencies: ["CEditLine"]),
        // zlib, for the plugin source an output records (compressed).
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // SSE2-baseline intrinsics Swift cannot emit (non-temporal stores, fences).
        .target(name: "CKernels"),
        // Signal-time cleanup of temporary outputs (async-signal-safe C).
        .target(name: "CTempPaths"),
        .target(name: "LopperCore", dependencies: ["CKernels"], swiftSettings: kernelFlags),
        .target(name: "LopperIO", dependencies: ["LopperCore", "CTempPaths", "CZlib"], swiftSettings: kernelFlags),
        .target(name: "LopperPrune", dependencies: ["LopperIO", "LopperCore"], swiftSettings: kernelFlags),
        .target(name: "LopperModels", dependencies: ["LopperIO", "LopperCore", "CBLAS"], swiftSettings: kernelFlags),
        // What needs both pruning and models: the q search over candidate models.
        .target(name: "LopperCalibration", dependencies: ["LopperPrune", "LopperModels", "LopperIO", "LopperCore"]),
        // Lopper's own Lua (sandbox, guards, REPL) lives in Sources/LopperLua/Lua/*.lua and is
        // compiled into the binary as Swift strings: no resource bundle to lose.
        .executableTarget(name: "EmbedLua", path: "BuildTools/EmbedLua"),
        .plugin(name: "EmbedLuaPlugin", capability: .buildTool(), dependencies: ["EmbedLua"], path: "BuildTools/EmbedLuaPlugin"),
        .target(name: "LopperLua", dependencies: ["LopperCalibration", "LopperPrune", "LopperModels", "LopperIO", "LopperCore", "CLua", "CLuaShim", "CLineEdit"],
                exclude: ["Lua"], plugins: ["EmbedLuaPlugin"]),
        .executableTarget(
            name: "lopper",
            dependencies: [
                "LopperCore", "LopperIO", "LopperPrune", "LopperModels", "LopperCalibration", "LopperLua",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "lopper-bench", dependencies: ["LopperCore", "LopperIO", "LopperLua", "LopperModels"],
                          path: "Sources/Bench", swiftSettings: kernelFlags),
        .testTarget(name: "LopperCoreTests", dependencies: ["LopperCore"]),
        .testTarget(name: "LopperIOTests", dependencies: ["LopperIO", "LopperCore", "CTempPaths"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "LopperPruneTests", dependencies: ["LopperPrune", "LopperIO", "LopperCore"]),
        .testTarget(name: "LopperModelsTests", dependencies: ["LopperModels", "LopperIO", "LopperCore"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "PluginTests", dependencies: ["LopperLua", "LopperCalibration", "LopperPrune", "LopperModels", "LopperIO", "LopperCore"]),
        .testTarget(name: "LopperLuaTests", dependencies: ["LopperLua", "LopperIO", "LopperCore"],
                    resources: [.copy("Scripts")]),
    ],
    swiftLanguageModes: [.v5]
)
