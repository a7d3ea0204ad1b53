// swift-tools-version:6.0
import PackageDescription

// Layers, bottom to top (see docs/architecture.md):
//   CWirecapLinux / CWirecapPcap / CWirecapNuma  C shims and system libraries
//   WirecapEngine   TPACKET_V3 rings, fanout group, capture threads, statistics
//   WirecapSavefile pcap and pcapng savefiles: one reader (libpcap), one writer (pcap by libpcap, pcapng)
//   WirecapSandbox  network namespaces, veth pairs and a frame sender for tests and experiments
//   WirecapTraffic  synthetic traces and replay through a TX ring
//   WirecapIDS      the example IDS's inspector (flows, byte signatures): wirecap-ids, and the lab's real load
//   WirecapLab      the drop-rate experiments: engines, scenarios, results, plots, simulation
//   WirecapPcap     the libpcap-compatible facade (pcap-like handles over files and the engine)
//   wirecap         the command-line tool
let package = Package(
    name: "wirecap",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "WirecapEngine", targets: ["WirecapEngine"]),
        .library(name: "WirecapSavefile", targets: ["WirecapSavefile"]),
        .library(name: "WirecapSandbox", targets: ["WirecapSandbox"]),
        .library(name: "WirecapTraffic", targets: ["WirecapTraffic"]),
        .library(name: "WirecapLab", targets: ["WirecapLab"]),
        .library(name: "WirecapPcap", targets: ["WirecapPcap"]),
        .library(name: "WirecapIDS", targets: ["WirecapIDS"]),
        .executable(name: "wirecap", targets: ["wirecap"]),
        .executable(name: "wirecap-ids", targets: ["wirecap-ids"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
    ],
    targets: [
        .target(name: "CWirecapLinux"),
        .systemLibrary(
            name: "CWirecapPcap", pkgConfig: "libpcap",
            providers: [.apt(["libpcap-dev"])]),
        .systemLibrary(
            name: "CWirecapNuma", pkgConfig: "numa",
            providers: [.apt(["libnuma-dev"])]),
        .target(
            name: "WirecapEngine",
            dependencies: [
                "CWirecapLinux", "CWirecapNuma",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]),
        .target(name: "WirecapSavefile", dependencies: ["CWirecapPcap", "WirecapEngine"]),
        .target(name: "WirecapSandbox", dependencies: ["CWirecapLinux", "WirecapEngine"]),
        .target(name: "WirecapTraffic", dependencies: ["CWirecapLinux", "WirecapEngine", "WirecapSavefile", "WirecapSandbox"]),
        .target(name: "WirecapIDS", dependencies: ["CWirecapLinux", "WirecapEngine"]),
        .target(
            name: "WirecapLab",
            dependencies: [
                "CWirecapLinux", "CWirecapPcap", "WirecapEngine", "WirecapSavefile", "WirecapSandbox", "WirecapTraffic", "WirecapIDS", "WirecapPcap",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .target(name: "WirecapPcap", dependencies: ["CWirecapPcap", "CWirecapLinux", "WirecapEngine", "WirecapSavefile", "WirecapSandbox"]),
        .executableTarget(
            name: "wirecap",
            dependencies: [
                "WirecapEngine", "WirecapSavefile", "WirecapSandbox", "WirecapTraffic", "WirecapLab", "WirecapPcap",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // The getting-started article's code (WirecapEngine.docc), built with everything else so
        // that the article cannot stop compiling unnoticed; a test runs it in a sandbox.
        .executableTarget(name: "first-capture", dependencies: ["WirecapEngine"], path: "Examples/FirstCapture"),
        .executableTarget(
            name: "wirecap-ids",
            dependencies: ["WirecapEngine", "WirecapPcap", "WirecapIDS", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .testTarget(name: "WirecapEngineTests", dependencies: ["WirecapEngine", "WirecapSavefile", "WirecapTraffic", "WirecapLab", "WirecapPcap", "WirecapSandbox", "WirecapIDS"]),
        .testTarget(
            name: "WirecapIntegrationTests",
            dependencies: ["WirecapEngine", "WirecapSavefile", "WirecapSandbox", "WirecapTraffic", "WirecapLab", "WirecapPcap", "wirecap", "wirecap-ids", "first-capture"]),
        .testTarget(name: "WirecapSavefileTests", dependencies: ["WirecapSavefile", "WirecapEngine"]),
    ],
    swiftLanguageModes: [.v6]
)
