import CWirecapPcap

/// Link-layer header types as libpcap reports them (`pcap_datalink`): DLT_ values.
public enum LinkType {
    /// DLT_EN10MB: Ethernet frames, what the engine captures and replay sends.
    public static let ethernet: Int32 = 1

    /// libpcap's name for the type, with the number: `LINUX_SLL (113)`; the number alone when
    /// libpcap has no name for it.
    public static func name(_ type: Int32) -> String {
        guard let name = pcap_datalink_val_to_name(type) else { return "\(type)" }
        return "\(String(cString: name)) (\(type))"
    }

    /// The LINKTYPE_ value a file stores for a DLT_ value, as libpcap's dlt_to_linktype maps
    /// them on Linux (libpcap does not export it, and pcapng is written here, not by libpcap):
    /// the same number but for the few DLT_ values that differ between systems, which files
    /// store as numbers of their own.
    static func fileValue(_ dlt: Int32) -> Int32 {
        switch dlt {
        case 11: 100  // DLT_ATM_RFC1483
        case 12: 101  // DLT_RAW
        case 15: 102  // DLT_SLIP_BSDOS
        case 16: 103  // DLT_PPP_BSDOS
        case 19: 106  // DLT_ATM_CLIP
        default: dlt
        }
    }
}
