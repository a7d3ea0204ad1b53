/// One captured packet, borrowed from the memory of the block that holds it.
///
/// `bytes` is valid only during the handler call that receives it: the block goes back to the
/// kernel afterwards and is overwritten. Copy what must outlive the call.
public struct Packet {
    /// The frame as it was on the wire, VLAN tag included, cut to the snap length.
    public let bytes: UnsafeRawBufferPointer
    /// Length of the frame on the wire (at least `bytes.count`).
    public let wireLength: Int
    public let seconds: UInt32
    public let nanoseconds: UInt32
    /// The fanout member (queue) that captured the packet.
    public let queue: Int

    @inlinable @inline(__always)
    public init(bytes: UnsafeRawBufferPointer, wireLength: Int, seconds: UInt32, nanoseconds: UInt32, queue: Int) {
        self.bytes = bytes
        self.wireLength = wireLength
        self.seconds = seconds
        self.nanoseconds = nanoseconds
        self.queue = queue
    }

    @inlinable public var capturedLength: Int { bytes.count }
    @inlinable public var timestampNanoseconds: UInt64 { UInt64(seconds) * 1_000_000_000 + UInt64(nanoseconds) }
}

/// What the application runs on each packet. A handler is a value owned by one capture thread;
/// the engine is generic over it, so the call is direct and inlined, not dispatched per packet.
public protocol PacketHandler: SendableMetatype {
    mutating func handle(_ packet: Packet)
    /// Called after the last packet of each block, before the block goes back to the kernel:
    /// the place for per-batch work such as taking a lock once per block instead of per packet.
    mutating func blockDone(queue: Int)
    /// Called by the pcap facade's readers before the first packet they hand over from each
    /// chunk (and again when a later call resumes a chunk part-read): the queue that captured
    /// it and its sequence number among that queue's chunks. With buddy offloading a reader
    /// also gets chunks of other queues, so code that must keep each flow in order restores it
    /// per owner by sequence. The engine's own work threads do not call it.
    mutating func chunkBegins(owner: Int, sequence: UInt64)
}

extension PacketHandler {
    @inlinable public mutating func blockDone(queue: Int) {}
    @inlinable public mutating func chunkBegins(owner: Int, sequence: UInt64) {}
}
