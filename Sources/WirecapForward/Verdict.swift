import WirecapEngine

/// What a verdict handler decides for one frame.
public enum Verdict: Sendable, Equatable {
    /// Send it on the main output (as it is now: the handler may have rewritten it in place).
    case forward
    /// Do not send it; counted as a verdict drop.
    case drop
    /// Send it on output `to`: 0 is the main output (the same as `.forward`), 1... are
    /// `ForwarderConfiguration.additionalOutputs` in order. An index with no output is counted as
    /// a TX error, never sent elsewhere.
    case send(to: Int)

    /// The output index, or nil for a drop.
    @inlinable @inline(__always)
    var output: Int? {
        switch self {
        case .forward: return 0
        case .drop: return nil
        case .send(let index): return index
        }
    }
}

/// A captured frame lent to a verdict handler, writable in place.
///
/// The bytes live in the pool chunk that holds the frame (a copy of the ring block, never ring
/// memory), so rewriting them (a MAC address, a TTL) costs no copy: the one copy is the one into
/// the TX slot. Valid only during the `verdict` call that receives it.
public struct ForwardFrame {
    /// The frame as it will be sent (the capture's VLAN tag put back, less a popped tag); write
    /// through it to change what is sent.
    @inlinable public var bytes: UnsafeMutableRawBufferPointer { storedBytes }
    @usableFromInline var storedBytes: UnsafeMutableRawBufferPointer
    /// Length on the wire, as it will be sent (above `bytes.count + pushed tag` only when the
    /// capture cut the frame: such a frame is never sent).
    @inlinable public var wireLength: Int { storedWireLength }
    @usableFromInline var storedWireLength: Int
    public let seconds: UInt32
    public let nanoseconds: UInt32
    /// The queue that captured the frame (with offloading, not always the one forwarding it).
    public let queue: Int
    /// A VLAN tag (TPID << 16 | TCI) to insert after the MAC addresses on the way out, or 0.
    /// Written during the one copy into the TX slot, so a push needs no headroom and no move.
    @inlinable public var pushedTag: UInt32 { storedTag }
    @usableFromInline var storedTag: UInt32 = 0

    @inlinable @inline(__always)
    init(_ packet: Packet) {
        storedBytes = UnsafeMutableRawBufferPointer(mutating: packet.bytes)
        storedWireLength = packet.wireLength
        seconds = packet.seconds
        nanoseconds = packet.nanoseconds
        queue = packet.queue
    }

    /// Whether an 802.1Q (0x8100) or 802.1ad (0x88a8) tag follows the MAC addresses now.
    @inlinable
    public var isTagged: Bool {
        if pushedTag != 0 { return true }
        guard bytes.count >= 18 else { return false }
        let tpid = UInt16(bytes[12]) << 8 | UInt16(bytes[13])
        return tpid == 0x8100 || tpid == 0x88a8
    }

    /// Inserts a VLAN tag after the MAC addresses (outermost), as a switch's access port does on
    /// the way to a trunk. One push per frame: a second one replaces the first.
    @inlinable
    public mutating func pushVLAN(_ tci: UInt16, tpid: UInt16 = 0x8100) {
        if storedTag == 0 { storedWireLength += 4 }
        storedTag = UInt32(tpid) << 16 | UInt32(tci)
    }

    /// Removes the outermost VLAN tag and returns its TCI; nil (and nothing changed) when the
    /// frame has none. A tag pushed in this call is simply taken back; a tag in the bytes is cut
    /// out by moving the MAC addresses 4 bytes forward, in place.
    @inlinable
    public mutating func popVLAN() -> UInt16? {
        if pushedTag != 0 {
            let tci = UInt16(truncatingIfNeeded: pushedTag)
            storedTag = 0
            storedWireLength -= 4
            return tci
        }
        guard isTagged, let base = bytes.baseAddress else { return nil }
        let tci = UInt16(bytes[14]) << 8 | UInt16(bytes[15])
        (base + 4).copyMemory(from: base, byteCount: 12)
        storedBytes = UnsafeMutableRawBufferPointer(start: base + 4, count: bytes.count - 4)
        storedWireLength -= 4
        return tci
    }

    /// Length of the frame as it leaves: the bytes and a pushed tag.
    @inlinable
    public var outgoingLength: Int { bytes.count + (pushedTag != 0 ? 4 : 0) }
}

/// The application's inline code: one decision per frame, on a forwarding thread.
/// A handler is a value owned by that thread; `Forwarder.start` is generic over it, so the call
/// is direct and specialised, never an existential, and nothing is allocated per frame.
public protocol VerdictHandler: SendableMetatype {
    /// Decides what happens to `frame`, and may change it first: rewrite bytes in place, push or
    /// pop a VLAN tag.
    mutating func verdict(_ frame: inout ForwardFrame) -> Verdict
}

/// Forwards everything unchanged: a plain bump in the wire.
public struct ForwardAll: VerdictHandler {
    public init() {}
    @inlinable public mutating func verdict(_ frame: inout ForwardFrame) -> Verdict { .forward }
}
