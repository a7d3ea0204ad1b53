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
        /// Keep a libpcap handle on the device, opened with the capture, only to compile filters
        /// for its kernel (`BPFCompiler.KeptCompiler`), so that `setFilter` works after the
        /// process gave up CAP_NET_RAW. Costs one more socket on the device, which drops every
        /// packet at its filter. libwirecap-pcap.so sets it: tcpdump sets its filter after
        /// dropping root when it does not write a file.
        public var keepsFilterCompiler = false

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

        /// The memory a live handle with these options holds, per queue and in all: the kernel
        /// ring (`bufferSize` rounded to whole blocks) and the pool (`poolChunks` chunks of one
        /// block each), which is touched at open and locked in memory where the limit allows
        /// (always as root). With the defaults the block is 512 KiB (it must hold one packet of
        /// the 262,144-byte snap length), so each queue holds a 4 MiB ring and a 32 MiB pool: a
        /// 2-queue handle holds 72 MiB, 64 MiB of it locked. A smaller `snapLength` (e.g. 65,535:
        /// 128 KiB blocks, 8 MiB of pool) or `poolChunks` shrinks the pool; a smaller
        /// `blockSize` too, as long as one snap-length packet fits.
        public var memory: (ringBytesPerQueue: Int, poolBytesPerQueue: Int, total: Int) {
            let ring = captureConfiguration(device: "unnamed").ring
            let ringBytes = ring.blockSize * ring.blockCount
            let poolBytes = ring.blockSize * poolChunks
            return (ringBytes, poolBytes, (ringBytes + poolBytes) * queues)
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

/// The live side of `PcapHandle`, shared by its readers: the engine's N fanout queues with the
/// ring-buffer pool (and, if asked, buddy offloading), the filter and direction every queue
/// runs in the kernel, `inject`'s socket, and the counters.
///
/// The capture threads copy each retired block into a chunk; readers (`LiveReader`: the
/// handle's own, which reads every queue, and one per queue, `PcapHandle.queues`) pull filled
/// chunks and walk them on the application's threads, which are the work threads.
final class LiveCapture: @unchecked Sendable {
    // @unchecked: the filter state is behind its mutex, everything else is immutable or the
    // engine's own (thread-safe).
    let device: String
    let options: PcapHandle.LiveOptions
    /// The engine, until `close()` lets it go (its sockets, rings and pools with it): read only
    /// by calls the handles' gates let in, which close first.
    var engine: CaptureEngine { engineStorage.unsafelyUnwrapped }
    private var engineStorage: CaptureEngine?
    /// `inject`'s socket, bound to the device without bypassing the qdisc, as pcap_inject: other
    /// captures on the device see what it sends as outgoing. Opened with the handle, in the
    /// namespace of the thread that opened it.
    private var injector: PacketSocket?
    /// The network namespace the device lives in (the opening thread's): compiling a filter for
    /// the device and reading its counters must happen there, whichever thread asks.
    private let namespace: NetworkNamespace
    private let ifindex: Int32
    private let interfaceDropsAtOpen: UInt64

    /// What every queue filters with, and what readers re-check after a swap.
    private struct FilterState {
        var direction = PcapDirection.inout
        /// The user's kernel program, without the direction test.
        var kernelFilter: [BPFInstruction]? = nil
        /// After a filter swap: the new filter, for user space, and per queue the sequence
        /// number below which a chunk may hold packets the old filter let in.
        var recheck: (filter: UserSpaceFilter, below: [UInt64])? = nil
    }
    /// Read once per chunk by every reader, written by `setFilter`/`setDirection` (which one
    /// thread at a time runs: the lock also orders two swaps from two readers).
    private let filterState: Locked<FilterState>
    /// `LiveOptions.keepsFilterCompiler`'s handle, or nil.
    private let keptCompiler: BPFCompiler.KeptCompiler?

    init(device: String, options: PcapHandle.LiveOptions) throws(PcapError) {
        try options.validate(device: device)
        let snap = options.snapLength
        var configuration = options.captureConfiguration(device: device)
        let ifindex = (try? NetworkInterface(named: device))?.index ?? 0
        var state = FilterState()
        // The engine says what is wrong with a device first; a filter is compiled for one that
        // exists.
        if ifindex != 0, let filter = options.filter {
            state.kernelFilter = try BPFCompiler.compile(filter, snapLength: snap, device: device)
            configuration.filter = state.kernelFilter
        }
        filterState = Locked(state)
        keptCompiler = options.keepsFilterCompiler && ifindex != 0 ? BPFCompiler.KeptCompiler(device: device, snapLength: snap) : nil
        let engine: CaptureEngine
        do {
            namespace = try NetworkNamespace.current()
            engine = try CaptureEngine(configuration: configuration)
            let injector = try PacketSocket(interface: device)
            try injector.bind(interfaceIndex: ifindex)
            self.injector = injector
            interfaceDropsAtOpen = try Self.interfaceDrops(ifindex: ifindex, device: device)
            try engine.startCapture()
        } catch let error as CaptureError {
            throw PcapError(engine: error)
        } catch let error as SystemError {
            throw PcapError(engine: CaptureError(error))
        } catch {
            throw error as? PcapError ?? PcapError("\(error)")
        }
        engineStorage = engine
        self.device = device
        self.options = options
        self.ifindex = ifindex
    }

    var queueCount: Int { engine.queues.count }

    /// Readers not yet released: the handle's and its queues'. The last one to go closes the
    /// capture, so a reader still inside a read (a close called from its own handler defers its
    /// release to the end of that read) never finds the engine gone.
    private let readersOpen = Atomic<Int>(0)

    /// A reader was made on this capture.
    func readerOpened() { readersOpen.add(1, ordering: .relaxed) }

    /// A reader has been released; the last one closes the capture.
    func readerReleased() {
        if readersOpen.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 { close() }
    }

    /// The user-space filter a chunk of `owner` with `sequence` must be re-checked with: set
    /// when the chunk may hold packets an earlier filter let in. One lock per chunk.
    @inline(__always)
    func recheckFilter(owner: Int, sequence: UInt64) -> UserSpaceFilter? {
        filterState.withLock { state in
            guard let recheck = state.recheck, sequence < recheck.below[owner] else { return nil }
            return recheck.filter
        }
    }

    // MARK: filter and direction

    /// Swaps the kernel filter on every queue while capturing, as libpcap does on one socket:
    /// drop-all everywhere, then the new program everywhere (`CaptureEngine.replaceFilter`); the
    /// packets the old filter let in, still in the rings, the pool or a half-read chunk, are then
    /// re-checked in user space with the new filter as they are read. The kernel program is
    /// compiled for the device (VLAN through the kernel's BPF extensions, which needs the
    /// privilege to open the device: without it this fails with a message that says so, rather
    /// than installing a program that tests VLAN tags where the kernel has removed them); the
    /// user-space one for frames with their tags inline, as the engine hands them over.
    func setFilter(_ expression: String, optimize: Bool, netmask: UInt32) throws(PcapError) {
        let user = try BPFCompiler.compile(expression, snapLength: options.snapLength, optimize: optimize, netmask: netmask)
        let kernel: [BPFInstruction]
        if let keptCompiler {
            kernel = try keptCompiler.compile(expression, optimize: optimize, netmask: netmask)
        } else {
            kernel = try inDeviceNamespace { () throws(PcapError) in
                try BPFCompiler.compileLive(expression, snapLength: options.snapLength, device: device, optimize: optimize, netmask: netmask)
            }
        }
        try filterState.withLock { (state) throws(PcapError) in
            try install(kernel: kernel, recheckingWith: UserSpaceFilter(user), in: &state)
        }
    }

    /// Installs a program compiled elsewhere (pcap_setfilter with a `bpf_program` that did not
    /// come from this capture's compiler): the same swap, the one program in the kernel and in
    /// user space. It sees frames with their VLAN tags inline in user space but, in the kernel,
    /// after the kernel stripped them, so its tests of a tag match only in the re-check.
    func setFilter(program: [BPFInstruction]) throws(PcapError) {
        guard !program.isEmpty else { throw PcapError("a filter program needs at least one instruction") }
        try filterState.withLock { (state) throws(PcapError) in
            try install(kernel: program, recheckingWith: UserSpaceFilter(program), in: &state)
        }
    }

    /// Direction changes apply to what the kernel accepts from now on; the packets already in the
    /// rings are not re-tested by direction (libpcap tests it per packet in user space; here the
    /// kernel never copies the other direction).
    func setDirection(_ direction: PcapDirection) throws(PcapError) {
        try filterState.withLock { (state) throws(PcapError) in
            state.direction = direction
            try install(kernel: state.kernelFilter, recheckingWith: state.recheck?.filter, in: &state)
        }
    }

    private func install(kernel: [BPFInstruction]?, recheckingWith filter: UserSpaceFilter?, in state: inout FilterState) throws(PcapError) {
        let program = state.direction.kernelProgram(filter: kernel, snapLength: options.snapLength)
        let below: [UInt64]
        do {
            below = try engine.replaceFilter(program)
        } catch {
            throw PcapError(engine: error)
        }
        state.kernelFilter = kernel
        if let filter {
            // Indexed by owner queue: the engine's queue indices are 0..<queues.
            state.recheck = (filter, below)
        }
    }

    // MARK: the rest of pcap_t

    /// libpcap's counters for the whole capture (`queue` nil) or one queue. The interface's
    /// own drops belong to the device, so every reader reports them whole.
    func stats(queue: Int?) throws(PcapError) -> PcapStatistics {
        let s = engine.statistics()
        let interface = try inDeviceNamespace { () throws(PcapError) in try Self.interfaceDrops(ifindex: ifindex, device: device) }
        let (offered, dropped): (UInt64, UInt64)
        if let queue {
            let q = s.queues[queue]
            (offered, dropped) = (q.received + q.captureDrops, q.captureDrops + q.deliveryDrops)
        } else {
            (offered, dropped) = (s.offered, s.captureDrops + s.deliveryDrops)
        }
        return PcapStatistics(
            received: UInt32(truncatingIfNeeded: offered), dropped: UInt32(truncatingIfNeeded: dropped),
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
        while true {
            let sent = frame.withUnsafeBytes { bytes in Result { () throws(SystemError) in try injector.unsafelyUnwrapped.send(bytes) } }
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

    /// Stops the capture threads (after draining) and releases the rings, once every reader has
    /// given its chunks back (`readerReleased`). Chunks nobody read are discarded, as pcap_close discards what is
    /// left in the ring.
    private func close() {
        engine.requestStop()
        // The capture threads may wait for free chunks while draining: give every chunk back.
        while engine.hasWaitingChunks || !engine.captureEnded {
            for q in engine.queues.indices {
                while let lease = engine.nextChunk(for: q, waiting: .upTo(.milliseconds(1))) { lease.recycle() }
            }
        }
        engine.wait()
        // The sockets (and with them the promiscuous memberships), the rings and the pools go
        // now, not when the last reference to a handle does.
        engineStorage = nil
        injector = nil
    }
}
