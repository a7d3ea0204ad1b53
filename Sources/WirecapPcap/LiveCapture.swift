#if canImport(Glibc)
import Glibc
#endif
import CWirecapLinux
import Foundation
import Synchronization
import WirecapEngine
import WirecapLinux

extension PcapHandle {
    /// What pcap_create, the pcap_set_* calls and pcap_activate set, plus the engine's queues,
    /// pool and offloading. The defaults behave like pcap_open_live with tcpdump's settings: one
    /// queue, promiscuous, 1 s timeout, microsecond timestamps.
    public struct LiveOptions: Sendable {
        public var snapLength = 262_144
        public var promiscuous = true
        /// How long `dispatch` waits for a first packet, as pcap_set_timeout.
        public var timeoutMilliseconds = 1000
        /// Kernel ring bytes per queue, as pcap_set_buffer_size.
        public var bufferSize = 4 << 20
        /// Bytes per ring block, and so per pool chunk (a page multiple that holds one
        /// snap-length packet); nil: the smallest power of two from 64 KiB that does. libpcap has
        /// no such knob; the lab sets it to give every engine the same geometry.
        public var blockSize: Int? = nil
        /// Hand packets over as soon as they arrive (1 ms block timeout) rather than in batches,
        /// as pcap_set_immediate_mode.
        public var immediate = false
        /// As pcap_set_tstamp_precision: the unit of `next()`'s fraction and of dumped files.
        public var precision: TimestampPrecision = .micro
        /// Fanout members (queues), each with its ring, capture thread and pool.
        public var queues = 1
        public var fanout: FanoutMode = .hash
        /// Chunks per queue of the ring-buffer pool.
        public var poolChunks = 64
        /// Buddy offloading threshold T in 0...1 (nil: off).
        public var offloadThreshold: Double? = nil
        /// A filter expression in tcpdump's syntax, installed before the first packet flows (the
        /// same as `setFilter` right after the open, without a window where everything passes).
        public var filter: String? = nil

        public init() {}

        /// Refuses sizes that make no sense before anything is opened, naming the option and a
        /// value that works: the facade's own options here, the rest by the engine's
        /// `CaptureConfiguration.validate()` on the configuration `openLive` would open, so there
        /// is one set of checks. `device` nil: the sizes alone (`openLive` checks the device).
        public func validate(device: String? = nil) throws(PcapError) {
            if timeoutMilliseconds < 0 {
                throw PcapError("LiveOptions.timeoutMilliseconds \(timeoutMilliseconds) is negative: use 0 or more")
            }
            if bufferSize < 1 {
                throw PcapError("LiveOptions.bufferSize \(bufferSize) is out of range: give the ring's bytes per queue (4 MiB is typical)")
            }
            do {
                try captureConfiguration(device: device ?? "unnamed").validate()
            } catch {
                throw PcapError(engine: error)
            }
        }

        /// The engine configuration `openLive(device:options:)` opens with these options, before
        /// the filter is compiled for the device. Nonsense values pass through unchanged, for
        /// `validate` to name; nothing here traps on them.
        public func captureConfiguration(device: String) -> CaptureConfiguration {
            // A block holds one full snap-length packet; the ring is the asked-for buffer size.
            let page = Int(sysconf(Int32(_SC_PAGESIZE)))
            let snap = min(max(snapLength, 1), CaptureConfiguration.defaultSnapLength)
            let minimum = (CaptureConfiguration.minimumBlockSize(snapLength: snap) + page - 1) / page * page
            var block = 1 << 16
            while block < minimum { block <<= 1 }
            if let blockSize { block = blockSize }
            let geometry = RingGeometry(
                blockSize: block, blockCount: block > 0 ? max(2, bufferSize / block) : 2,
                blockTimeoutMilliseconds: immediate ? 1 : min(max(timeoutMilliseconds, 1), 8))
            return CaptureConfiguration(
                interface: device, queues: queues, fanout: fanout, ring: geometry, snapLength: snapLength,
                promiscuous: promiscuous, pool: PoolConfiguration(chunks: poolChunks),
                offload: offloadThreshold.map { OffloadConfiguration(threshold: $0) })
        }
    }
}

