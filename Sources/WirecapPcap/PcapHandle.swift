import CWirecapPcap
import WirecapEngine
import WirecapLinux
import WirecapSavefile

/// A capture handle with libpcap's shape and meaning, as pcap_t: live over the wirecap engine
/// (`openLive`), or over a savefile read by libpcap itself (`openOffline`). Code written against
/// pcap_t carries over call for call: `setFilter`, `next`, `dispatch`, `loop`, `breakLoop`,
/// `stats`, `inject`, `dumpOpen`, `datalink`, `snapshot`, `setDirection`, `setNonblocking`,
/// `selectableFileDescriptor`.
///
/// A live handle opened with N queues has N more readers, `queues[0..<N]`, each a `PcapHandle`
/// with the same calls, reading one queue: give each its own thread (or task) and the N queues
/// are read at once, as a multi-threaded IDS reads them (Suricata's workers). The handle itself
/// reads every queue, for code that wants one loop. The filter and the direction belong to the
/// capture: set on any reader, they apply to every queue. Closing the handle closes its queues'
/// readers; closing a queue's reader only stops that reader.
///
/// Threads: a read (`next`, `dispatch`, `loop`, `packets()`' thread, `setFilter`) is one thread's
/// at a time per reader; a second thread that reads at the same time gets a `PcapError` saying so
/// instead of a data race (take a reader per queue instead). Other calls may come from any
/// thread at any time; `breakLoop()` also from a signal handler. `close()` may race with
/// anything: it breaks a running read, waits for it to return, and then releases what the
/// handle holds; called inside a handler, it takes effect when that read returns. Every call on
/// a closed handle throws `PcapError.closed`.
public final class PcapHandle: @unchecked Sendable {
    // @unchecked: `source` is immutable and its mutable parts are guarded by `gate`.
    /// What the handle reads from. A switch per call, never per packet.
    enum Source {
        /// libpcap's pcap_t over a pcap or pcapng file.
        case savefile(OpaquePointer)
        /// A reader of the engine's queues (all of them, or one), read through the pool.
        case live(LiveReader)
    }

    let source: Source
    let gate = HandleGate()
    /// The precision timestamps are delivered in by `next()` and written in by `dumpOpen`, as
    /// asked for at open. Borrowed `Packet`s always carry nanoseconds.
    public let precision: TimestampPrecision
    /// One reader per queue of a live handle (`queues[i]` reads queue i), empty for a file. Each
    /// is a handle with every call of this one; `stats()` on it counts its own queue, and
    /// `totalStats()` the whole capture.
    public let queues: [PcapHandle]

    init(source: Source, precision: TimestampPrecision, queues: [PcapHandle] = []) {
        self.source = source
        self.precision = precision
        self.queues = queues
    }

    /// Opens a pcap or pcapng file, as pcap_open_offline_with_tstamp_precision. A missing or
    /// unreadable file throws libpcap's message.
    ///
    /// The file is opened as `SavefileReader` opens it, but the handle keeps the pcap_t itself
    /// rather than a reader: libpcap's own filter, pcap_dispatch/pcap_loop counts, breakloop and
    /// messages on that pcap_t are what make this a pcap_t, and a reader would only stand between.
    public static func openOffline(path: String, precision: TimestampPrecision = .micro) throws(PcapError) -> PcapHandle {
        do {
            return PcapHandle(source: .savefile(try SavefileReader.openLibpcap(path: path, precision: precision)), precision: precision)
        } catch {
            throw PcapError(error.message)
        }
    }

    /// pcap_open_live: one queue on `device` (in the calling thread's network namespace), already
    /// capturing when it returns. `timeoutMilliseconds` is how long `dispatch` waits for a first
    /// packet. For N queues, the pool, offloading, immediate mode or a buffer size, use
    /// `openLive(device:options:)`.
    public static func openLive(
        device: String, snapLength: Int = 262_144, promiscuous: Bool = true, timeoutMilliseconds: Int = 1000
    ) throws(PcapError) -> PcapHandle {
        var options = LiveOptions()
        options.snapLength = snapLength
        options.promiscuous = promiscuous
        options.timeoutMilliseconds = timeoutMilliseconds
        return try openLive(device: device, options: options)
    }

