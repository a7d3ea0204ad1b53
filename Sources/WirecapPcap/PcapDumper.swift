import CWirecapPcap
import WirecapEngine
import WirecapSavefile

/// A savefile being written, as pcap_dumper_t: a thin wrapper over `SavefileWriter` that keeps
/// libpcap's names and messages.
///
/// As pcap_dump_open, the file is pcap (whatever its name) with the handle's link type, snap
/// length and timestamp precision, so a file read at nanosecond precision is written with the
/// nanosecond magic and loses nothing. The dumper owns its file and outlives the handle it was
/// opened from. One thread at a time.
public final class PcapDumper {
    private var writer: SavefileWriter?
    public let path: String
    /// The unit of the fraction written into each record header.
    public let precision: TimestampPrecision

    init(writer: SavefileWriter) {
        self.writer = writer
        self.path = writer.path
        self.precision = writer.precision
    }

    @inline(__always)
    private func open() throws(PcapError) -> SavefileWriter {
        guard let writer else { throw PcapError.closed }
        return writer
    }

    /// Appends a packet returned by `next()`. Its fraction is converted if it was read at
    /// another precision than this dumper writes.
    public func dump(_ packet: OwnedPacket) throws(PcapError) {
        let writer = try open()
        packet.bytes.withUnsafeBytes {
            writer.write(bytes: $0, wireLength: packet.len, seconds: packet.seconds, nanoseconds: packet.nanoseconds)
        }
    }

    /// Appends a borrowed packet from `dispatch` or `loop` (or the engine), whose timestamp is in
    /// nanoseconds: written as is at nano precision, truncated to microseconds at micro.
    @inline(__always)
    public func dump(_ packet: Packet) throws(PcapError) {
        try open().write(packet)
    }

    /// Pushes buffered records to the file (pcap_dump_flush): the file is then complete at a
    /// record boundary. Throws if the write failed.
    public func flush() throws(PcapError) {
        let writer = try open()
        do { try writer.flush() } catch { throw Self.pcapError(error) }
    }

    /// Flushes and closes the file (pcap_dump_close). Closing twice is harmless; dumping
    /// afterwards throws. Throws if the final write failed, after closing.
    public func close() throws(PcapError) {
        guard let writer else { return }
        self.writer = nil
        do { try writer.close() } catch { throw Self.pcapError(error) }
    }

    /// The path, then what failed and why, as libpcap words it: `out.pcap: No such file or directory`,
    /// `out.pcap: writing failed: No space left on device`.
    static func pcapError(_ error: SavefileError) -> PcapError {
        PcapError("\(error.path): \(error.reason)")
    }

    deinit { try? close() }
}

extension PcapHandle {
    /// Opens a savefile for writing with this handle's link type, snap length and precision
    /// (pcap_dump_open). "-" writes to standard output, as in libpcap. An unwritable path throws
    /// libpcap's message.
    public func dumpOpen(path: String) throws(PcapError) -> PcapDumper {
        let (linkType, snapLength) = (try datalink, try snapshot)
        do {
            return PcapDumper(writer: try SavefileWriter(path: path, format: .pcap, linkType: linkType, snapLength: snapLength, precision: precision))
        } catch {
            // libpcap's own words: the path, then the system's reason.
            throw PcapDumper.pcapError(error)
        }
    }
}
