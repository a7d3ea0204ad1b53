#if canImport(Glibc)
import Glibc
#endif
import CWirecapLinux
import Logging
import Synchronization
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
    @usableFromInline package let queues: [ReceiveQueue]
    @usableFromInline package let control: CaptureControl
    /// The kernel fanout group the queues joined; 0 for a single queue, which joins none.
    public let fanoutGroup: UInt16
    let logger: Logger
    @usableFromInline let threads = ThreadList()
    /// Pool mode: every queue's pool and capture queue, and the leases.
    @usableFromInline let exchange: ChunkExchange?
    /// The kernel program every member runs now (nil: `ret #snapLength`), so that a swap the
    /// kernel refuses can put it back.
    let installedFilter: Locked<[BPFInstruction]?>

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
        self.configuration = configuration
        self.installedFilter = Locked(configuration.filter)
        self.logger = logger
        self.control = try CaptureControl()
        // A chunk holds one retired block, so the chunk size is the block size.
        var exchange: ChunkExchange? = nil
        if let pool = configuration.pool {
            var pools: [ChunkPool] = []
            for index in 0..<configuration.queues {
                pools.append(
                    try ChunkPool(
                        queue: index, chunks: pool.chunks, chunkSize: configuration.ring.blockSize, node: placement.nodes[index],
                        lock: pool.lockMemory, logger: logger))
            }
            var lending: [LentBlocks]? = nil
            if pool.zeroCopy {
                do throws(SystemError) {
                    lending = try rings.map { ring throws(SystemError) in
                        try LentBlocks(base: ring.base, blockSize: ring.blockSize, blockCount: ring.blockCount, owner: ring)
                    }
                } catch {
                    throw CaptureError(error)
                }
            }
            exchange = ChunkExchange(
                pools: pools, groups: Self.buddyGroups(configuration: configuration, placement: placement),
                threshold: configuration.offload?.threshold, snapLength: configuration.snapLength, lending: lending)
        }
        self.exchange = exchange
        // The group is complete and the pools are allocated, touched and locked (for large pools
        // that takes a while, and no capture thread runs yet): only now may packets flow, so that
        // none is spread over a partial group and none is dropped waiting for the pools.
        // `ret #snaplen` replaces the drop-all filter atomically per socket and makes the kernel
        // copy at most the snap length.
        // A user filter (libpcap returns the snap length for an accepted packet) replaces it the
        // same way, on every member, so the kernel does the filtering for the whole group.
        for ring in rings {
            if let filter = configuration.filter {
                try ring.setFilter(filter)
            } else {
                try ring.setReturnFilter(UInt32(configuration.snapLength))
            }
        }

        var queues: [ReceiveQueue] = []
        for (index, ring) in rings.enumerated() {
            queues.append(
                ReceiveQueue(
                    index: index, cpu: configuration.pinThreads ? placement.cpus[index] : nil, ring: ring, interface: name,
                    snapLength: configuration.snapLength, blockTimeoutMilliseconds: configuration.ring.blockTimeoutMilliseconds,
                    stopWaitMilliseconds: Self.stopWait(configuration.pool), exchange: exchange))
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
    ///
    /// If the kernel refuses the new program on any member (longer than its 4096 instructions,
    /// over `optmem_max`, not valid BPF), every member gets the previous program back and the
    /// error is thrown: the capture goes on as before instead of dropping everything uncounted.
    public func replaceFilter(_ program: [BPFInstruction]?) throws(CaptureError) -> [UInt64] {
        try installedFilter.withLock { installed throws(CaptureError) in
            do throws(CaptureError) {
                for queue in queues { try queue.ring.setReturnFilter(0) }
                for queue in queues { try install(program, on: queue) }
            } catch {
                var restored = 0
                for queue in queues {
                    do throws(CaptureError) {
                        try install(installed, on: queue)
                        restored += 1
                    } catch {}
                }
                logger.warning(
                    "filter swap refused; previous filter restored",
                    metadata: ["error": "\(error)", "queues_restored": "\(restored) of \(queues.count)"])
                throw error
            }
            installed = program
        }
        return queues.map { queue in
            exchange?.sequenceBound(of: queue.index, ringBlocks: configuration.ring.blockCount) ?? 0
        }
    }

    /// The pool's stop wait, within 0 ms and a day, so that it converts to nanoseconds safely.
    static func stopWait(_ pool: PoolConfiguration?) -> Int {
        min(max(0, pool?.stopWaitMilliseconds ?? 0), 86_400_000)
    }

    private func install(_ program: [BPFInstruction]?, on queue: ReceiveQueue) throws(CaptureError) {
        if let program {
            try queue.ring.setFilter(program)
        } else {
            try queue.ring.setReturnFilter(UInt32(configuration.snapLength))
        }
    }

    /// Without offloading every queue is a group of its own. With it: the groups given, or one
    /// group per NUMA node, so chunks never cross a node (on one node: all queues together).
    static func buddyGroups(configuration: CaptureConfiguration, placement: CPUPlacement) -> [[Int]] {
        let queues = configuration.queues
        guard let offload = configuration.offload else { return (0..<queues).map { [$0] } }
        return offload.groups ?? Dictionary(grouping: 0..<queues) { placement.nodes[$0] }.keys.sorted().map { node in
            (0..<queues).filter { placement.nodes[$0] == node }
        }
    }

    /// The first member asks the kernel for an unused group id (FLAG_UNIQUEID), the others join
    /// it (a single queue joins none, and the group is 0): group ids are per namespace and 16-bit, so a fixed or random id could collide with
    /// another capture's group.
    private static func joinFanout(_ rings: [RxRing], configuration: CaptureConfiguration) throws(CaptureError) -> UInt16 {
        // One queue needs no group: a member makes the kernel hash every packet (a flow
        // dissection on the receiving core) to pick among itself. 0: no group.
        if rings.count == 1 { return 0 }
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
    ///
    /// An engine starts once: a second start (of any kind) throws `alreadyStarted`, since two
    /// threads on one ring would take its blocks out of order.
    @inlinable
    public func start<H: PacketHandler>(_ makeHandler: @escaping @Sendable (Int) -> H) throws(CaptureError) {
        if configuration.pool != nil {
            try startWorkers { PacketsOfChunks(makeHandler($0)) }
            return
        }
        try claimStart()
        let snapLength = configuration.snapLength
        for queue in queues {
            let control = self.control
            try spawn(cpu: queue.cpu) {
                var consumer = WalkingConsumer(handler: makeHandler(queue.index), snapLength: snapLength)
                queue.run(consumer: &consumer, control: control)
            }
        }
    }

    /// Pool mode with work threads: one per queue, each running `handler` on every chunk its
    /// queue is lent (its own, and those buddies offloaded to it) until the capture has stopped
    /// and drained. The handler owns each lease: it may keep the chunk (`chunk.keep()`).
    ///
    /// With the hybrid pool and no offloading, a work thread with nothing waiting takes the ring's
    /// next block itself (`RingCursor`), so that one thread wakes per block, not two.
    @inlinable
    public func startWorkers<H: ChunkHandler>(_ makeHandler: @escaping @Sendable (Int) -> H) throws(CaptureError) {
        guard exchange != nil else { throw .configuration(.chunksNeedPool) }
        try claimStart()
        // Before the capture threads start: a work thread's place in the ring's wait queue comes
        // before its capture thread's.
        let sleepers = queues.map { workSleeper(for: $0) }
        try spawnCaptureThreads()
        for queue in queues {
            let engine = self
            let sleeper = sleepers[queue.index]
            try spawn(cpu: queue.cpu) {
                // SCHED_BATCH: the capture thread wakes it on the CPU they share, and it then waits
                // for the capture thread to sleep instead of preempting it at once. Preempted, the
                // capture thread had to be switched back in just to go to sleep: twice the
                // switches per chunk, and with the ring unwatched meanwhile.
                _ = CWirecapLinux_make_current_thread_batch()
                var handler = makeHandler(queue.index)
                if let sleeper {
                    engine.serveLoop(queue: queue, sleeper: sleeper, handler: &handler)
                } else {
                    while let chunk = engine.nextChunk(for: queue.index, waiting: .untilCaptureEnds) {
                        handler.handle(chunk)
                    }
                }
                queue.counters.recordWorkCPU(seconds: CWirecapLinux_thread_cpu_seconds())
            }
        }
    }

    /// Pool mode's capture threads alone: they fill chunks, and the application pulls them
    /// (`nextChunk(for:waiting:)`), on threads of its own (the pcap facade reads this way).
    public func startCapture() throws(CaptureError) {
        guard exchange != nil else {
            throw .configuration(.chunksNeedPool)
        }
        try claimStart()
        try spawnCaptureThreads()
    }

    /// Pool mode: one capture thread per queue, filling chunks (the start is claimed).
    @usableFromInline
    func spawnCaptureThreads() throws(CaptureError) {
        guard let exchange else { throw .configuration(.chunksNeedPool) }
        for queue in queues {
            let control = self.control
            try spawn(cpu: queue.cpu) {
                var consumer = PoolConsumer(exchange: exchange, queue: queue.index, cursor: queue.cursor)
                queue.run(consumer: &consumer, control: control)
            }
        }
    }

    /// Pool mode: the next filled chunk for `queue`'s consumer (its own, or one a buddy
    /// offloaded to it), lent until the lease ends; nil when none came in time, without a pool,
    /// or (`.untilCaptureEnds`) once the capture has stopped and every chunk was lent.
    @inlinable
    public func nextChunk(for queue: Int, waiting: ChunkWait) -> ChunkLease? {
        exchange?.lease(for: queue, waiting: waiting)
    }

    /// Whether a chunk is waiting for some queue's consumer (pool mode).
    public var hasWaitingChunks: Bool { exchange?.hasBacklog ?? false }

    /// Whether every capture thread has stopped after draining its ring.
    public var captureEnded: Bool { threads.started && (exchange?.capturesFinished ?? true) }

    /// Signals `event` whenever `queue`'s waiting chunks go from none to some (its own or ones a
    /// buddy offloaded to it), and once its buddy group's captures have ended, until
    /// `stopNotifying`: for readers that sleep in poll (the facade's readers, whose descriptor
    /// it is). Several events may watch one queue.
    public func notifyChunks(_ event: EventFD, for queue: Int) { exchange?.addNotifier(event, for: queue) }

    public func stopNotifying(_ event: EventFD, for queue: Int) { exchange?.removeNotifier(event, for: queue) }

    /// Whether a chunk is waiting for `queue`'s consumer (pool mode).
    public func hasWaitingChunks(for queue: Int) -> Bool { (exchange?.backlog(of: queue) ?? 0) > 0 }

    /// Whether every capture thread of `queue`'s buddy group has stopped after draining its
    /// ring: nothing more will come to `queue`'s consumer once its waiting chunks are taken.
    public func captureEnded(for queue: Int) -> Bool { threads.started && (exchange?.groupOfQueue[queue].capturesFinished ?? true) }

    @usableFromInline
    func claimStart() throws(CaptureError) {
        if !threads.markStarted() { throw .alreadyStarted }
    }

    @usableFromInline
    func spawn(cpu: Int?, _ body: @escaping @Sendable () -> Void) throws(CaptureError) {
        threads.append(try PinnedThread.spawn(cpu: cpu, body))
    }

    /// A descriptor that becomes readable once a stop is asked for (`requestStop`, or the
    /// capture's own -c), and stays so: for a main loop that sleeps in poll beside its signals.
    public var stopDescriptor: Int32 { control.wakeFD }

    /// Asks every capture thread to drain and stop. Async-signal-safe.
    public func requestStop() { control.requestStop() }

    /// Waits until every capture thread has stopped.
    public func wait() { threads.joinAll() }

    /// Stops and waits.
    public func stop() {
        requestStop()
        wait()
    }

    /// The first queue whose socket the kernel posted an error on (ENETDOWN: the interface
    /// went down), and the error: cheap enough to ask on every turn of a main loop.
    public var socketError: (queue: Int, error: Errno)? {
        for queue in queues {
            if let error = queue.counters.socketError { return (queue.index, error) }
        }
        return nil
    }

    /// How many errors the kernel has posted on the member sockets so far, all queues together.
    public var socketErrorCount: UInt64 {
        queues.reduce(0) { $0 + $1.counters.socketErrors.load(ordering: .acquiring) }
    }

    public func statistics() -> CaptureStatistics {
        CaptureStatistics(queues: queues.map { $0.statistics() })
    }

    deinit { stop() }
}

/// The engine's threads, appended by `start` and joined by `wait`, possibly from several threads
/// at once: each thread is joined exactly once (see `PinnedThread.join`).
@usableFromInline
final class ThreadList: Sendable {
    private struct State {
        var started = false
        var threads: [PinnedThread] = []
    }
    private let state = Locked(State())

    init() {}

    /// True the first time only.
    @usableFromInline
    func markStarted() -> Bool {
        state.withLock { state in
            if state.started { return false }
            state.started = true
            return true
        }
    }

    var started: Bool { state.withLock { $0.started } }

    @usableFromInline
    func append(_ thread: PinnedThread) { state.withLock { $0.threads.append(thread) } }

    func joinAll() {
        for thread in state.withLock({ $0.threads }) { thread.join() }
    }
}