    /// tcpdump's -Z for code that uses the facade: once the live handles the program needs are
    /// open, switches the whole process (every thread, the capture threads too: glibc applies
    /// set*id to all) to `user`, its group and its supplementary groups. Root's capabilities go
    /// with root; the handles keep capturing. Needs root; there is no way back.
    public static func dropPrivileges(to user: String) throws(PcapError) {
        do throws(Privileges.Failure) {
            try Privileges.switchUser(to: user)
        } catch {
            throw PcapError(error.description)
        }
    }

    /// A live handle with everything pcap_create/pcap_set_*/pcap_activate can set, and the
    /// engine's queues, pool and offloading besides.
    public static func openLive(device: String, options: LiveOptions) throws(PcapError) -> PcapHandle {
        let capture = try LiveCapture(device: device, options: options)
        let queues = try (0..<capture.queueCount).map { (queue) throws(PcapError) in
            PcapHandle(source: .live(try LiveReader(capture: capture, queue: queue)), precision: options.precision)
        }
        return PcapHandle(source: .live(try LiveReader(capture: capture, queue: nil)), precision: options.precision, queues: queues)
    }

    /// Runs `body` on the source inside the gate: `reading` for an exclusive read. Throws
    /// `PcapError.closed` on a closed handle, and a clear error for a second reading thread.
    @inline(__always)
    func using<T>(reading: Bool = false, _ body: (Source) throws(PcapError) -> T) throws(PcapError) -> T {
        do {
            try gate.enter(reading: reading)
        } catch {
            guard case .busy(let sameThread) = error else { throw PcapError.closed }
            throw PcapError(
                sameThread
                    ? "\(name) was read again from inside its own handler: return from the handler first (a pcap_t is not re-entrant)"
                    : "\(name) is being read by another thread: read each handle from one thread at a time, or give each thread a queue of its own (handle.queues)")
        }
        defer { if gate.leave(reading: reading) { release() } }
        return try body(source)
    }

    /// What messages call this handle.
    var name: String {
        switch source {
        case .savefile: "the savefile handle"
        case .live(let reader):
            reader.queue.map { "queue \($0) of the live handle on \(reader.capture.device)" } ?? "the live handle on \(reader.capture.device)"
        }
    }

    /// libpcap's last error on a savefile's pcap_t (pcap_geterr).
    func lastError(_ pointer: OpaquePointer) -> PcapError {
        PcapError(String(cString: pcap_geterr(pointer)))
    }

    /// Whether the handle captures from an interface rather than reading a file.
    public var isLive: Bool {
        if case .live = source { return true }
        return false
    }

    /// The queue a per-queue reader reads (`queues[i].queue == i`); nil for the handle that
    /// reads every queue, and for a file.
    public var queue: Int? {
        if case .live(let reader) = source { return reader.queue }
        return nil
    }

    /// The link-layer header type, a DLT_ value (pcap_datalink): 1 is Ethernet, what every live
    /// handle captures.
    public var datalink: Int32 {
        get throws(PcapError) {
            try using { source in
                switch source {
                case .savefile(let pointer): pcap_datalink(pointer)
                case .live: BPFCompiler.ethernet
                }
            }
        }
    }

    /// The snap length (pcap_snapshot): the file's, or the one the live handle cuts packets to.
    public var snapshot: Int {
        get throws(PcapError) {
            try using { source in
                switch source {
                case .savefile(let pointer): Int(pcap_snapshot(pointer))
                case .live(let reader): reader.capture.options.snapLength
                }
            }
        }
    }

