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
    /// pcap_next_ex on a savefile, copied.
    func nextFromSavefile(_ pointer: OpaquePointer) throws(PcapError) -> OwnedPacket? {
        var header: UnsafeMutablePointer<pcap_pkthdr>? = nil
        var data: UnsafePointer<UInt8>? = nil
        switch pcap_next_ex(pointer, &header, &data) {
        case 1:
            let h = header!.pointee
            return OwnedPacket(
                bytes: Array(UnsafeBufferPointer(start: data, count: Int(h.caplen))), caplen: Int(h.caplen),
                len: Int(h.len), seconds: h.ts.tv_sec, fraction: h.ts.tv_usec, precision: precision)
        case PCAP_ERROR_BREAK:
            // For a savefile this is the end of the file (libpcap's own convention).
            return nil
        default:
            throw lastError(pointer)
        }
    }

    /// pcap_dispatch or pcap_loop on a savefile, with `handler` behind the C trampoline.
    func runSavefile(
        _ pointer: OpaquePointer, count: Int, handler: (Packet) -> Void,
        call: (OpaquePointer, Int32, pcap_handler, UnsafeMutablePointer<UInt8>) -> Int32
    ) throws(PcapError) -> LoopResult {
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
