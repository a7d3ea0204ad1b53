#if canImport(Glibc)
import Glibc
#endif
import CWirecapPcap
import WirecapEngine

/// Writes a savefile: pcap through libpcap's own writer (pcap_dump), so that tcpdump, tshark and
/// every libpcap reader take the file as their own, or pcapng through `PcapngBlocks`; micro or
/// nanosecond timestamps, any link type and snap length.
///
/// Records go into a buffer (stdio's for pcap, 1 MiB of our own for pcapng) and reach the file
/// on `flush`, `close` or when the buffer fills; the file is complete at every record boundary
/// after a `flush`. `write` reports nothing, as stdio's fwrite: the first failed write is
/// remembered, later records are dropped, and `flush` or `close` throws it with the path.
///
/// One writer is not safe to use from two threads at once: callers serialise (`wirecap capture`
/// writes through `TimeOrderedWriter`, one lock per block), which is what lets the file skip
/// stdio's own per-call locking and the fields skip Swift's dynamic exclusivity checks. The
/// per-record path allocates nothing, takes no lock and calls through no existential.
public final class SavefileWriter {
    public let path: String
    public let format: SavefileFormat
    public let precision: TimestampPrecision
    /// The link-layer header type, a DLT_ value (`LinkType.ethernet` is 1).
    public let linkType: Int32
    public let snapLength: Int

    /// 1 at nanosecond precision, 1000 at micro: records are handed over in nanoseconds.
    @usableFromInline let nanosecondsPerUnit: Int

    // Read on every record; set only by init and close, which callers serialise with writes.
    // pcap: libpcap's dumper, and the dead pcap_t that carries the file's link type, snap length
    // and precision.
    @usableFromInline @exclusivity(unchecked) var dumper: OpaquePointer?
    @exclusivity(unchecked) private var dead: OpaquePointer?
    // pcapng: the buffer records are encoded into, and the descriptor it is written to.
    @usableFromInline @exclusivity(unchecked) var buffer: UnsafeMutableRawPointer?
    @exclusivity(unchecked) private var capacity = 0
    @exclusivity(unchecked) private var used = 0
    @exclusivity(unchecked) private var descriptor: Int32 = -1
    private var ownsDescriptor = false
    /// errno of the first pcapng write that failed, reported by flush and close.
    @exclusivity(unchecked) private var failure: Int32 = 0

    private static let pcapngBufferSize = 1 << 20

    /// Opens `path` for writing ("-": standard output). `format` defaults to what the name asks
    /// for (pcapng for `.pcapng`, else pcap). `application` names the writer in a pcapng section
    /// header. An unwritable path throws the system's reason.
    public init(
        path: String, format: SavefileFormat? = nil, linkType: Int32 = LinkType.ethernet, snapLength: Int,
        precision: TimestampPrecision = .nano, application: String = "wirecap"
    ) throws(SavefileError) {
        self.path = path
        self.format = format ?? SavefileFormat(path: path)
        self.precision = precision
        self.linkType = linkType
        self.snapLength = snapLength
        nanosecondsPerUnit = Int(precision.nanosecondsPerUnit)
        guard snapLength > 0 && snapLength <= Int(Int32.max) else {
            throw SavefileError(path: path, reason: "snap length \(snapLength) is out of range", hint: "give 1 to \(Int32.max) bytes")
        }
        switch self.format {
        case .pcap: try openPcap()
        case .pcapng: try openPcapng(application: application)
        }
    }

    private func openPcap() throws(SavefileError) {
        guard let dead = pcap_open_dead_with_tstamp_precision(linkType, Int32(snapLength), precision.libpcapValue) else {
            throw SavefileError(path: path, reason: "libpcap could not create a writer", hint: "check that libpcap is installed")
        }
        guard let dumper = pcap_dump_open(dead, path) else {
            let reason = SavefileError.reason(String(cString: pcap_geterr(dead)), path: path)
            pcap_close(dead)
            throw SavefileError(path: path, reason: reason, hint: SavefileError.writablePath)
        }
        CWirecapPcap_dump_without_stdio_locks(dumper)
        self.dead = dead
        self.dumper = dumper
    }

    private func openPcapng(application: String) throws(SavefileError) {
        if path == "-" {
            descriptor = STDOUT_FILENO
        } else {
            descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else {
                throw SavefileError(path: path, reason: String(cString: strerror(errno)), hint: SavefileError.writablePath)
            }
            ownsDescriptor = true
        }
        let header = PcapngBlocks.header(linkType: linkType, snapLength: snapLength, precision: precision, application: application)
        capacity = max(Self.pcapngBufferSize, header.count)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        header.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        used = header.count
        self.buffer = buffer
    }

    /// Whether `close` has not run yet. Writes to a closed writer are dropped.
    public var isOpen: Bool { dumper != nil || buffer != nil }