    /// The next packet that passes the filter, copied (pcap_next_ex). nil at the end of a file,
    /// or when a live handle's timeout passes with nothing (or it is non-blocking and has
    /// nothing, or `breakLoop()` woke it). A truncated or corrupt file throws libpcap's message
    /// once the intact records have been returned.
    public func next() throws(PcapError) -> OwnedPacket? {
        try using(reading: true) { (source) throws(PcapError) in
            switch source {
            case .savefile(let pointer): return try nextFromSavefile(pointer)
            case .live(let reader):
                var copy = CopyingHandler(precision: precision)
                _ = try reader.dispatch(count: 1, handler: &copy)
                return copy.packet
            }
        }
    }

    /// Reads up to `count` packets that pass the filter and hands each to `handler`, as
    /// pcap_dispatch (count 0 or -1: everything at hand: for a file the whole rest of it, live
    /// what the queues hold, waiting up to the timeout for a first packet; with timeout 0 until
    /// one comes).
    ///
    /// The `Packet` is borrowed, valid only during the call. Its timestamp is always in
    /// nanoseconds; `queue` is the capturing queue (0 for a file). The `LoopResult` says how
    /// many packets the call handed over and whether `breakLoop()` ended it.
    @discardableResult
    public func dispatch(count: Int = -1, handler: (Packet) -> Void) throws(PcapError) -> LoopResult {
        try using(reading: true) { (source) throws(PcapError) in
            switch source {
            case .savefile(let pointer): return try runSavefile(pointer, count: count, handler: handler) { pcap_dispatch($0, $1, $2, $3) }
            case .live(let reader):
                return try withoutActuallyEscaping(handler) { body throws(PcapError) in
                    var closure = ClosureHandler(body: body)
                    return try reader.dispatch(count: count, handler: &closure)
                }
            }
        }
    }

    /// `dispatch` over a `PacketHandler` value: a live handle walks the pool's chunks with it
    /// directly, specialised, as the engine's own work threads do. `blockDone` runs once per
    /// call (with the queue 0), the batch boundary a reader of this API sees; `chunkBegins`
    /// before each chunk a live handle starts on (its owner queue and sequence number).
    @discardableResult
    public func dispatch<H: PacketHandler>(count: Int = -1, handler: inout H) throws(PcapError) -> LoopResult {
        defer { handler.blockDone(queue: 0) }
        return try using(reading: true) { (source) throws(PcapError) in
            switch source {
            case .savefile(let pointer): return try runSavefile(pointer, count: count) { handler.handle($0) } call: { pcap_dispatch($0, $1, $2, $3) }
            case .live(let reader): return try reader.dispatch(count: count, handler: &handler)
            }
        }
    }

    /// As pcap_loop: runs until `count` packets (count 0 or -1: until the end of the file, or
    /// live until `breakLoop()` or `close()`), `breakLoop()`, or an error.
    @discardableResult
    public func loop(count: Int = -1, handler: (Packet) -> Void) throws(PcapError) -> LoopResult {
        try using(reading: true) { (source) throws(PcapError) in
            switch source {
            case .savefile(let pointer): return try runSavefile(pointer, count: count, handler: handler) { pcap_loop($0, $1, $2, $3) }
            case .live(let reader):
                return try withoutActuallyEscaping(handler) { body throws(PcapError) in
                    var closure = ClosureHandler(body: body)
                    return try reader.loop(count: count, handler: &closure)
                }
            }
        }
    }

    /// `loop` over a `PacketHandler` value; `blockDone(queue: 0)` runs once at the end.
    @discardableResult
    public func loop<H: PacketHandler>(count: Int = -1, handler: inout H) throws(PcapError) -> LoopResult {
        defer { handler.blockDone(queue: 0) }
        return try using(reading: true) { (source) throws(PcapError) in
            switch source {
            case .savefile(let pointer): return try runSavefile(pointer, count: count) { handler.handle($0) } call: { pcap_loop($0, $1, $2, $3) }
            case .live(let reader): return try reader.loop(count: count, handler: &handler)
            }
        }
    }

