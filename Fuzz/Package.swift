// swift-tools-version:6.0
import PackageDescription

// libFuzzer targets for wirecap, kept in a package of their own (like Benchmarks/): the main
// package and CI never build them. Build and run them with ../scripts/fuzz.sh, which builds with
//   swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library \
//       -Xswiftc -enable-testing --scratch-path .build-fuzz
// (-enable-testing: FuzzArguments reaches ForwardCommand's options with @testable import).
// Each target is an executable whose entry point is libFuzzer's main; it exports
// LLVMFuzzerTestOneInput.
let package = Package(
    name: "wirecap-fuzz",
    dependencies: [
        .package(name: "wirecap", path: "../")
    ],
    targets: [
        // The libFuzzer driver entry and the input file every target shares.
        .target(name: "FuzzSupport", path: "Sources/FuzzSupport"),
        .executableTarget(
            name: "FuzzSavefile",
            dependencies: ["FuzzSupport", .product(name: "WirecapSavefile", package: "wirecap")],
            path: "Sources/FuzzSavefile"
        ),
        .executableTarget(
            name: "FuzzTraceLoader",
            dependencies: ["FuzzSupport", .product(name: "WirecapTraffic", package: "wirecap")],
            path: "Sources/FuzzTraceLoader"
        ),
        .executableTarget(
            name: "FuzzBlockWalk",
            dependencies: ["FuzzSupport", .product(name: "WirecapEngine", package: "wirecap")],
            path: "Sources/FuzzBlockWalk"
        ),
        .executableTarget(
            name: "FuzzFilter",
            dependencies: ["FuzzSupport", .product(name: "WirecapPcap", package: "wirecap")],
            path: "Sources/FuzzFilter"
        ),
        .executableTarget(
            name: "FuzzOfflineHandle",
            dependencies: ["FuzzSupport", .product(name: "WirecapPcap", package: "wirecap")],
            path: "Sources/FuzzOfflineHandle"
        ),
        .executableTarget(
            name: "FuzzArguments",
            dependencies: [
                "FuzzSupport",
                .product(name: "WirecapCommandLine", package: "wirecap"),
                .product(name: "WirecapEngine", package: "wirecap"),
            ],
            path: "Sources/FuzzArguments"
        ),
    ],
    swiftLanguageModes: [.v6]
)
