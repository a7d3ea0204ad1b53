import CWirecapPcap
import WirecapEngine

/// A savefile being written through libpcap's pcap_dump, as pcap_dumper_t.
///
/// pcap_dump_open takes the handle's link type, snap length and timestamp precision, so a file
/// read at nanosecond precision is written with the nanosecond magic and loses nothing. The
/// dumper owns its FILE and outlives the handle it was opened from. One thread at a time.
public final class PcapDumper {
    private var dumper: OpaquePointer?
    public let path: String
    /// The unit of the fraction written into each record header.
    public let precision: TimestampPrecision

    init(dumper: OpaquePointer, path: String, precision: TimestampPrecision) {
        self.dumper = dumper
        self.path = path
        self.precision = precision
    }

    @inline(__always)
    private func open() throws(PcapError) -> OpaquePointer {
        guard let dumper else { throw PcapError.closed }
        return dumper
    }

    @inline(__always)
    private func write(_ dumper: OpaquePointer, bytes: UnsafeRawBufferPointer, len: Int, seconds: Int, fraction: Int) {
        var header = pcap_pkthdr()
        header.ts.tv_sec = seconds
        header.ts.tv_usec = fraction  // in the file's precision: pcap_dump writes it as is
        header.caplen = UInt32(bytes.count)
        header.len = UInt32(truncatingIfNeeded: len)
        // pcap_dump takes the dumper as its u_char * user argument, to be usable as a pcap_handler.
        let user = UnsafeMutableRawPointer(dumper).assumingMemoryBound(to: UInt8.self)
        // An empty packet still gets its record; libpcap reads no bytes for caplen 0.
        var empty: UInt8 = 0
        if let base = bytes.baseAddress {
            pcap_dump(user, &header, base.assumingMemoryBound(to: UInt8.self))
        } else {
            pcap_dump(user, &header, &empty)
        }
    }

    /// Appends a packet returned by `next()`. Its fraction is converted if it was read at
    /// another precision than this dumper writes.
    public func dump(_ packet: OwnedPacket) throws(PcapError) {
        let dumper = try open()
        let fraction = packet.precision == precision ? packet.fraction : packet.nanoseconds / Int(precision.nanosecondsPerUnit)
        packet.bytes.withUnsafeBytes { write(dumper, bytes: $0, len: packet.len, seconds: packet.seconds, fraction: fraction) }
    }

    /// Appends a borrowed packet from `dispatch` or `loop` (or the engine), whose timestamp is in
    /// nanoseconds: written as is at nano precision, truncated to microseconds at micro.
    @inline(__always)
    public func dump(_ packet: Packet) throws(PcapError) {
        let dumper = try open()
        write(dumper, bytes: packet.bytes, len: packet.wireLength, seconds: Int(packet.seconds),
              fraction: Int(packet.nanoseconds / precision.nanosecondsPerUnit))
    }

    /// Pushes buffered records to the file (pcap_dump_flush): the file is then complete at a
    /// record boundary. Throws if the write failed.
    public func flush() throws(PcapError) {
        let dumper = try open()
        if pcap_dump_flush(dumper) != 0 { throw PcapError("\(path): writing the savefile failed") }
    }

    /// Flushes and closes the file (pcap_dump_close). Closing twice is harmless; dumping
    /// afterwards throws. Throws if the final write failed, after closing.
    public func close() throws(PcapError) {
        guard let dumper else { return }
        let flushed = pcap_dump_flush(dumper) == 0
        pcap_dump_close(dumper)
        self.dumper = nil
        if !flushed { throw PcapError("\(path): writing the savefile failed") }
    }

    deinit { try? close() }
}

extension PcapHandle {
    /// Opens a savefile for writing with this handle's link type, snap length and precision
    /// (pcap_dump_open). "-" writes to standard output, as in libpcap. An unwritable path throws
    /// libpcap's message.
    public func dumpOpen(path: String) throws(PcapError) -> PcapDumper {
        switch try open() {
        case .savefile(let pointer):
            guard let dumper = pcap_dump_open(pointer, path) else { throw lastError(pointer) }
            return PcapDumper(dumper: dumper, path: path, precision: precision)
        case .live(let live):
            // The file header needs only the link type, snap length and precision: a dead pcap_t
            // carries them, and the dumper does not keep it.
            guard let dead = pcap_open_dead_with_tstamp_precision(BPFCompiler.ethernet, Int32(live.options.snapLength), precision.libpcapValue) else {
                throw PcapError("libpcap could not make a handle to write \(path) with")
            }
            defer { pcap_close(dead) }
            guard let dumper = pcap_dump_open(dead, path) else { throw lastError(dead) }
            return PcapDumper(dumper: dumper, path: path, precision: precision)
        }
    }
}