    /// Makes a running `loop` or `dispatch` return after the packet in hand (pcap_breakloop),
    /// and wakes a live one that waits for packets. Safe from another thread or a signal
    /// handler: an atomic flag and, live, one write(2). A break with no read running makes the
    /// next read return at once, reporting it, as libpcap.
    public func breakLoop() {
        gate.whileNotReleased {
            switch source {
            case .savefile(let pointer): pcap_breakloop(pointer)
            case .live(let reader): reader.breakLoop()
            }
        }
    }

    /// Counters with libpcap's meaning (pcap_stats). Live: `received` counts the packets the
    /// kernel's filter accepted, dropped ones included; `dropped` those the rings had no room
    /// for (and anything lost inside the library, by design nothing); `interfaceDropped` what the
    /// interface itself dropped since the open (rx_missed_errors + rx_fifo_errors, as libpcap
    /// reads them). On a queue's reader, `received` and `dropped` are that queue's (packets its
    /// socket took in, whichever reader processed them), `interfaceDropped` the device's. 32-bit
    /// and wrapping, as pcap_stat; `engineStatistics()` has the 64-bit, per-queue counts. A
    /// savefile has no statistics: this throws libpcap's message.
    public func stats() throws(PcapError) -> PcapStatistics {
        try using { (source) throws(PcapError) in
            switch source {
            case .savefile(let pointer):
                var s = pcap_stat()
                guard pcap_stats(pointer, &s) == 0 else { throw lastError(pointer) }
                return PcapStatistics(received: s.ps_recv, dropped: s.ps_drop, interfaceDropped: s.ps_ifdrop)
            case .live(let reader): return try reader.capture.stats(queue: reader.queue)
            }
        }
    }

    /// `stats()` for the whole capture, whichever reader asks (for a file, `stats()`).
    public func totalStats() throws(PcapError) -> PcapStatistics {
        try using { (source) throws(PcapError) in
            switch source {
            case .savefile: return try stats()
            case .live(let reader): return try reader.capture.stats(queue: nil)
            }
        }
    }

    /// The engine's own counters, per queue and 64-bit: capture drops and delivery drops apart,
    /// the pool and offloading. The whole capture's, whichever reader asks. Throws for a
    /// savefile, which has none.
    public func engineStatistics() throws(PcapError) -> CaptureStatistics {
        try using { (source) throws(PcapError) in
            switch source {
            case .savefile: throw PcapError("Statistics aren't available from savefiles")
            case .live(let reader): return reader.capture.engine.statistics()
            }
        }
    }

    /// Sends a frame on the device, as pcap_inject: through the qdisc, so other captures on the
    /// device see it as outgoing. Returns the bytes sent. A savefile throws libpcap's message.
    @discardableResult
    public func inject(_ frame: [UInt8]) throws(PcapError) -> Int {
        try using { (source) throws(PcapError) in
            switch source {
            case .savefile(let pointer):
                let rc = frame.withUnsafeBytes { pcap_inject(pointer, $0.baseAddress, $0.count) }
                guard rc >= 0 else { throw lastError(pointer) }
                return Int(rc)
            case .live(let reader): return try reader.capture.inject(frame)
            }
        }
    }

    /// pcap_sendpacket: `inject` without the count.
    public func sendPacket(_ frame: [UInt8]) throws(PcapError) { try inject(frame) }

    /// A descriptor to poll or select on (pcap_get_selectable_fd): readable when `dispatch` has
    /// something to hand over. Live it is the reader's own eventfd, which its queues signal when
    /// a chunk arrives (or the capture ends) and which a `dispatch` resets; for a file,
    /// libpcap's. Pair it with `setNonblocking(true)`, as with libpcap. Owned by the handle.
    public var selectableFileDescriptor: Int32 {
        get throws(PcapError) {
            try using { source in
                switch source {
                case .savefile(let pointer): pcap_get_selectable_fd(pointer)
                case .live(let reader): reader.wakeup.descriptor
                }
            }
        }
    }