/// The live side of `PcapHandle`: the engine's N fanout queues with the ring-buffer pool (and,
/// if asked, buddy offloading), read the libpcap way, by calling `dispatch` or `loop` on one
/// thread.
///
/// The capture threads copy each retired block into a chunk; `dispatch` pulls filled chunks from
/// the queues in turn and walks them with the handler, so the application's thread is the work
/// thread. Filters and the direction run in the kernel on every queue.
final class LiveCapture: @unchecked Sendable {
    // @unchecked: everything mutable but `breaking` belongs to the reading thread (the handle's
    // one-thread-at-a-time rule); `breaking` is atomic.
    let device: String
    let options: PcapHandle.LiveOptions
    let engine: CaptureEngine
    /// `inject`'s socket, bound to the device without bypassing the qdisc, as pcap_inject: other
    /// captures on the device see what it sends as outgoing. Opened with the handle, in the
    /// namespace of the thread that opened it.
    private let injector: PacketSocket
    /// The network namespace the device lives in (the opening thread's): compiling a filter for
    /// the device and reading its counters must happen there, whichever thread asks.
    private let namespace: NetworkNamespace
    private let ifindex: Int32
    private let interfaceDropsAtOpen: UInt64
    /// A chunk read part-way by an earlier `dispatch` (a count cut it), and the next packet.
    private var cursor: ChunkLease? = nil
    /// Where the held chunk resumes; 0 when none is held (a chunk walked to its end is recycled).
    private var cursorNext = 0
    private var rotation = 0
    private let breaking = Atomic<Bool>(false)
    /// How many socket errors (`CaptureEngine.socketErrorCount`) `dispatch` has reported.
    private var socketErrorsReported: UInt64 = 0
    var nonblocking = false
    private var direction = PcapDirection.inout
    /// The user's kernel program, without the direction test.
    private var kernelFilter: [BPFInstruction]? = nil
    /// After a filter swap: the new filter, for user space, and per queue the sequence number
    /// below which a chunk may hold packets the old filter let in.
    private var recheck: (filter: UserSpaceFilter, below: [UInt64])? = nil
    /// Behind the selectable descriptor, made when it is first asked for.
    private var notifier: EventFD? = nil
    private var closed = false

    init(device: String, options: PcapHandle.LiveOptions) throws(PcapError) {
        try options.validate(device: device)
        let snap = options.snapLength
        var configuration = options.captureConfiguration(device: device)
        let ifindex = (try? NetworkInterface(named: device))?.index ?? 0
        // The engine says what is wrong with a device first; a filter is compiled for one that
        // exists.
        if ifindex != 0, let filter = options.filter {
            kernelFilter = try BPFCompiler.compile(filter, snapLength: snap, device: device)
            configuration.filter = kernelFilter
        }
        let engine: CaptureEngine
        do {
            namespace = try NetworkNamespace.current()
            engine = try CaptureEngine(configuration: configuration)
            injector = try PacketSocket(interface: device)
            try injector.bind(interfaceIndex: ifindex)
            interfaceDropsAtOpen = try Self.interfaceDrops(ifindex: ifindex, device: device)
            try engine.startCapture()
        } catch let error as CaptureError {
            throw PcapError(engine: error)
        } catch let error as SystemError {
            throw PcapError(engine: CaptureError(error))
        } catch {
            throw error as? PcapError ?? PcapError("\(error)")
        }
        self.engine = engine
        self.device = device
        self.options = options
        self.ifindex = ifindex
    }

    deinit { close() }

    private func checkOpen() throws(PcapError) {
        if closed { throw PcapError.closed }
    }

    // MARK: reading

