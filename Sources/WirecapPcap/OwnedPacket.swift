/// A packet copied out of libpcap's buffer, what `PcapHandle.next()` returns: unlike the
/// borrowed `Packet` of `dispatch` and `loop`, it stays valid after the next read.
public struct OwnedPacket: Sendable, Equatable {
    /// The captured bytes (`caplen` of them).
    public var bytes: [UInt8]
    /// Captured length, as pcap_pkthdr.caplen.
    public var caplen: Int
    /// Length on the wire, as pcap_pkthdr.len.
    public var len: Int
    public var seconds: Int
    /// The sub-second part in the handle's precision: microseconds or nanoseconds, as libpcap's
    /// ts.tv_usec, which holds nanoseconds on a nanosecond-precision handle.
    public var fraction: Int
    public var precision: TimestampPrecision
    /// The queue that captured it (0 for a file).
    public var queue: Int = 0

    public init(bytes: [UInt8], caplen: Int? = nil, len: Int, seconds: Int, fraction: Int, precision: TimestampPrecision, queue: Int = 0) {
        self.queue = queue
        self.bytes = bytes
        self.caplen = caplen ?? bytes.count
        self.len = len
        self.seconds = seconds
        self.fraction = fraction
        self.precision = precision
    }

    /// The fraction in nanoseconds, whatever the precision.
    public var nanoseconds: Int { fraction * Int(precision.nanosecondsPerUnit) }
}
