// swift-tools-version:6.1
import PackageDescription

// Benchmarks for wirecap, kept in a package of their own so that the benchmark dependency (and
// its malloc interposer) never reaches the library's users.
//
// Run from this directory:
//   swift package benchmark
// The MallocInterposer trait counts allocations with no system library (no jemalloc needed);
// naming it explicitly also leaves out the Linux ARC runtime interposer, a default trait whose
// package is not available here.
let package = Package(
    name: "wirecap-benchmarks",
    platforms: [.macOS(.v15)],
    products: [
        // The C reference consumer (issue 14), run by scripts/cpu-vs-c-reference.sh.
        .executable(name: "c-reference-consumer", targets: ["CReferenceConsumer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.0", traits: ["MallocInterposer"]),
        .package(name: "wirecap", path: "../"),
    ],
    targets: [
        // A bare TPACKET_V3 loop in C: what the plain ring path's CPU per packet is compared with.
        .executableTarget(
            name: "CReferenceConsumer",
            path: "Sources/CReferenceConsumer"
        ),
        .executableTarget(
            name: "BlockWalkBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "WirecapEngine", package: "wirecap"),
                .product(name: "WirecapPcap", package: "wirecap"),
            ],
            path: "Benchmarks/BlockWalkBenchmarks",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark")
            ]
        ),
        .executableTarget(
            name: "PoolBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "WirecapEngine", package: "wirecap"),
            ],
            path: "Benchmarks/PoolBenchmarks",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark")
            ]
        ),
        .executableTarget(
            name: "ForwardBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "WirecapEngine", package: "wirecap"),
                .product(name: "WirecapForward", package: "wirecap"),
            ],
            path: "Benchmarks/ForwardBenchmarks",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark")
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
