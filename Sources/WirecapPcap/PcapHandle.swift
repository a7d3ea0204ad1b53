import CWirecapPcap
import WirecapEngine
import WirecapSavefile

/// A capture handle with libpcap's shape and meaning, as pcap_t: live over the wirecap engine
/// (`openLive`), or over a savefile read by libpcap itself (`openOffline`). Code written against
/// pcap_t carries over call for call: `setFilter`, `next`, `dispatch`, `loop`, `breakLoop`,
/// `stats`, `inject`, `dumpOpen`, `datalink`, `snapshot`, `setDirection`, `setNonblocking`,
/// `selectableFileDescriptor`.
///
/// One handle is used by one thread at a time, as a pcap_t is. The exception is `breakLoop()`,
/// which, like pcap_breakloop, may be called from any thread while `loop`, `dispatch` or `next`
/// runs; that is why the class is `Sendable`. `close()` must not race with any other call.
/// Every call on a closed handle throws `PcapError.closed`.
public final class PcapHandle: @unchecked Sendable {
    /// What the handle reads from. A switch per call, never per packet.
    enum Source {
        /// libpcap's pcap_t over a pcap or pcapng file.
        case savefile(OpaquePointer)
        /// The engine's queues, read through the ring-buffer pool.
        case live(LiveCapture)
    }

    // nil once closed: every call checks it, so use after close throws instead of touching freed
    // memory.
    private(set) var source: Source?
    /// The precision timestamps are delivered in by `next()` and written in by `dumpOpen`, as
    /// asked for at open. Borrowed `Packet`s always carry nanoseconds.
    public let precision: TimestampPrecision

