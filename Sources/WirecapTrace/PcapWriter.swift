import CWirecapPcap
import WirecapEngine

/// Writes a pcap savefile through libpcap's own writer, with nanosecond timestamps, so that
/// tcpdump, tshark and every libpcap reader take the file as their own.
///
/// libpcap buffers through stdio: `close` (or `deinit`) flushes and finishes the file, which is
/// complete at every record boundary after a `flush`. One writer is not safe to use from two
/// threads at once: callers serialise (`wirecap capture` holds a lock per block), which is what
/// lets the file skip stdio's own per-call locking.
public final class PcapWriter {
    // Read on every packet; set only by init and close, which callers serialise with writes.
    @exclusivity(unchecked) private var dead: OpaquePointer?
    @exclusivity(unchecked) private var dumper: OpaquePointer?
    public let path: String

    /// DLT_EN10MB: Ethernet frames, what the engine captures.
    public static let ethernet: Int32 = 1

    public init(path: String, linkType: Int32 = PcapWriter.ethernet, snapLength: Int) throws(TraceError) {
        self.path = path
        guard let dead = pcap_open_dead_with_tstamp_precision(linkType, Int32(snapLength), UInt32(PCAP_TSTAMP_PRECISION_NANO)) else {
            throw TraceError(path: path, reason: "libpcap could not create a writer", hint: "check that libpcap is installed")
        }
        guard let dumper = pcap_dump_open(dead, path) else {
            let reason = String(cString: pcap_geterr(dead))
            pcap_close(dead)
            throw TraceError(path: path, reason: reason, hint: "choose a writable path with -w")
        }
        CWirecapPcap_dump_without_stdio_locks(dumper)
        self.dead = dead
        self.dumper = dumper
    }

    /// Appends one record: `bytes` as captured, `wireLength` as seen on the wire.
    @inline(__always)
    public func write(bytes: UnsafeRawBufferPointer, wireLength: Int, seconds: Int, nanoseconds: Int) {
        guard let dumper, let base = bytes.baseAddress else { return }
        var header = pcap_pkthdr()
        header.ts.tv_sec = seconds
        header.ts.tv_usec = nanoseconds  // nanoseconds: the file was opened with nanosecond precision
        header.caplen = UInt32(bytes.count)
        header.len = UInt32(wireLength)
        pcap_dump(UnsafeMutableRawPointer(dumper).assumingMemoryBound(to: UInt8.self), &header, base.assumingMemoryBound(to: UInt8.self))
    }

    @inline(__always)
    public func write(_ packet: Packet) {
        write(bytes: packet.bytes, wireLength: packet.wireLength, seconds: Int(packet.seconds), nanoseconds: Int(packet.nanoseconds))
    }

    public func flush() throws(TraceError) {
        guard let dumper else { return }
        if pcap_dump_flush(dumper) != 0 {
            throw TraceError(path: path, reason: "flushing failed", hint: "check free space on the file system")
        }
    }

    public func close() throws(TraceError) {
        guard let dumper else { return }
        let flushed = pcap_dump_flush(dumper) == 0
        pcap_dump_close(dumper)
        pcap_close(dead)
        self.dumper = nil
        self.dead = nil
        if !flushed { throw TraceError(path: path, reason: "writing failed", hint: "check free space on the file system") }
    }

    deinit { try? close() }
}
