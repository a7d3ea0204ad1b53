/// Counters as libpcap's pcap_stat.
///
/// A savefile has none: libpcap's pcap_stats fails on it ("Statistics aren't available from
/// savefiles"), and `PcapHandle.stats()` throws that message rather than invent zeros, so a
/// caller cannot mistake "no statistics" for "nothing dropped".
public struct PcapStatistics: Sendable, Equatable {
    public var received: UInt32
    public var dropped: UInt32
    public var interfaceDropped: UInt32

    public init(received: UInt32, dropped: UInt32, interfaceDropped: UInt32) {
        self.received = received
        self.dropped = dropped
        self.interfaceDropped = interfaceDropped
    }
}
