/// The two savefile formats. Both are read by libpcap; pcap is written by libpcap's own
/// writer, pcapng by `PcapngBlocks` (libpcap 1.10 writes only pcap).
public enum SavefileFormat: String, Sendable, Equatable, CaseIterable {
    /// libpcap's classic format: one file header, then a 16-byte header per record.
    case pcap
    /// pcapng (draft-ietf-opsawg-pcapng): a section header, one interface, one Enhanced
    /// Packet Block per record.
    case pcapng

    /// The format a file name asks for: pcapng when it ends in `.pcapng` (any case), pcap
    /// otherwise, standard output ("-") included, as tcpdump's `-w` writes pcap whatever the name.
    public init(path: String) {
        self = path.lowercased().hasSuffix(".pcapng") ? .pcapng : .pcap
    }
}
