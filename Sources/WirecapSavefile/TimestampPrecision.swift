import CWirecapPcap

/// The unit of a timestamp's fraction, as libpcap's PCAP_TSTAMP_PRECISION_MICRO / _NANO.
///
/// libpcap scales the file's timestamps to the precision asked for at open, and a writer puts
/// its precision into the file (the pcap magic, pcapng's if_tsresol), so reading at `.nano` and
/// writing keeps every nanosecond while `.micro` rounds them away exactly as libpcap does.
public enum TimestampPrecision: Sendable, Equatable {
    case micro
    case nano

    package var libpcapValue: UInt32 {
        switch self {
        case .micro: UInt32(PCAP_TSTAMP_PRECISION_MICRO)
        case .nano: UInt32(PCAP_TSTAMP_PRECISION_NANO)
        }
    }

    /// Nanoseconds per unit of the fraction: the borrowed `Packet` always carries nanoseconds.
    @inlinable
    public var nanosecondsPerUnit: UInt32 {
        switch self {
        case .micro: 1000
        case .nano: 1
        }
    }
}