    /// Processes up to `count` packets (all that are there when `count` <= 0), waiting up to the
    /// timeout for the first unless non-blocking; 0 on time-out, as pcap_dispatch.
    func dispatch<H: PacketHandler>(count: Int, handler: inout H) throws(PcapError) -> LoopResult {
        try checkOpen()
        // An error the kernel posted on a queue's socket since the last call is reported once,
        // with libpcap's words for the interface going down; the packets already captured are
        // still there for the next call.
        let socketErrors = engine.socketErrorCount
        if socketErrors > socketErrorsReported {
            socketErrorsReported = socketErrors
            if let (queue, error) = engine.socketError {
                throw PcapError(error == .networkDown ? "The interface went down" : "queue \(queue) of \(device): \(error)")
            }
        }
        // Reset before looking, so a chunk pushed from now on signals again (see `BuddyGroup`).
        notifier?.reset()
        defer { if let notifier, somethingLeft() { notifier.signal() } }
        let limit = count <= 0 ? Int.max : count
        var processed = 0
        let wait = !nonblocking
        let deadline = CWirecapLinux_monotonic_ns() + UInt64(options.timeoutMilliseconds) * 1_000_000
        var current = cursor.take()
        var next = cursorNext
        defer {
            cursor = current.take()
            cursorNext = next
        }
        while processed < limit {
            if breaking.exchange(false, ordering: .acquiringAndReleasing) {
                return LoopResult(processed: processed, interrupted: true)
            }
            let lease: ChunkLease
            if let held = current.take() {
                lease = held
            } else if let fresh = takeChunk(waiting: wait && processed == 0 && CWirecapLinux_monotonic_ns() < deadline) {
                lease = fresh
                next = 0
            } else {
                if !wait || processed > 0 || CWirecapLinux_monotonic_ns() >= deadline { break }
                continue
            }
            let owner = lease.owner
            let packets = lease.packetCount
            let block = lease.block
            let walked: Int
            if let recheck, lease.sequence < recheck.below[owner] {
                (walked, processed) = withUnsafeMutablePointer(to: &handler) { target in
                    var rechecking = RecheckingHandler(target: target, filter: recheck.filter)
                    let walked = FacadeWalk.walk(
                        chunk: block, packets: packets, owner: owner, snapLength: options.snapLength, first: next, limit: limit - processed,
                        handler: &rechecking)
                    return (walked, processed + rechecking.passed)
                }
            } else {
                walked = FacadeWalk.walk(
                    chunk: block, packets: packets, owner: owner, snapLength: options.snapLength, first: next, limit: limit - processed,
                    handler: &handler)
                processed += walked
            }
            if next + walked >= packets {
                lease.recycle()
                next = 0
            } else {
                current = consume lease
                next += walked
            }
        }
        return LoopResult(processed: processed, interrupted: false)
    }

    /// A filled chunk from the next queue that has one; with `waiting`, waits up to 1 ms.
    private func takeChunk(waiting: Bool) -> ChunkLease? {
        let queues = engine.queues.count
        for step in 0..<queues {
            let q = (rotation + step) % queues
            if let lease = engine.nextChunk(for: q, waiting: .none) {
                rotation = (q + 1) % queues
                return lease
            }
        }
        if waiting, let lease = engine.nextChunk(for: rotation, waiting: .upTo(.milliseconds(1))) {
            return lease
        }
        return nil
    }

    /// Whether a chunk is half read or waiting in a queue.
    private func somethingLeft() -> Bool {
        cursorNext > 0 || engine.hasWaitingChunks
    }

    /// Processes packets until `count` have been (forever when `count` <= 0) or `breakLoop()`.
    func loop<H: PacketHandler>(count: Int, handler: inout H) throws(PcapError) -> LoopResult {
        var processed = 0
        while count <= 0 || processed < count {
            let result = try dispatch(count: count <= 0 ? -1 : count - processed, handler: &handler)
            processed += result.processed
            if result.interrupted { return LoopResult(processed: processed, interrupted: true) }
        }
        return LoopResult(processed: processed, interrupted: false)
    }

    /// Makes a running `loop` or `dispatch` return, from any thread or a signal handler: one
    /// atomic store and nothing else. Waking the reader would take the group's lock, which a
    /// signal handler must never do (the interrupted thread may hold it); the reader waits for
    /// chunks at most 1 ms at a time and checks the flag between waits.
    func breakLoop() {
        breaking.store(true, ordering: .releasing)
    }

    // MARK: filter and direction

    /// Swaps the kernel filter on every queue while capturing, as libpcap does on one socket:
    /// drop-all everywhere, then the new program everywhere (`CaptureEngine.replaceFilter`); the
    /// packets the old filter let in, still in the rings, the pool or a half-read chunk, are then
    /// re-checked in user space with the new filter as they are read. The kernel program is
    /// compiled for the device (VLAN through the kernel's BPF extensions); the user-space one
    /// for frames with their tags inline, as the engine hands them over.
    func setFilter(_ expression: String, optimize: Bool) throws(PcapError) {
        try checkOpen()
        let user = try BPFCompiler.compile(expression, snapLength: options.snapLength, optimize: optimize)
        let kernel = try inDeviceNamespace { () throws(PcapError) in
            try BPFCompiler.compile(expression, snapLength: options.snapLength, device: device, optimize: optimize)
        }
        try install(kernel: kernel, recheckingWith: UserSpaceFilter(user))
    }

