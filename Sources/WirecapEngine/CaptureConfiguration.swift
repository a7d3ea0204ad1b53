#if canImport(Glibc)
import Glibc
#endif
import CWirecapLinux
import WirecapLinux

/// How member sockets of the fanout group share the traffic (PACKET_FANOUT_* in the kernel).
public enum FanoutMode: String, CaseIterable, Sendable {
    /// Symmetric flow hash: both directions of a flow reach one queue. Emulates RSS on veth.
    case hash
    /// The CPU that received the packet picks the queue.
    case cpu
    /// The NIC receive queue picks the queue: follows real RSS on multi-queue NICs.
    case qm
    /// Round robin over members: balanced, but reorders packets within a flow.
    case lb

    var kernelType: UInt16 {
        switch self {
        case .hash: UInt16(PACKET_FANOUT_HASH)
        case .lb: UInt16(PACKET_FANOUT_LB)
        case .cpu: UInt16(PACKET_FANOUT_CPU)
        case .qm: UInt16(PACKET_FANOUT_QM)
        }
    }
}

/// The geometry of one TPACKET_V3 receive ring.
public struct RingGeometry: Equatable, Sendable {
    /// Bytes per block. A multiple of the page size that holds at least one full snap length.
    public var blockSize: Int
    /// Blocks per ring. The ring holds `blockSize * blockCount` bytes of packets and headers.
    public var blockCount: Int
    /// Milliseconds after which the kernel retires a block that is not full (0: kernel picks).
    public var blockTimeoutMilliseconds: Int

    /// 1 MiB blocks, 32 per ring: 32 MiB per queue, about 25 ms of a 10 Gb/s link or 270 ms of
    /// 1 Gb/s, and an 8 ms timeout, the kernel's own fallback on links without a known speed.
    public static let `default` = RingGeometry(blockSize: 1 << 20, blockCount: 32, blockTimeoutMilliseconds: 8)

    public init(blockSize: Int, blockCount: Int, blockTimeoutMilliseconds: Int) {
        self.blockSize = blockSize
        self.blockCount = blockCount
        self.blockTimeoutMilliseconds = blockTimeoutMilliseconds
    }

    public var ringBytes: Int { blockSize * blockCount }
}

/// WireCAP's ring-buffer pool: per queue, `chunks` chunks of one ring block each.
public struct PoolConfiguration: Equatable, Sendable {
    /// R, the chunks per queue. Buffering per queue grows from the ring to R blocks' worth.
    public var chunks: Int
    public var lockMemory: MemoryLockPolicy
    /// How long a stop waits, at most, for handlers to free a chunk while packets the kernel
    /// accepted are still in the ring. Packets still there after it are left behind and counted
    /// (`inRing` after the stop). The kernel's retire timer has its own, short, window. Taken
    /// within 0 ms and a day.
    public var stopWaitMilliseconds: Int
    /// Whether ring blocks are lent to handlers in place while their backlog is short (the hybrid
    /// pool: a block is copied only when a handler keeps it, the backlog grows, or the ring runs
    /// short), or every block is copied into a chunk.
    public var zeroCopy: Bool

    public init(chunks: Int, lockMemory: MemoryLockPolicy = .auto, stopWaitMilliseconds: Int = 10_000, zeroCopy: Bool = true) {
        self.chunks = chunks
        self.lockMemory = lockMemory
        self.stopWaitMilliseconds = stopWaitMilliseconds
        self.zeroCopy = zeroCopy
    }
}

/// WireCAP's advanced mode: which queues share work, and when they start to.
public struct OffloadConfiguration: Equatable, Sendable {
    /// T in 0...1: a queue whose backlog exceeds T x its pool size hands new chunks to buddies.
    public var threshold: Double
    /// Buddy groups as lists of queue indices; nil: by NUMA node (one group on a single node).
    public var groups: [[Int]]?

    public init(threshold: Double, groups: [[Int]]? = nil) {
        self.threshold = threshold
        self.groups = groups
    }
}

/// One classic BPF instruction (`struct sock_filter`): defined with the socket that runs it, and
/// named here too so that code importing only the engine keeps its filters.
public typealias BPFInstruction = WirecapLinux.BPFInstruction

/// Everything needed to open a multi-queue capture on one interface.
public struct CaptureConfiguration: Sendable {
    public var interface: String
    public var queues: Int
    public var fanout: FanoutMode
    /// Adds PACKET_FANOUT_FLAG_ROLLOVER: the kernel spills to another member when a ring is full.
    public var rollover: Bool
    public var ring: RingGeometry
    /// Bytes kept of each packet; the kernel truncates to this so the rest is never copied.
    public var snapLength: Int
    public var promiscuous: Bool
    /// Pin each capture thread to one allowed CPU (spread round robin).
    public var pinThreads: Bool
    /// The ring-buffer pool and work threads (WireCAP's basic mode); nil: the handler runs on the
    /// capture thread over ring memory (a plain ring consumer).
    public var pool: PoolConfiguration?
    /// Buddy-group offloading (needs the pool); nil: every queue keeps its own chunks.
    public var offload: OffloadConfiguration?
    /// A classic BPF program (e.g. compiled by libpcap from a tcpdump expression) that every
    /// member runs in the kernel; packets it rejects never reach a ring. nil: accept all, cut to
    /// the snap length.
    public var filter: [BPFInstruction]?

