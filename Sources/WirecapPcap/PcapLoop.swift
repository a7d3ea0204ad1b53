import CWirecapPcap
import WirecapEngine

/// How a `dispatch` or `loop` call ended.
public struct LoopResult: Sendable, Equatable {
    /// Packets handed to the handler by this call.
    public var processed: Int
    /// True when libpcap reports that `breakLoop()` ended the call (PCAP_ERROR_BREAK); false when
    /// the count was reached or the file ended. As in libpcap, a `dispatch` broken after some
    /// packets returns them uninterrupted and the next call reports the break.
    public var interrupted: Bool

    public init(processed: Int, interrupted: Bool) {
        self.processed = processed
        self.interrupted = interrupted
    }
}

/// What the C callback gets as its user pointer: the handler and the state it needs to build
/// a `Packet`. It lives on the caller's stack for the duration of one call, so the per-packet
/// path allocates nothing.
private struct LoopContext {
    let body: (Packet) -> Void
    let nanosecondsPerUnit: UInt32
    var processed = 0
}

/// The pcap_handler: turns libpcap's header and buffer into a borrowed `Packet`.
private let trampoline: pcap_handler = { user, header, data in
    let context = UnsafeMutableRawPointer(user!).assumingMemoryBound(to: LoopContext.self)
    let h = header!.pointee
    let packet = Packet(
        bytes: UnsafeRawBufferPointer(start: data, count: Int(h.caplen)), wireLength: Int(h.len),
        seconds: UInt32(truncatingIfNeeded: h.ts.tv_sec),
        nanoseconds: UInt32(truncatingIfNeeded: h.ts.tv_usec) &* context.pointee.nanosecondsPerUnit,
        queue: 0)
    context.pointee.processed += 1
    context.pointee.body(packet)
}

extension PcapHandle {
    /// Reads up to `count` packets that pass the filter and hands each to `handler`, as
    /// pcap_dispatch (count 0 or -1: everything libpcap has at hand, for a file the whole rest of it).
    ///
    /// The `Packet` is borrowed from libpcap's buffer: valid only during the call. Its
    /// timestamp is always in nanoseconds (a micro-precision handle's are multiplied by 1000),
    /// its queue is 0. A truncated or corrupt file throws libpcap's message after the intact
    /// records have been handled.
    @discardableResult
    public func dispatch(count: Int = -1, handler: (Packet) -> Void) throws(PcapError) -> LoopResult {
        try run(count: count, handler: handler) { pcap_dispatch($0, $1, $2, $3) }
    }

    /// Like `dispatch`, but as pcap_loop: runs until `count` packets (count 0 or -1: until the
    /// end of the file), `breakLoop()`, or an error.
    @discardableResult
    public func loop(count: Int = -1, handler: (Packet) -> Void) throws(PcapError) -> LoopResult {
        try run(count: count, handler: handler) { pcap_loop($0, $1, $2, $3) }
    }

    /// `dispatch` over a `PacketHandler` value, as the engine's threads use; `blockDone(queue: 0)`
    /// runs once at the end of the call, the one batch boundary a savefile has.
    @discardableResult
    public func dispatch<H: PacketHandler>(count: Int = -1, handler: inout H) throws(PcapError) -> LoopResult {
        defer { handler.blockDone(queue: 0) }
        return try dispatch(count: count) { handler.handle($0) }
    }

    /// `loop` over a `PacketHandler` value; `blockDone(queue: 0)` runs once at the end.
    @discardableResult
    public func loop<H: PacketHandler>(count: Int = -1, handler: inout H) throws(PcapError) -> LoopResult {
        defer { handler.blockDone(queue: 0) }
        return try loop(count: count) { handler.handle($0) }
    }

    private func run(
        count: Int, handler: (Packet) -> Void,
        _ call: (OpaquePointer, Int32, pcap_handler, UnsafeMutablePointer<UInt8>) -> Int32
    ) throws(PcapError) -> LoopResult {
        let pointer = try open()
        let limit = Int32(clamping: count <= 0 ? -1 : count)
        let (rc, processed) = withoutActuallyEscaping(handler) { body in
            var context = LoopContext(body: body, nanosecondsPerUnit: precision.nanosecondsPerUnit)
            let rc = withUnsafeMutablePointer(to: &context) {
                call(pointer, limit, trampoline, UnsafeMutableRawPointer($0).assumingMemoryBound(to: UInt8.self))
            }
            return (rc, context.processed)
        }
        switch rc {
        case PCAP_ERROR: throw lastError(pointer)
        case PCAP_ERROR_BREAK: return LoopResult(processed: processed, interrupted: true)
        default:
            // A break after some packets makes pcap_dispatch return their count with libpcap's
            // flag still set, so the next call reports the break with 0 packets (pcap_loop
            // already makes that next call itself and returns PCAP_ERROR_BREAK).
            return LoopResult(processed: processed, interrupted: false)
        }
    }
}