    /// Appends one record: `bytes` as captured, `wireLength` as seen on the wire, the time as
    /// seconds and nanoseconds (cut to microseconds in a micro file). pcap holds the seconds in
    /// 32 bits (until 2106), pcapng the whole time as one 64-bit count of units (until 2554 in
    /// nanoseconds); past that the time wraps, as in the formats themselves.
    @inlinable @inline(__always)
    public func write(bytes: UnsafeRawBufferPointer, wireLength: Int, seconds: Int, nanoseconds: Int) {
        let fraction = nanosecondsPerUnit == 1 ? nanoseconds : nanoseconds / nanosecondsPerUnit
        if let dumper {
            writePcap(dumper, bytes: bytes, wireLength: wireLength, seconds: seconds, fraction: fraction)
        } else if buffer != nil {
            writePcapng(bytes: bytes, wireLength: wireLength, seconds: seconds, fraction: fraction)
        }
    }

    /// Appends a borrowed packet from the engine or the facade.
    @inlinable @inline(__always)
    public func write(_ packet: Packet) {
        write(bytes: packet.bytes, wireLength: packet.wireLength, seconds: Int(packet.seconds), nanoseconds: Int(packet.nanoseconds))
    }

    @usableFromInline
    func writePcap(_ dumper: OpaquePointer, bytes: UnsafeRawBufferPointer, wireLength: Int, seconds: Int, fraction: Int) {
        var header = pcap_pkthdr()
        header.ts.tv_sec = seconds
        header.ts.tv_usec = fraction  // in the file's precision: pcap_dump writes it as is
        header.caplen = UInt32(truncatingIfNeeded: bytes.count)
        header.len = UInt32(truncatingIfNeeded: wireLength)
        // pcap_dump takes the dumper as its u_char * user argument, to be usable as a pcap_handler.
        let user = UnsafeMutableRawPointer(dumper).assumingMemoryBound(to: UInt8.self)
        // An empty record still gets its header; libpcap reads no bytes for caplen 0.
        var empty: UInt8 = 0
        if let base = bytes.baseAddress {
            pcap_dump(user, &header, base.assumingMemoryBound(to: UInt8.self))
        } else {
            pcap_dump(user, &header, &empty)
        }
    }

    @usableFromInline
    func writePcapng(bytes: UnsafeRawBufferPointer, wireLength: Int, seconds: Int, fraction: Int) {
        let length = PcapngBlocks.enhancedPacketLength(captured: bytes.count)
        if used + length > capacity {
            drain()
            if length > capacity { grow(to: length) }
        }
        guard failure == 0, let buffer else { return }
        let unitsPerSecond: UInt64 = precision == .nano ? 1_000_000_000 : 1_000_000
        let timestamp = UInt64(truncatingIfNeeded: seconds) &* unitsPerSecond &+ UInt64(truncatingIfNeeded: fraction)
        PcapngBlocks.writeEnhancedPacket(at: buffer + used, bytes: bytes, wireLength: wireLength, timestamp: timestamp)
        used += length
    }

    /// A record longer than the buffer (a snap length over 1 MiB): the buffer grows once to it.
    private func grow(to length: Int) {
        guard let old = buffer else { return }
        let grown = UnsafeMutableRawPointer.allocate(byteCount: length, alignment: 16)
        grown.copyMemory(from: old, byteCount: used)
        old.deallocate()
        buffer = grown
        capacity = length
    }

    /// Writes the pcapng buffer out with write(2); a failure is kept for flush and close, and
    /// what was buffered is dropped.
    private func drain() {
        guard let buffer, used > 0 else { return }
        var offset = 0
        while failure == 0 && offset < used {
            let written = Glibc.write(descriptor, buffer + offset, used - offset)
            if written < 0 {
                if errno != EINTR { failure = errno }
                continue
            }
            offset += written
        }
        used = 0
    }

    private func writingFailed(_ code: Int32) -> SavefileError {
        SavefileError(path: path, reason: "writing failed: \(String(cString: strerror(code)))", hint: SavefileError.freeSpace)
    }

    /// Pushes buffered records to the file, which then ends at a record boundary. Throws the
    /// first write that failed since the open.
    public func flush() throws(SavefileError) {
        if let dumper {
            // stdio keeps the first failure in the stream's error flag; errno says which it was
            // when this flush is the write that failed.
            errno = 0
            if pcap_dump_flush(dumper) != 0 || ferror(pcap_dump_file(dumper)) != 0 {
                throw writingFailed(errno == 0 ? EIO : errno)
            }
        } else if buffer != nil {
            drain()
            if failure != 0 { throw writingFailed(failure) }
        }
    }

    /// Flushes and closes the file. Closing twice is harmless. Throws, after closing, if a write
    /// failed or the file system refused the file at close (NFS, quotas).
    public func close() throws(SavefileError) {
        var error: SavefileError? = nil
        if let dumper {
            do { try flush() } catch let failed { error = failed }
            pcap_dump_close(dumper)
            pcap_close(dead)
            self.dumper = nil
            dead = nil
        } else if let buffer {
            do { try flush() } catch let failed { error = failed }
            if ownsDescriptor && Glibc.close(descriptor) != 0 && error == nil { error = writingFailed(errno) }
            buffer.deallocate()
            self.buffer = nil
            descriptor = -1
        }
        if let error { throw error }
    }

    deinit { try? close() }
}