    /// Non-blocking mode (pcap_setnonblock): `dispatch` and `next` return what is at hand, 0 or
    /// nil when nothing is, without waiting for the timeout. A file throws libpcap's message.
    /// Per reader.
    public func setNonblocking(_ nonblocking: Bool) throws(PcapError) {
        try using(reading: true) { (source) throws(PcapError) in
            switch source {
            case .savefile(let pointer):
                var errbuf = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
                guard pcap_setnonblock(pointer, nonblocking ? 1 : 0, &errbuf) == 0 else {
                    throw PcapError(errbuf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
                }
            case .live(let reader): reader.nonblocking = nonblocking
            }
        }
    }

    /// Whether `setNonblocking(true)` is in force (pcap_getnonblock).
    public var isNonblocking: Bool {
        get throws(PcapError) {
            try using { source in
                switch source {
                case .savefile(let pointer):
                    var errbuf = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
                    return pcap_getnonblock(pointer, &errbuf) == 1
                case .live(let reader): return reader.nonblocking
                }
            }
        }
    }

    /// Which packets to capture by direction (pcap_setdirection). Live, the kernel decides, on
    /// every queue: the direction test goes in front of the filter program. A file throws
    /// libpcap's message.
    public func setDirection(_ direction: PcapDirection) throws(PcapError) {
        try using { (source) throws(PcapError) in
            switch source {
            case .savefile(let pointer):
                guard pcap_setdirection(pointer, direction.libpcapValue) == 0 else { throw lastError(pointer) }
            case .live(let reader): try reader.capture.setDirection(direction)
            }
        }
    }

    /// Closes the handle (pcap_close): a file is closed; a live capture stops after its threads
    /// have drained what the kernel accepted, and packets nobody read are discarded, as
    /// pcap_close discards what is left in the ring. The queues' readers close with it; a
    /// queue's reader closed alone gives back what it holds and reads no more. A read running
    /// on another thread is broken and waited for; called from inside a handler, the close
    /// completes as that read returns. Closing twice is harmless.
    public func close() {
        // The queues' readers first: each waits for its own reading thread.
        for reader in queues { reader.close() }
        switch gate.close() {
        case .alreadyClosed:
            break
        case .deferredToReader:
            // The reader breaks out after the packet in hand and releases on its way out.
            breakLoop()
        case .releaseNow:
            release()
        case .waitForOthers:
            breakLoop()
            if gate.waitForRelease() { release() }
        }
    }

    /// Frees what the handle holds, once, when no call is inside.
    private func release() {
        gate.waitForBreakers()
        switch source {
        case .savefile(let pointer): pcap_close(pointer)
        case .live(let reader):
            // The capture closes with its last reader: this one, or a queue's reader whose
            // close waits for the end of its read.
            reader.release()
        }
        gate.releaseFinished()
    }

    deinit { close() }
}

extension PcapError {
    /// What every call on a closed handle or dumper throws.
    public static let closed = PcapError("the pcap handle is closed")
}

extension OwnedPacket {
    /// A copy of a borrowed packet, its fraction in `precision`'s unit.
    init(copying packet: Packet, precision: TimestampPrecision) {
        self.init(
            bytes: Array(packet.bytes), len: packet.wireLength, seconds: Int(packet.seconds),
            fraction: Int(packet.nanoseconds / precision.nanosecondsPerUnit), precision: precision, queue: packet.queue)
    }
}

/// Runs a closure per packet: the closure forms of `dispatch` and `loop` on a live handle.
struct ClosureHandler: PacketHandler {
    let body: (Packet) -> Void
    @inline(__always) mutating func handle(_ packet: Packet) { body(packet) }
}

/// Copies the one packet `next()` asks for.
struct CopyingHandler: PacketHandler {
    let precision: TimestampPrecision
    var packet: OwnedPacket? = nil
    mutating func handle(_ packet: Packet) { self.packet = OwnedPacket(copying: packet, precision: precision) }
}
