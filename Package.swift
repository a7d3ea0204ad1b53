// swift-tools-version:6.0
import PackageDescription

// Layers, bottom to top (see docs/architecture.md):
//   CWirecapLinux / CWirecapPcap / CWirecapNuma  C shims and system libraries
//   WirecapLinux    typed Linux calls: PacketSocket, NetworkInterface, EventFD, NetworkNamespace, SystemError
//   WirecapEngine   TPACKET_V3 rings, the TX ring, fanout group, capture threads, statistics
//   WirecapTrace    pcap savefiles through libpcap (read and write)
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
        .library(name: "WirecapTrace", targets: ["WirecapTrace"]),
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
        .target(name: "WirecapLinux", dependencies: ["CWirecapLinux"]),
        .systemLibrary(
            name: "CWirecapPcap", pkgConfig: "libpcap",
            providers: [.apt(["libpcap-dev"])]),
        .systemLibrary(
            name: "CWirecapNuma", pkgConfig: "numa",
            providers: [.apt(["libnuma-dev"])]),
        .target(
            name: "WirecapEngine",
            dependencies: [
                "CWirecapLinux", "CWirecapNuma", "WirecapLinux",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]),
        .target(name: "WirecapTrace", dependencies: ["CWirecapPcap", "WirecapEngine"]),
        .target(name: "WirecapSandbox", dependencies: ["CWirecapLinux", "WirecapLinux", "WirecapEngine"]),
        .target(name: "WirecapTraffic", dependencies: ["CWirecapLinux", "WirecapEngine", "WirecapTrace", "WirecapSandbox"]),
        .target(name: "WirecapIDS", dependencies: ["CWirecapLinux", "WirecapEngine"]),
        .target(
            name: "WirecapLab",
            dependencies: [
                "CWirecapLinux", "CWirecapPcap", "WirecapEngine", "WirecapTrace", "WirecapSandbox", "WirecapTraffic", "WirecapIDS", "WirecapPcap",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .target(name: "WirecapPcap", dependencies: ["CWirecapPcap", "CWirecapLinux", "WirecapLinux", "WirecapEngine", "WirecapTrace"]),
        .executableTarget(
            name: "wirecap",
            dependencies: [
                "WirecapEngine", "WirecapTrace", "WirecapSandbox", "WirecapTraffic", "WirecapLab", "WirecapPcap",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // The getting-started article's code (WirecapEngine.docc), built with everything else so
        // that the article cannot stop compiling unnoticed; a test runs it in a sandbox.
        .executableTarget(name: "first-capture", dependencies: ["WirecapEngine"], path: "Examples/FirstCapture"),
        .executableTarget(
            name: "wirecap-ids",
            dependencies: ["WirecapEngine", "WirecapPcap", "WirecapIDS", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .testTarget(name: "WirecapLinuxTests", dependencies: ["WirecapLinux"]),
        .testTarget(name: "WirecapEngineTests", dependencies: ["WirecapEngine", "WirecapTrace", "WirecapTraffic", "WirecapLab", "WirecapPcap", "WirecapSandbox", "WirecapIDS"]),
        .testTarget(
            name: "WirecapIntegrationTests",
            dependencies: ["WirecapEngine", "WirecapTrace", "WirecapSandbox", "WirecapTraffic", "WirecapLab", "WirecapPcap", "wirecap", "wirecap-ids", "first-capture"]),
    ],
    swiftLanguageModes: [.v6]
)