    /// Direction changes apply to what the kernel accepts from now on; the packets already in the
    /// rings are not re-tested by direction (libpcap tests it per packet in user space; here the
    /// kernel never copies the other direction).
    func setDirection(_ direction: PcapDirection) throws(PcapError) {
        try checkOpen()
        self.direction = direction
        try install(kernel: kernelFilter, recheckingWith: recheck?.filter)
    }

    private func install(kernel: [BPFInstruction]?, recheckingWith filter: UserSpaceFilter?) throws(PcapError) {
        let program = direction.kernelProgram(filter: kernel, snapLength: options.snapLength)
        let below: [UInt64]
        do {
            below = try engine.replaceFilter(program)
        } catch {
            throw PcapError(engine: error)
        }
        kernelFilter = kernel
        if let filter {
            // Indexed by owner queue: the engine's queue indices are 0..<queues.
            recheck = (filter, below)
        }
    }

    // MARK: the rest of pcap_t

    func stats() throws(PcapError) -> PcapStatistics {
        try checkOpen()
        let s = engine.statistics()
        let interface = try inDeviceNamespace { () throws(PcapError) in try Self.interfaceDrops(ifindex: ifindex, device: device) }
        return PcapStatistics(
            received: UInt32(truncatingIfNeeded: s.offered), dropped: UInt32(truncatingIfNeeded: s.captureDrops + s.deliveryDrops),
            interfaceDropped: UInt32(truncatingIfNeeded: interface &- interfaceDropsAtOpen))
    }

    /// What libpcap counts as interface drops: rx_missed_errors + rx_fifo_errors.
    static func interfaceDrops(ifindex: Int32, device: String) throws(PcapError) -> UInt64 {
        var counters = CWirecapLinux_link_counters()
        guard CWirecapLinux_read_link_counters(ifindex, &counters) == 0 else {
            throw PcapError("reading the counters of \(device) (rtnetlink): \(String(cString: strerror(errno)))")
        }
        return counters.rx_missed_errors &+ counters.rx_fifo_errors
    }

    /// Sends one frame, waiting out a full device queue; a frame the kernel refuses is an error.
    func inject(_ frame: [UInt8]) throws(PcapError) -> Int {
        try checkOpen()
        while true {
            let sent = frame.withUnsafeBytes { bytes in Result { () throws(SystemError) in try injector.send(bytes) } }
            switch sent {
            case .success(let count):
                return count
            case .failure(let error) where error.isBusy:
                sched_yield()
            case .failure(let error):
                let reason =
                    error.errno == .messageTooLong ? "over the MTU"
                    : error.errno == .invalidArgument && frame.count < 14 ? "shorter than an Ethernet header" : "\(error.errno)"
                throw PcapError("the kernel refused a \(frame.count)-byte frame on \(device): \(reason)")
            }
        }
    }

    func selectableFileDescriptor() throws(PcapError) -> Int32 {
        try checkOpen()
        if let notifier { return notifier.descriptor }
        let event: EventFD
        do { event = try EventFD() } catch { throw PcapError(engine: .system(error)) }
        notifier = event
        engine.notifyChunks(event)
        // Chunks that arrived before anyone asked must wake a poll too.
        if somethingLeft() { event.signal() }
        return event.descriptor
    }

    /// Runs `body` in the device's network namespace, on this thread, and comes back. Skips the
    /// switch when the thread is already there (the common case, and the only one without
    /// CAP_SYS_ADMIN).
    private func inDeviceNamespace<T>(_ body: () throws(PcapError) -> T) throws(PcapError) -> T {
        do {
            return try namespace.run(body)
        } catch let error as PcapError {
            throw error
        } catch {
            throw PcapError("cannot enter the network namespace of \(device): \(error)")
        }
    }

    // MARK: closing

    /// Stops the capture threads (after draining) and releases the rings. Idempotent.
    func close() {
        guard !closed else { return }
        closed = true
        engine.requestStop()
        // The capture threads may wait for chunks while draining: give every chunk back.
        cursor.take()?.recycle()
        cursorNext = 0
        // Chunks nobody read are discarded, as pcap_close discards what is left in the ring.
        while engine.hasWaitingChunks || !engine.captureEnded {
            for q in engine.queues.indices {
                while let lease = engine.nextChunk(for: q, waiting: .upTo(.milliseconds(1))) { lease.recycle() }
            }
        }
        engine.wait()
        engine.notifyChunks(nil)
        notifier = nil
    }
}
