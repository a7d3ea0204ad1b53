import CWirecapPcap

/// One record of a savefile, copied out of libpcap's buffer.
public struct TraceRecord: Sendable, Equatable {
    public var bytes: [UInt8]
    public var wireLength: Int
    public var seconds: Int
    public var nanoseconds: Int

    public init(bytes: [UInt8], wireLength: Int, seconds: Int, nanoseconds: Int) {
        self.bytes = bytes
        self.wireLength = wireLength
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }
}

/// Reads pcap and pcapng files through libpcap, with nanosecond timestamps.
///
/// A truncated or corrupt file ends in a thrown `TraceError` carrying libpcap's message; the
/// records before the damage have been returned by then.
public final class PcapReader {
    private var handle: OpaquePointer?
    public let path: String
    public let linkType: Int32
    public let snapLength: Int

    public init(path: String) throws(TraceError) {
        self.path = path
        var errbuf = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        guard let handle = pcap_open_offline_with_tstamp_precision(path, UInt32(PCAP_TSTAMP_PRECISION_NANO), &errbuf) else {
            let message = errbuf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            let reason = message.hasPrefix(path + ": ") ? String(message.dropFirst(path.count + 2)) : message
            throw TraceError(path: path, reason: reason, hint: "give a readable pcap or pcapng file")
        }
        self.handle = handle
        linkType = pcap_datalink(handle)
        snapLength = Int(pcap_snapshot(handle))
    }

    /// The next record, or nil at the end of the file.
    public func next() throws(TraceError) -> TraceRecord? {
        guard let handle else { return nil }
        var header: UnsafeMutablePointer<pcap_pkthdr>? = nil
        var data: UnsafePointer<UInt8>? = nil
        switch pcap_next_ex(handle, &header, &data) {
        case 1:
            let h = header!.pointee
            let bytes = Array(UnsafeBufferPointer(start: data, count: Int(h.caplen)))
            return TraceRecord(bytes: bytes, wireLength: Int(h.len), seconds: h.ts.tv_sec, nanoseconds: h.ts.tv_usec)
        case PCAP_ERROR_BREAK:
            return nil
        default:
            throw TraceError(path: path, reason: String(cString: pcap_geterr(handle)), hint: "the file is truncated or corrupt")
        }
    }

    /// Every remaining record.
    public func readAll() throws(TraceError) -> [TraceRecord] {
        var records: [TraceRecord] = []
        while let record = try next() { records.append(record) }
        return records
    }

    deinit { if let handle { pcap_close(handle) } }
}
