import WirecapEngine

/// What a verdict handler decides for one frame.
public enum Verdict: Sendable, Equatable {
    /// Send it on the output (as it is now: the handler may have rewritten it in place).
    case forward
    /// Do not send it; counted as a verdict drop.
    case drop
}

/// A captured frame lent to a verdict handler, writable in place.
///
/// The bytes live in the pool chunk that holds the frame (a copy of the ring block, never ring
/// memory), so rewriting them (a MAC address, a TTL) costs no copy: the one copy is the one into
/// the TX slot. Valid only during the `verdict` call that receives it.
public struct ForwardFrame {
    /// The frame as captured, VLAN tag put back; write through it to change what is sent.
    public let bytes: UnsafeMutableRawBufferPointer
    /// Length on the wire (above `bytes.count` only when the capture cut the frame).
    public let wireLength: Int
    public let seconds: UInt32
    public let nanoseconds: UInt32
    /// The queue that captured the frame (with offloading, not always the one forwarding it).
    public let queue: Int

    @inlinable @inline(__always)
    init(_ packet: Packet) {
        bytes = UnsafeMutableRawBufferPointer(mutating: packet.bytes)
        wireLength = packet.wireLength
        seconds = packet.seconds
        nanoseconds = packet.nanoseconds
        queue = packet.queue
    }
}

/// The application's inline code: one decision per frame, on the queue's forwarding thread.
/// A handler is a value owned by that thread; `Forwarder.start` is generic over it, so the call
/// is direct and specialised, never an existential, and nothing is allocated per frame.
public protocol VerdictHandler: SendableMetatype {
    mutating func verdict(_ frame: ForwardFrame) -> Verdict
}

/// Forwards everything unchanged: a plain bump in the wire.
public struct ForwardAll: VerdictHandler {
    public init() {}
    @inlinable public mutating func verdict(_ frame: ForwardFrame) -> Verdict { .forward }
}