    init(source: Source, precision: TimestampPrecision) {
        self.source = source
        self.precision = precision
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

    /// A live handle with everything pcap_create/pcap_set_*/pcap_activate can set, and the
    /// engine's queues, pool and offloading besides.
    public static func openLive(device: String, options: LiveOptions) throws(PcapError) -> PcapHandle {
        PcapHandle(source: .live(try LiveCapture(device: device, options: options)), precision: options.precision)
    }

    /// The source, or the error every use after close gets.
    @inline(__always)
    func open() throws(PcapError) -> Source {
        guard let source else { throw PcapError.closed }
        return source
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

    /// The link-layer header type, a DLT_ value (pcap_datalink): 1 is Ethernet, what every live
    /// handle captures.
    public var datalink: Int32 {
        get throws(PcapError) {
            switch try open() {
            case .savefile(let pointer): pcap_datalink(pointer)
            case .live: BPFCompiler.ethernet
            }
        }
    }

    /// The snap length (pcap_snapshot): the file's, or the one the live handle cuts packets to.
    public var snapshot: Int {
        get throws(PcapError) {
            switch try open() {
            case .savefile(let pointer): Int(pcap_snapshot(pointer))
            case .live(let live): live.options.snapLength
            }
        }
    }

    /// The next packet that passes the filter, copied (pcap_next_ex). nil at the end of a file,
    /// or when a live handle's timeout passes with nothing (or it is non-blocking and has
    /// nothing). A truncated or corrupt file throws libpcap's message once the intact records
    /// have been returned.
    public func next() throws(PcapError) -> OwnedPacket? {
        switch try open() {
        case .savefile(let pointer): return try nextFromSavefile(pointer)
        case .live:
            var copy: OwnedPacket? = nil
            _ = try dispatch(count: 1) { packet in copy = OwnedPacket(copying: packet, precision: precision) }
            return copy
        }
    }

    /// Reads up to `count` packets that pass the filter and hands each to `handler`, as
    /// pcap_dispatch (count 0 or -1: everything at hand: for a file the whole rest of it, live
    /// what the queues hold, waiting up to the timeout for a first packet).
    ///
    /// The `Packet` is borrowed, valid only during the call. Its timestamp is always in
    /// nanoseconds; `queue` is the capturing queue (0 for a file).
    @discardableResult
    public func dispatch(count: Int = -1, handler: (Packet) -> Void) throws(PcapError) -> LoopResult {
        switch try open() {
        case .savefile(let pointer): return try runSavefile(pointer, count: count, handler: handler) { pcap_dispatch($0, $1, $2, $3) }
        case .live(let live):
            return try withoutActuallyEscaping(handler) { body throws(PcapError) in
                var closure = ClosureHandler(body: body)
                return try live.dispatch(count: count, handler: &closure)
            }
        }
    }

    /// `dispatch` over a `PacketHandler` value: a live handle walks the pool's chunks with it
    /// directly, specialised, as the engine's own work threads do. `blockDone` runs once per
    /// call (with the queue 0), the batch boundary a reader of this API sees.
    @discardableResult
    public func dispatch<H: PacketHandler>(count: Int = -1, handler: inout H) throws(PcapError) -> LoopResult {
        defer { handler.blockDone(queue: 0) }
        switch try open() {
        case .savefile(let pointer): return try runSavefile(pointer, count: count) { handler.handle($0) } call: { pcap_dispatch($0, $1, $2, $3) }
        case .live(let live): return try live.dispatch(count: count, handler: &handler)
        }
    }

    /// As pcap_loop: runs until `count` packets (count 0 or -1: until the end of the file, or
    /// forever live), `breakLoop()`, or an error.
    @discardableResult
    public func loop(count: Int = -1, handler: (Packet) -> Void) throws(PcapError) -> LoopResult {
        switch try open() {
        case .savefile(let pointer): return try runSavefile(pointer, count: count, handler: handler) { pcap_loop($0, $1, $2, $3) }
        case .live(let live):
            return try withoutActuallyEscaping(handler) { body throws(PcapError) in
                var closure = ClosureHandler(body: body)
                return try live.loop(count: count, handler: &closure)
            }
        }
    }

    /// `loop` over a `PacketHandler` value; `blockDone(queue: 0)` runs once at the end.
    @discardableResult
    public func loop<H: PacketHandler>(count: Int = -1, handler: inout H) throws(PcapError) -> LoopResult {
        defer { handler.blockDone(queue: 0) }
        switch try open() {
        case .savefile(let pointer): return try runSavefile(pointer, count: count) { handler.handle($0) } call: { pcap_loop($0, $1, $2, $3) }
        case .live(let live): return try live.loop(count: count, handler: &handler)
        }
    }

    /// Makes a running `loop` or `dispatch` return after the packet in hand (pcap_breakloop).
    /// Safe from another thread or a signal handler: it only sets a flag (and, live, wakes the
    /// reader).
    public func breakLoop() {
        switch source {
        case .savefile(let pointer): pcap_breakloop(pointer)
        case .live(let live): live.breakLoop()
        case nil: break
        }
    }

    /// Counters with libpcap's meaning (pcap_stats). Live: `received` counts the packets the
    /// kernel's filter accepted, dropped ones included; `dropped` those the rings had no room
    /// for (and anything lost inside the library, by design nothing); `interfaceDropped` what the
    /// interface itself dropped since the open (rx_missed_errors + rx_fifo_errors, as libpcap
    /// reads them). 32-bit and wrapping, as pcap_stat; `engineStatistics()` has the 64-bit,
    /// per-queue counts. A savefile has no statistics: this throws libpcap's message.
    public func stats() throws(PcapError) -> PcapStatistics {
        switch try open() {
        case .savefile(let pointer):
            var s = pcap_stat()
            guard pcap_stats(pointer, &s) == 0 else { throw lastError(pointer) }
            return PcapStatistics(received: s.ps_recv, dropped: s.ps_drop, interfaceDropped: s.ps_ifdrop)
        case .live(let live): return try live.stats()
        }
    }

    /// The engine's own counters, per queue and 64-bit: capture drops and delivery drops apart,
    /// the pool and offloading. Throws for a savefile, which has none.
    public func engineStatistics() throws(PcapError) -> CaptureStatistics {
        switch try open() {
        case .savefile: throw PcapError("Statistics aren't available from savefiles")
        case .live(let live): return live.engine.statistics()
        }
    }

    /// Sends a frame on the device, as pcap_inject: through the qdisc, so other captures on the
    /// device see it as outgoing. Returns the bytes sent. A savefile throws libpcap's message.
    @discardableResult
    public func inject(_ frame: [UInt8]) throws(PcapError) -> Int {
        switch try open() {
        case .savefile(let pointer):
            let rc = frame.withUnsafeBytes { pcap_inject(pointer, $0.baseAddress, $0.count) }
            guard rc >= 0 else { throw lastError(pointer) }
            return Int(rc)
        case .live(let live): return try live.inject(frame)
        }
    }

    /// pcap_sendpacket: `inject` without the count.
    public func sendPacket(_ frame: [UInt8]) throws(PcapError) { try inject(frame) }

    /// A descriptor to poll or select on (pcap_get_selectable_fd): readable when `dispatch` has
    /// something to hand over. Live it is an `EventFD` the capture threads signal when a queue of
    /// filled chunks stops being empty, which a `dispatch` resets; for a file, libpcap's.
    /// Pair it with `setNonblocking(true)`, as with libpcap. Owned by the handle.
    public var selectableFileDescriptor: Int32 {
        get throws(PcapError) {
            switch try open() {
            case .savefile(let pointer): pcap_get_selectable_fd(pointer)
            case .live(let live): try live.selectableFileDescriptor()
            }
        }
    }

    /// Non-blocking mode (pcap_setnonblock): `dispatch` and `next` return what is at hand, 0 or
    /// nil when nothing is, without waiting for the timeout. A file throws libpcap's message.
    public func setNonblocking(_ nonblocking: Bool) throws(PcapError) {
        switch try open() {
        case .savefile(let pointer):
            var errbuf = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
            guard pcap_setnonblock(pointer, nonblocking ? 1 : 0, &errbuf) == 0 else {
                throw PcapError(errbuf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
            }
        case .live(let live): live.nonblocking = nonblocking
        }
    }

    /// Whether `setNonblocking(true)` is in force (pcap_getnonblock).
    public var isNonblocking: Bool {
        get throws(PcapError) {
            switch try open() {
            case .savefile(let pointer):
                var errbuf = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
                return pcap_getnonblock(pointer, &errbuf) == 1
            case .live(let live): return live.nonblocking
            }
        }
    }

    /// Which packets to capture by direction (pcap_setdirection). Live, the kernel decides, on
    /// every queue: the direction test goes in front of the filter program. A file throws
    /// libpcap's message.
    public func setDirection(_ direction: PcapDirection) throws(PcapError) {
        switch try open() {
        case .savefile(let pointer):
            guard pcap_setdirection(pointer, direction.libpcapValue) == 0 else { throw lastError(pointer) }
        case .live(let live): try live.setDirection(direction)
        }
    }

    /// Closes the handle (pcap_close): a file is closed; a live capture stops after its threads
    /// have drained what the kernel accepted, and packets nobody read are discarded, as
    /// pcap_close discards what is left in the ring. Closing twice is harmless.
    public func close() {
        switch source {
        case .savefile(let pointer): pcap_close(pointer)
        case .live(let live): live.close()
        case nil: break
        }
        source = nil
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
            fraction: Int(packet.nanoseconds / precision.nanosecondsPerUnit), precision: precision)
    }
}

/// Runs a closure per packet: the closure forms of `dispatch` and `loop` on a live handle.
struct ClosureHandler: PacketHandler {
    let body: (Packet) -> Void
    @inline(__always) mutating func handle(_ packet: Packet) { body(packet) }
}
