import WirecapEngine

/// The capture engines an experiment compares, all running the same per-packet work.
package enum LabEngine: String, CaseIterable, Sendable, Codable, Comparable {
    /// libpcap as users have it today: one socket (pcap_open_live style), pcap_dispatch.
    case libpcap
    /// AF_PACKET fanout with one TPACKET_V3 ring per queue, handler on the ring (Suricata-style).
    case fanout
    /// The same with the kernel's PACKET_FANOUT_FLAG_ROLLOVER: a full ring spills to another member.
    case rollover
    /// wirecap's basic mode: fanout plus a ring-buffer pool and work threads.
    case basic
    /// wirecap's advanced mode: basic plus buddy-group offloading at threshold T.
    case advanced
    /// The libpcap-compatible facade over basic mode: one `PcapHandle` (N queues, the pool) with a
    /// reader per queue (`handle.queues[i]`), each read by a thread of its own with `dispatch`, as
    /// a multi-threaded IDS written for libpcap reads it.
    case facade
    /// The facade with buddy offloading (`LiveOptions.offloadThreshold`): each reader is told
    /// every chunk's owner and sequence number (`chunkBegins`), so the order of each flow can be
    /// restored per owner by chunk sequence; the lab measures the reordering with and without.
    case facadeOffload
    // The forwarders of the fwd scenario (sender -> forwarder -> sink), all on the same traffic.
    /// The kernel's bridge between IN and OUT: no user space, the ceiling.
    case bridge
    /// netsniff-ng's ring-to-ring mode (`netsniff-ng --in IN --out OUT`), when installed.
    case netsniff
    /// `wirecap fwd` with the smallest pool that lets capture and forwarding overlap.
    case fwdPlain
    /// `wirecap fwd` with a pool that buffers as much as the ring again.
    case fwdPool
    /// `wirecap fwd` with the pool and buddy offloading.
    case fwdOffload

    /// The capture engines of the drop-rate scenarios (burst, imbalance, load, trace, ids).
    package static let capture: [LabEngine] = [.libpcap, .fanout, .rollover, .basic, .advanced, .facade]
    /// The forwarders of the fwd scenario, the ceiling first.
    package static let forwarding: [LabEngine] = [.bridge, .netsniff, .fwdPlain, .fwdPool, .fwdOffload]

    package var isForwarding: Bool { Self.forwarding.contains(self) }

    package var title: String {
        switch self {
        case .libpcap: "libpcap"
        case .fanout: "plain fanout"
        case .rollover: "kernel rollover"
        case .basic: "wirecap basic"
        case .advanced: "wirecap advanced"
        case .facade: "wirecap pcap facade"
        case .facadeOffload: "wirecap pcap facade, offloading"
        case .bridge: "kernel bridge"
        case .netsniff: "netsniff-ng"
        case .fwdPlain: "wirecap fwd plain"
        case .fwdPool: "wirecap fwd pool"
        case .fwdOffload: "wirecap fwd offload"
        }
    }

    /// Whether the engine buffers in a ring-buffer pool behind its rings.
    package var usesPool: Bool { self == .basic || self == .advanced || self == .facade || self == .facadeOffload || self == .fwdPlain || self == .fwdPool || self == .fwdOffload }

    package static func < (a: LabEngine, b: LabEngine) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// How one engine is set up for one point of a scenario.
package struct EngineSetup: Sendable, Codable, Equatable {
    package var engine: LabEngine
    package var queues: Int
    /// Ring geometry shared by every engine (libpcap gets the same buffer size).
    package var blockSize: Int
    package var blockCount: Int
    /// Pool chunks per queue (basic, advanced).
    package var poolChunks: Int
    /// Offload threshold T (advanced).
    package var threshold: Double

    package init(engine: LabEngine, queues: Int, blockSize: Int, blockCount: Int, poolChunks: Int, threshold: Double) {
        self.engine = engine
        self.queues = queues
        self.blockSize = blockSize
        self.blockCount = blockCount
        self.poolChunks = poolChunks
        self.threshold = threshold
    }

    /// Bytes one queue can hold before the kernel drops: the ring, plus the pool for wirecap.
    package var bufferBytesPerQueue: Int {
        blockSize * blockCount + (engine.usesPool ? poolChunks * blockSize : 0)
    }

    func captureConfiguration(interface: String) -> CaptureConfiguration {
        CaptureConfiguration(
            interface: interface, queues: engine == .libpcap ? 1 : queues, fanout: .hash, rollover: engine == .rollover,
            ring: RingGeometry(blockSize: blockSize, blockCount: blockCount, blockTimeoutMilliseconds: 8),
            snapLength: LabDefaults.snapLength, promiscuous: true, pinThreads: true,
            pool: engine.usesPool ? PoolConfiguration(chunks: poolChunks) : nil,
            offload: engine == .advanced ? OffloadConfiguration(threshold: threshold) : nil)
    }
}

enum LabDefaults {
    static let snapLength = 2048
}
