// swift-tools-version:6.0
import PackageDescription

// Layers, bottom to top (see docs/architecture.md); a module imports only modules below it:
//   CWirecapLinux / CWirecapPcap / CWirecapNuma  C shims and system libraries
//   WirecapLinux    typed Linux calls: PacketSocket, NetworkInterface, EventFD, NetworkNamespace, SystemError
//   WirecapEngine   TPACKET_V3 RX rings, the TX ring, fanout group, capture threads, the pool and its leases, statistics
//   WirecapSavefile pcap and pcapng savefiles: one reader (libpcap), one writer (pcap by libpcap, pcapng)
//   WirecapPcap     the libpcap-compatible facade (pcap-like handles over files and the engine)
//   WirecapSandbox  network namespaces, veth pairs and a frame sender for tests and experiments
//   WirecapTraffic  synthetic traces and replay through the TX ring
//   WirecapIDS      the example IDS's inspector (flows, byte signatures): wirecap-ids, and the lab's real load
//   WirecapForward  the middlebox: capture on IN, a verdict per frame, one TX ring per queue on OUT
//   WirecapLab      the drop-rate experiments (not a product: it serves `wirecap experiment` and the tests)
//   WirecapCommandLine  what the tools share: flag names, one-line errors, the forward command
//   wirecap, wirecap-ids, wirecap-fwd, first-capture   the command-line tools and the getting-started example
let package = Package(
    name: "wirecap",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "WirecapEngine", targets: ["WirecapEngine"]),
        .library(name: "WirecapPcap", targets: ["WirecapPcap"]),
        .library(name: "WirecapSavefile", targets: ["WirecapSavefile"]),
        .library(name: "WirecapTraffic", targets: ["WirecapTraffic"]),
        .library(name: "WirecapSandbox", targets: ["WirecapSandbox"]),
        .library(name: "WirecapIDS", targets: ["WirecapIDS"]),
        .library(name: "WirecapForward", targets: ["WirecapForward"]),
        // A product only so that the fuzz package (Fuzz/, a package of its own) can check the
        // tools' option parsing; not an API for users.
        .library(name: "WirecapCommandLine", targets: ["WirecapCommandLine"]),
        // The libpcap drop-in: LD_PRELOAD=libwirecap-pcap.so tcpdump -i wirecap:eth0 ...
        .library(name: "wirecap-pcap", type: .dynamic, targets: ["WirecapPcapABI"]),
        .executable(name: "wirecap", targets: ["wirecap"]),
        .executable(name: "wirecap-ids", targets: ["wirecap-ids"]),
        .executable(name: "wirecap-fwd", targets: ["wirecap-fwd"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        // --metrics: the Prometheus text format, and a small HTTP server to serve it.
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swhitty/FlyingFox.git", from: "0.27.0"),
    ],
    targets: [
        .target(name: "CWirecapLinux"),
        .systemLibrary(
            name: "CWirecapPcap", pkgConfig: "libpcap",
            providers: [.apt(["libpcap-dev"])]),
        .systemLibrary(
            name: "CWirecapNuma", pkgConfig: "numa",
            providers: [.apt(["libnuma-dev"])]),
        .target(name: "WirecapLinux", dependencies: ["CWirecapLinux"]),
        .target(
            name: "WirecapEngine",
            dependencies: [
                "CWirecapLinux", "CWirecapNuma", "WirecapLinux",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            exclude: ["WirecapEngine.docc"]),
        .target(name: "WirecapSavefile", dependencies: ["CWirecapPcap", "WirecapEngine"]),
        .target(
            name: "WirecapPcap", dependencies: ["CWirecapPcap", "CWirecapLinux", "WirecapLinux", "WirecapEngine", "WirecapSavefile"],
            exclude: ["WirecapPcap.docc"]),
        // The C-ABI libpcap library: the real libpcap reached through dlsym(RTLD_NEXT), and the
        // table of which pcap_t pointers are wirecap's.
        .target(name: "CWirecapPcapABI", dependencies: ["CWirecapPcap"]),
        .target(name: "WirecapPcapABI", dependencies: ["CWirecapPcapABI", "WirecapPcap", "WirecapEngine"]),
        .target(name: "WirecapSandbox", dependencies: ["CWirecapLinux", "WirecapLinux", "WirecapEngine"]),
        .target(name: "WirecapTraffic", dependencies: ["CWirecapLinux", "WirecapEngine", "WirecapSavefile", "WirecapSandbox"]),
        .target(name: "WirecapIDS", dependencies: ["CWirecapLinux", "WirecapEngine"]),
        .target(name: "WirecapForward", dependencies: ["CWirecapLinux", "WirecapLinux", "WirecapEngine", "WirecapSavefile"]),
        .target(
            name: "WirecapLab",
            dependencies: [
                "CWirecapLinux", "CWirecapPcap", "WirecapEngine", "WirecapSavefile", "WirecapPcap", "WirecapSandbox", "WirecapIDS",
            ]),
        // What the command-line tools share: the flags' names, one-line errors, the filter expression, the forward command.
        .target(
            name: "WirecapCommandLine",
            dependencies: [
                "CWirecapLinux", "WirecapLinux", "WirecapEngine", "WirecapForward", "WirecapIDS", "WirecapPcap", "WirecapSavefile",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "FlyingFox", package: "FlyingFox"),
            ]),
        .executableTarget(
            name: "wirecap",
            dependencies: [
                "CWirecapLinux", "WirecapEngine", "WirecapCommandLine", "WirecapSavefile", "WirecapPcap", "WirecapSandbox", "WirecapTraffic", "WirecapLab",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .executableTarget(
            name: "wirecap-ids",
            dependencies: ["CWirecapLinux", "WirecapLinux", "WirecapEngine", "WirecapPcap", "WirecapIDS", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "wirecap-fwd", dependencies: ["WirecapCommandLine"]),
        // The getting-started article's code (WirecapEngine.docc), built with everything else so
        // that the article cannot stop compiling unnoticed; a test runs it in a sandbox.
        .executableTarget(name: "first-capture", dependencies: ["WirecapEngine"], path: "Examples/FirstCapture"),

        // Plain libpcap programs in the style of Zeek's and Suricata's pcap sources, which the
        // tests run with libwirecap-pcap.so preloaded.
        .executableTarget(name: "zeek-style-reader", path: "Tests/PreloadPrograms/ZeekStyle", linkerSettings: [.linkedLibrary("pcap")]),
        .executableTarget(name: "suricata-style-reader", path: "Tests/PreloadPrograms/SuricataStyle", linkerSettings: [.linkedLibrary("pcap")]),
        .executableTarget(name: "foreign-filter-reader", path: "Tests/PreloadPrograms/ForeignFilter", linkerSettings: [.linkedLibrary("pcap")]),

        // What the test targets share (a test target cannot import another): running peer
        // programs, scratch paths, hand-made savefiles.
        .target(name: "WirecapTestSupport", path: "Tests/WirecapTestSupport"),
        // One unit test target per library module; they need no privilege.
        .testTarget(name: "WirecapLinuxTests", dependencies: ["WirecapLinux"]),
        .testTarget(name: "WirecapEngineTests", dependencies: ["WirecapEngine", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "WirecapSavefileTests", dependencies: ["WirecapSavefile", "WirecapEngine", "WirecapTestSupport"]),
        .testTarget(name: "WirecapPcapTests", dependencies: ["WirecapPcap", "WirecapEngine", "WirecapSavefile"]),
        .testTarget(name: "WirecapTrafficTests", dependencies: ["WirecapTraffic", "WirecapSavefile", "WirecapSandbox", "WirecapTestSupport"]),
        .testTarget(name: "WirecapLabTests", dependencies: ["WirecapLab", "WirecapEngine", "WirecapSandbox"]),
        // Integration tests: real frames through veth sandboxes (as root) and the real executables.
        .testTarget(
            name: "WirecapIntegrationTests",
            dependencies: [
                "CWirecapLinux", "WirecapEngine", "WirecapSavefile", "WirecapPcap", "WirecapSandbox", "WirecapTraffic", "WirecapLab",
                "WirecapForward", "WirecapIDS", "WirecapTestSupport", "wirecap", "wirecap-ids", "wirecap-fwd", "first-capture",
                "zeek-style-reader", "suricata-style-reader", "foreign-filter-reader",
            ]),
    ],
    swiftLanguageModes: [.v6]
)
