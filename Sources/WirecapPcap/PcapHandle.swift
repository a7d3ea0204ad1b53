import CWirecapPcap

/// A libpcap handle, as pcap_t: today over a savefile (pcap or pcapng), read through libpcap
/// itself so that every file libpcap reads, this reads, with libpcap's own error messages.
///
/// One handle is used by one thread at a time, as a pcap_t is. The exception is `breakLoop()`,
/// which, like pcap_breakloop, may be called from any thread while `loop`, `dispatch` or `next`
/// runs; that is why the class is `Sendable`. `close()` must not race with any other call: it
/// frees the pcap_t.
public final class PcapHandle: @unchecked Sendable {
    // nil once closed: every call checks it, so use after close throws instead of touching freed
    // memory.
    var pointer: OpaquePointer?
    /// The precision timestamps are delivered in, as asked for at open.
    public let precision: TimestampPrecision

    init(pointer: OpaquePointer, precision: TimestampPrecision) {
        self.pointer = pointer
        self.precision = precision
    }

    /// Opens a pcap or pcapng file, as pcap_open_offline_with_tstamp_precision. A missing or
    /// unreadable file throws libpcap's message.
    public static func openOffline(path: String, precision: TimestampPrecision = .micro) throws(PcapError) -> PcapHandle {
        var errbuf = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        guard let pointer = pcap_open_offline_with_tstamp_precision(path, precision.libpcapValue, &errbuf) else {
            throw PcapError(errbuf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
        }
        return PcapHandle(pointer: pointer, precision: precision)
    }

    /// The pcap_t, or the error every use after close gets.
    @inline(__always)
    func open() throws(PcapError) -> OpaquePointer {
        guard let pointer else { throw PcapError.closed }
        return pointer
    }

    /// libpcap's last error on this handle (pcap_geterr).
    func lastError(_ pointer: OpaquePointer) -> PcapError {
        PcapError(String(cString: pcap_geterr(pointer)))
    }

    /// The link-layer header type, a DLT_ value (pcap_datalink): 1 is Ethernet.
    public var datalink: Int32 {
        get throws(PcapError) { pcap_datalink(try open()) }
    }

    /// The snap length of the file (pcap_snapshot).
    public var snapshot: Int {
        get throws(PcapError) { Int(pcap_snapshot(try open())) }
    }

    /// The next packet that passes the filter, copied; nil at the end of the file. A truncated
    /// or corrupt file throws libpcap's message once the intact records have been returned.
    public func next() throws(PcapError) -> OwnedPacket? {
        let pointer = try open()
        var header: UnsafeMutablePointer<pcap_pkthdr>? = nil
        var data: UnsafePointer<UInt8>? = nil
        switch pcap_next_ex(pointer, &header, &data) {
        case 1:
            let h = header!.pointee
            return OwnedPacket(
                bytes: Array(UnsafeBufferPointer(start: data, count: Int(h.caplen))), caplen: Int(h.caplen),
                len: Int(h.len), seconds: h.ts.tv_sec, fraction: h.ts.tv_usec, precision: precision)
        case PCAP_ERROR_BREAK:
            // For a savefile this is the end of the file (libpcap's own convention).
            return nil
        default:
            throw lastError(pointer)
        }
    }

    /// Makes a running `loop` or `dispatch` return after the packet in hand (pcap_breakloop).
    /// Safe from another thread or a signal handler: it only sets libpcap's flag.
    public func breakLoop() {
        if let pointer { pcap_breakloop(pointer) }
    }

    /// Always throws for a savefile: libpcap has no statistics for one and says so
    /// ("Statistics aren't available from savefiles"); see `PcapStatistics`.
    public func stats() throws(PcapError) -> PcapStatistics {
        let pointer = try open()
        var s = pcap_stat()
        guard pcap_stats(pointer, &s) == 0 else { throw lastError(pointer) }
        return PcapStatistics(received: s.ps_recv, dropped: s.ps_drop, interfaceDropped: s.ps_ifdrop)
    }

    /// Closes the file (pcap_close). Closing twice is harmless; any other use afterwards throws.
    public func close() {
        if let pointer { pcap_close(pointer) }
        pointer = nil
    }

    deinit { close() }
}

extension PcapError {
    /// What every call on a closed handle or dumper throws.
    public static let closed = PcapError("the pcap handle is closed")
}
