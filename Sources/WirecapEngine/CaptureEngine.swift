#if canImport(Glibc)
import Glibc
#endif
import Logging
import WirecapLinux

/// A multi-queue capture on one interface: N fanout member sockets, each with its own
/// TPACKET_V3 ring and its own capture thread.
///
/// `init` brings the whole group up and returns once it is complete and the real filter is in
/// place: from then on every packet the interface sees is counted, either handed to a handler
/// or counted as a capture drop. `start` runs the capture threads; `requestStop` (safe from a
/// signal handler) stops them after they have drained what the kernel already accepted.
public final class CaptureEngine: Sendable {
    public let configuration: CaptureConfiguration
    public let queues: [CaptureQueue]
    public let control: CaptureControl
    public let fanoutGroup: UInt16
    let logger: Logger
    private let threads = ThreadList()

    public init(configuration: CaptureConfiguration, logger: Logger = Logger(label: "wirecap.engine")) throws(CaptureError) {
        try configuration.validate()
        let name = configuration.interface
        let interface: NetworkInterface
        do { interface = try NetworkInterface(named: name) } catch { throw CaptureError(error) }
        if !interface.isUp { throw .interfaceDown(name) }
        guard interface.linkType.carriesEthernetHeaders else {
            throw .unsupportedLinkType(interface: name, arphrd: Int(interface.linkType.rawValue))
        }

        let placement = CPUPlacement(queues: configuration.queues)
        var rings: [RxRing] = []
        for queue in 0..<configuration.queues {
            let ring = try placement.withPreferredNode(placement.nodes[queue]) { () throws(CaptureError) in
                try RxRing(interface: interface, geometry: configuration.ring)
            }
            if configuration.promiscuous { try ring.setPromiscuous(ifindex: interface.index) }
            rings.append(ring)
        }
        fanoutGroup = try Self.joinFanout(rings, configuration: configuration)
        // The group is complete: only now may packets flow, so that none is spread over a
        // partial group. `ret #snaplen` replaces the drop-all filter atomically per socket and
        // makes the kernel copy at most the snap length.
        // A user filter (libpcap returns the snap length for an accepted packet) replaces it the
        // same way, on every member, so the kernel does the filtering for the whole group.
        for ring in rings {
            if let filter = configuration.filter {
                try ring.setFilter(filter)
            } else {
                try ring.setReturnFilter(UInt32(configuration.snapLength))
            }
        }

        self.configuration = configuration
        self.logger = logger
        self.control = try CaptureControl()
        // A chunk holds one retired block, so the chunk size is the block size.
        var pools: [ChunkPool?] = []
        for index in 0..<configuration.queues {
            pools.append(
                try configuration.pool.map { pool throws(CaptureError) in
                    try ChunkPool(
                        queue: index, chunks: pool.chunks, chunkSize: configuration.ring.blockSize, node: placement.nodes[index],
                        lock: pool.lockMemory, logger: logger)
                })
        }
        let groups = Self.buddyGroups(configuration: configuration, placement: placement, pools: pools)
        var queues: [CaptureQueue] = []
        for (index, ring) in rings.enumerated() {
            queues.append(
                CaptureQueue(
                    index: index, cpu: configuration.pinThreads ? placement.cpus[index] : nil, ring: ring, interface: name,
                    snapLength: configuration.snapLength, blockTimeoutMilliseconds: configuration.ring.blockTimeoutMilliseconds,
                    pool: pools[index], group: groups.first { $0.members.contains(index) }))
        }
        self.queues = queues
        // Start every queue's statistics from zero at the moment the group became complete.
        for queue in queues { _ = queue.statistics() }
        logger.debug(
            "capture group ready",
            metadata: ["interface": "\(name)", "queues": "\(configuration.queues)", "fanout_group": "\(fanoutGroup)"])
    }

    /// Replaces the filter of every member while the capture runs (nil: accept everything, cut
    /// to the snap length), with libpcap's race-free swap carried over to a fanout group.
    ///
    /// First every member gets the drop-all filter, then every member the new program, so no
    /// member still runs the old filter once any runs the new one. (libpcap drains the socket's
    /// receive queue in between; a ring socket has none.) Packets the old filter accepted may
    /// still sit in the rings and the pool: the result says, per queue, the sequence number of
    /// the first chunk that can hold only packets the new filter accepted. Every earlier chunk
    /// must be re-checked in user space. The bound is the chunks already filled plus one per ring
    /// block, since each block becomes exactly one chunk. Without a pool, every bound is 0.
    ///
    /// Not concurrently with `requestStop`: a stop shuts the door with the drop-all filter and
    /// this would open it again.
    public func replaceFilter(_ program: [BPFInstruction]?) throws(CaptureError) -> [UInt64] {
        for queue in queues { try queue.ring.setReturnFilter(0) }
        for queue in queues {
            if let program {
                try queue.ring.setFilter(program)
            } else {
                try queue.ring.setReturnFilter(UInt32(configuration.snapLength))
            }
        }
        return queues.map { queue in
            guard let group = queue.group else { return 0 }
            return group.snapshot(of: queue.index).chunksCaptured + UInt64(configuration.ring.blockCount)
        }
    }

