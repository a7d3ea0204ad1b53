import CWirecapPcap

/// One record of a savefile, copied out of libpcap's buffer.
public struct SavefileRecord: Sendable, Equatable {
    public var bytes: [UInt8]
    public var wireLength: Int
    public var seconds: Int
    /// The fraction of the second in nanoseconds, whatever the reader's precision (at `.micro`
    /// a whole number of microseconds).
    public var nanoseconds: Int

    public init(bytes: [UInt8], wireLength: Int, seconds: Int, nanoseconds: Int) {
        self.bytes = bytes
        self.wireLength = wireLength
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }
}

/// One record as libpcap holds it: `bytes` points into libpcap's buffer and is valid only until
/// the reader reads again or closes. Copy what must outlive that.
public struct BorrowedRecord {
    public let bytes: UnsafeRawBufferPointer
    public let wireLength: Int
    public let seconds: Int
    /// In nanoseconds, as `SavefileRecord.nanoseconds`.
    public let nanoseconds: Int
}

/// Reads pcap and pcapng files through libpcap, nanosecond precision unless asked otherwise.
///
/// A missing or foreign file is refused at `init`; a truncated or corrupt one ends in a thrown
/// `SavefileError` carrying libpcap's message, once the records before the damage have been
/// returned. A record whose timestamp is damaged is refused by number (see `checkedTime`); a
/// further read goes on with the record after it. One thread at a time.
public final class SavefileReader {
    private var handle: OpaquePointer?
    public let path: String
    /// The link-layer header type, a DLT_ value (`LinkType.ethernet` is 1).
    public let linkType: Int32
    public let snapLength: Int
    public let precision: TimestampPrecision
    private let nanosecondsPerUnit: Int
    /// Classic pcap rather than pcapng: libpcap reports major version 2 for pcap, 1 for pcapng.
    private let isPcap: Bool
    /// Records read so far, to name a damaged one by its number (from 1).
    private var recordsRead = 0

    public init(path: String, precision: TimestampPrecision = .nano) throws(SavefileError) {
        self.path = path
        self.precision = precision
        nanosecondsPerUnit = Int(precision.nanosecondsPerUnit)
        let handle: OpaquePointer
        do {
            handle = try Self.openLibpcap(path: path, precision: precision)
        } catch {
            throw SavefileError(path: path, reason: SavefileError.reason(error.message, path: path), hint: SavefileError.readableFile)
        }
        self.handle = handle
        linkType = pcap_datalink(handle)
        snapLength = Int(pcap_snapshot(handle))
        isPcap = pcap_major_version(handle) == 2
    }

    /// Opens `path` with libpcap at `precision` (pcap_open_offline_with_tstamp_precision): the
    /// project's one offline open. The reader holds the pcap_t it returns; so does the facade's
    /// offline `PcapHandle`, which runs libpcap's own filter, dispatch and breakloop on it and
    /// reports libpcap's message word for word (it names the path when the file could not be
    /// opened at all).
    package static func openLibpcap(path: String, precision: TimestampPrecision) throws(LibpcapMessage) -> OpaquePointer {
        var errbuf = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        guard let handle = pcap_open_offline_with_tstamp_precision(path, precision.libpcapValue, &errbuf) else {
            throw LibpcapMessage(message: errbuf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
        }
        return handle
    }

    /// The next record, borrowed from libpcap's buffer (pcap_next_ex): nil at the end of the
    /// file (or after `close`).
    public func nextBorrowed() throws(SavefileError) -> BorrowedRecord? {
        guard let handle else { return nil }
        var header: UnsafeMutablePointer<pcap_pkthdr>? = nil
        var data: UnsafePointer<UInt8>? = nil
        switch pcap_next_ex(handle, &header, &data) {
        case 1:
            recordsRead += 1
            let h = header!.pointee
            let (seconds, nanoseconds) = try checkedTime(seconds: h.ts.tv_sec, fraction: h.ts.tv_usec)
            return BorrowedRecord(
                bytes: UnsafeRawBufferPointer(start: data, count: Int(h.caplen)), wireLength: Int(h.len), seconds: seconds, nanoseconds: nanoseconds)
        case PCAP_ERROR_BREAK:
            // For a savefile this is the end of the file (libpcap's own convention).
            return nil
        default:
            throw SavefileError(path: path, reason: String(cString: pcap_geterr(handle)), hint: SavefileError.damagedFile)
        }
    }

    /// A record's time as libpcap hands it over, made what the record's fields promise: seconds
    /// since 1970 and a fraction under one second, never negative, never wrapped.
    ///
    /// libpcap (and so tcpdump) passes the file's fields through unchecked: a pcap sub-second
    /// field of a second or more comes out as is (or negative from 2^31 up, read as a signed
    /// 32-bit number), and a pcapng time past 2^63 seconds (whole-second resolution, or an
    /// interface offset that wraps) comes out as a negative time_t. Neither can be repaired by
    /// guessing (carrying the excess into the seconds would invent a time), and a caller that
    /// sorts, subtracts or writes these times back would go wrong silently, so the record is
    /// refused by number, as a truncated record is. One thing is repaired, since it is no
    /// damage: libpcap reads pcap's 32-bit seconds as signed, so a time from 2038 on would come
    /// out negative; the format defines the field unsigned (Wireshark reads it so), and so does
    /// this reader.
    private func checkedTime(seconds: Int, fraction: Int) throws(SavefileError) -> (seconds: Int, nanoseconds: Int) {
        let seconds = isPcap ? Int(UInt32(truncatingIfNeeded: seconds)) : seconds
        // At most 2^32 units of a microsecond: no overflow in 64 bits.
        let nanoseconds = fraction * nanosecondsPerUnit
        let problem: String
        if !(0..<1_000_000_000).contains(nanoseconds) {
            problem = "its sub-second field is one second or more"
        } else if seconds < 0 {
            problem = "its time overflows 64 bits of seconds (the interface's resolution or offset is damaged)"
        } else {
            return (seconds, nanoseconds)
        }
        throw SavefileError(path: path, reason: "record \(recordsRead) has a damaged timestamp: \(problem)", hint: SavefileError.damagedTimestamp)
    }

    /// The next record, copied; nil at the end of the file.
    public func next() throws(SavefileError) -> SavefileRecord? {
        guard let record = try nextBorrowed() else { return nil }
        return SavefileRecord(
            bytes: Array(record.bytes), wireLength: record.wireLength, seconds: record.seconds, nanoseconds: record.nanoseconds)
    }

    /// Every remaining record.
    public func readAll() throws(SavefileError) -> [SavefileRecord] {
        var records: [SavefileRecord] = []
        while let record = try next() { records.append(record) }
        return records
    }

    /// Closes the file; reading afterwards returns nil. Closing twice is harmless.
    public func close() {
        if let handle { pcap_close(handle) }
        handle = nil
    }

    deinit { close() }
}

/// libpcap's own words for a file it could not open.
package struct LibpcapMessage: Error {
    package let message: String
}
