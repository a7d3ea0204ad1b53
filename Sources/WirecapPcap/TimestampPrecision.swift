import WirecapSavefile

/// The unit of a timestamp's fraction, micro or nano, as libpcap's PCAP_TSTAMP_PRECISION_*:
/// the savefile module's type, under the name facade code has always used.
public typealias TimestampPrecision = WirecapSavefile.TimestampPrecision