    public static let defaultSnapLength = 262_144
    public static let maximumQueues = 256

    public init(
        interface: String, queues: Int = 1, fanout: FanoutMode = .hash, rollover: Bool = false,
        ring: RingGeometry = .default, snapLength: Int = CaptureConfiguration.defaultSnapLength,
        promiscuous: Bool = true, pinThreads: Bool = true, pool: PoolConfiguration? = nil,
        offload: OffloadConfiguration? = nil
    ) {
        self.interface = interface
        self.queues = queues
        self.fanout = fanout
        self.rollover = rollover
        self.ring = ring
        self.snapLength = snapLength
        self.promiscuous = promiscuous
        self.pinThreads = pinThreads
        self.pool = pool
        self.offload = offload
    }

    /// Headroom asked of the kernel in front of each frame so that a stripped VLAN tag can be put
    /// back in place (what libpcap reserves for the same reason).
    static let vlanReserve = 4

    /// The smallest block that holds one packet of `snapLength` bytes without the kernel cutting
    /// it short: block descriptor, aligned TPACKET3 header with its sockaddr_ll, the 16 bytes the
    /// kernel keeps in front of the network header, the VLAN reserve, and the packet.
    public static func minimumBlockSize(snapLength: Int) -> Int {
        let align = Int(CWirecapLinux_TPACKET_ALIGNMENT)
        func aligned(_ n: Int) -> Int { (n + align - 1) & ~(align - 1) }
        let descriptor = aligned(Int(CWirecapLinux_BLOCK_DESC_SIZE))
        let header = aligned(Int(CWirecapLinux_TPACKET3_HDRLEN) + 16)
        return descriptor + header + vlanReserve + snapLength + align
    }

    /// Rejects sizes that make no sense before any socket is opened, as a value that names the
    /// parameter, the value given and one that would work. Front ends (the command line, the pcap
    /// facade) check their options by building a configuration and calling this.
    public func validate() throws(CaptureError) {
        func refuse(_ error: ConfigurationError) -> CaptureError { .configuration(error) }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        if interface.isEmpty { throw refuse(.missingInterface) }
        if queues < 1 || queues > Self.maximumQueues {
            throw refuse(.outOfRange(.queues, value: queues, allowed: 1...Self.maximumQueues))
        }
        if ring.blockSize <= 0 || ring.blockSize % page != 0 {
            throw refuse(
                .notPageMultiple(.blockSize, value: ring.blockSize, page: page, suggestion: max(page, (ring.blockSize / page + 1) * page)))
        }
        if ring.blockSize > 1 << 30 { throw refuse(.outOfRange(.blockSize, value: ring.blockSize, allowed: page...(1 << 30))) }
        if ring.blockCount < 1 || ring.blockCount > 1 << 20 {
            throw refuse(.outOfRange(.blockCount, value: ring.blockCount, allowed: 1...(1 << 20)))
        }
        if ring.ringBytes > 1 << 40 {
            throw refuse(.ringTooLarge(blockSize: ring.blockSize, blockCount: ring.blockCount, limit: 1 << 40))
        }
        if ring.blockTimeoutMilliseconds < 0 || ring.blockTimeoutMilliseconds > 60_000 {
            throw refuse(.outOfRange(.blockTimeout, value: ring.blockTimeoutMilliseconds, allowed: 0...60_000))
        }
        if snapLength < 1 || snapLength > Self.defaultSnapLength {
            throw refuse(.outOfRange(.snapLength, value: snapLength, allowed: 1...Self.defaultSnapLength))
        }
        if let pool {
            if pool.chunks < 1 || pool.chunks > 1 << 20 {
                throw refuse(.outOfRange(.poolChunks, value: pool.chunks, allowed: 1...(1 << 20)))
            }
            let bytes = pool.chunks * ring.blockSize * queues
            let physical = Int(sysconf(Int32(_SC_PHYS_PAGES))) * page
            if bytes > physical / 10 * 9 {
                throw refuse(.poolTooLarge(chunks: pool.chunks, blockSize: ring.blockSize, queues: queues, bytes: bytes, physical: physical))
            }
        }
        if let offload {
            if !(0...1).contains(offload.threshold) { throw refuse(.notAFraction(.offloadThreshold, value: offload.threshold)) }
            if pool == nil { throw refuse(.offloadNeedsPool) }
            if let groups = offload.groups {
                let listed = groups.flatMap { $0 }
                if listed.sorted() != Array(0..<queues) || groups.contains(where: \.isEmpty) {
                    throw refuse(.buddyGroupsIncomplete(groups, queues: queues))
                }
            }
        }
        if let filter, filter.isEmpty || filter.count > 4096 { throw refuse(.filterLength(filter.count)) }
        let needed = Self.minimumBlockSize(snapLength: snapLength)
        if ring.blockSize < needed {
            throw refuse(
                .blockTooSmall(blockSize: ring.blockSize, needed: needed, snapLength: snapLength, suggestion: (needed + page - 1) / page * page))
        }
    }
}