    /// Without offloading every queue is a group of its own. With it: the groups given, or one
    /// group per NUMA node, so chunks never cross a node (on one node: all queues together).
    static func buddyGroups(configuration: CaptureConfiguration, placement: CPUPlacement, pools: [ChunkPool?]) -> [BuddyGroup] {
        guard let pool = configuration.pool else { return [] }
        let queues = configuration.queues
        let members: [[Int]]
        if let offload = configuration.offload {
            members = offload.groups ?? Dictionary(grouping: 0..<queues) { placement.nodes[$0] }.keys.sorted().map { node in
                (0..<queues).filter { placement.nodes[$0] == node }
            }
        } else {
            members = (0..<queues).map { [$0] }
        }
        return members.map {
            BuddyGroup(members: $0, queueCount: queues, pools: pools, capacity: pool.chunks, threshold: configuration.offload?.threshold)
        }
    }

    /// The first member asks the kernel for an unused group id (FLAG_UNIQUEID), the others join
    /// it: group ids are per namespace and 16-bit, so a fixed or random id could collide with
    /// another capture's group.
    private static func joinFanout(_ rings: [RxRing], configuration: CaptureConfiguration) throws(CaptureError) -> UInt16 {
        let mode = configuration.fanout.kernelType
        let flags: PacketSocket.FanoutFlags = configuration.rollover ? [.rollover] : []
        do throws(SystemError) {
            try rings[0].socket.joinFanout(group: 0, mode: mode, flags: flags.union(.uniqueID))
            let group = try rings[0].socket.fanoutGroup()
            for ring in rings.dropFirst() {
                try ring.socket.joinFanout(group: group, mode: mode, flags: flags)
            }
            return group
        } catch {
            throw CaptureError(error)
        }
    }

    /// Starts the capture. Without a pool: one capture thread per queue runs its handler on the
    /// ring memory. With a pool: capture threads copy blocks into chunks and one work thread per
    /// queue runs the handler over each chunk's packets. Each thread makes its own handler with
    /// `makeHandler(queueIndex)` and owns it; the loops are specialised for `H`.
    @inlinable
    public func start<H: PacketHandler>(_ makeHandler: @escaping @Sendable (Int) -> H) throws(CaptureError) {
        if configuration.pool != nil {
            try startChunks { PacketsOfChunks(makeHandler($0)) }
            return
        }
        let snapLength = configuration.snapLength
        for queue in queues {
            let control = self.control
            register(
                try PinnedThread.spawn(cpu: queue.cpu) {
                    var consumer = WalkingConsumer(handler: makeHandler(queue.index), snapLength: snapLength)
                    queue.run(consumer: &consumer, control: control)
                })
        }
    }

    /// Pool mode with a handler that sees whole chunks and may keep them (`.keep`, then
    /// `Chunk.recycle()` from any thread).
    @inlinable
    public func startChunks<H: ChunkHandler>(_ makeHandler: @escaping @Sendable (Int) -> H) throws(CaptureError) {
        try startCaptureOnly()
        for queue in queues {
            register(
                try PinnedThread.spawn(cpu: queue.cpu) {
                    var handler = makeHandler(queue.index)
                    queue.work(handler: &handler)
                })
        }
    }

    /// Pool mode's capture threads alone: they fill chunks, and the application pulls them from
    /// each queue's buddy group (`queue.group!.pop(for:waitingUpTo:)`), walks them, marks them
    /// processed and recycles them (the pcap facade reads this way); `startChunks` adds work
    /// threads that do this.
    public func startCaptureOnly() throws(CaptureError) {
        guard configuration.pool != nil else {
            throw .invalidConfiguration("chunks need the ring-buffer pool: set --pool-chunks to 1 or more")
        }
        for queue in queues {
            let control = self.control
            register(
                try PinnedThread.spawn(cpu: queue.cpu) {
                    var consumer = CopyingConsumer(pool: queue.pool!, group: queue.group!)
                    queue.run(consumer: &consumer, control: control)
                })
        }
    }

    @usableFromInline
    func register(_ thread: PinnedThread) { threads.append(thread) }

    /// Asks every capture thread to drain and stop. Async-signal-safe.
    public func requestStop() { control.requestStop() }

    /// Waits until every capture thread has stopped.
    public func wait() { threads.joinAll() }

    /// Stops and waits.
    public func stop() {
        requestStop()
        wait()
    }

    public func statistics() -> CaptureStatistics {
        CaptureStatistics(queues: queues.map { $0.statistics() })
    }

    deinit { stop() }
}

/// The engine's threads, appended by `start` and joined by `wait`, possibly from other threads.
final class ThreadList: @unchecked Sendable {
    // @unchecked: every access goes through `lock`.
    private var threads: [PinnedThread] = []
    private var lock = pthread_mutex_t()

    init() { pthread_mutex_init(&lock, nil) }
    deinit { pthread_mutex_destroy(&lock) }

    func append(_ thread: PinnedThread) {
        pthread_mutex_lock(&lock)
        threads.append(thread)
        pthread_mutex_unlock(&lock)
    }

    func joinAll() {
        pthread_mutex_lock(&lock)
        let all = threads
        pthread_mutex_unlock(&lock)
        for thread in all { thread.join() }
    }
}
