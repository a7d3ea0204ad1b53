#if canImport(Glibc)
import Glibc
#endif
import WirecapSavefile

/// A savefile loaded into memory once, for replay: every record's bytes back to back in one
/// buffer, and per record its offset, length and send time relative to the first record.
///
/// Send times follow tcpreplay: each record is due the file's gap after the record before it,
/// and a timestamp that goes backwards counts as no gap, so the schedule never runs backwards.
public final class LoadedTrace: @unchecked Sendable {
    // @unchecked: immutable after `TraceLoader.load` returns; the buffers are freed in deinit.
    public let path: String
    public let count: Int
    /// Sum of all captured lengths.
    public let totalBytes: Int
    /// The longest record, in captured bytes.
    public let longest: Int
    /// Records whose captured length is below their length on the wire (cut by a snap length):
    /// they are sent as captured.
    public let cutShort: Int
    /// Nanoseconds from the first record to the last on the (monotone) schedule.
    public var span: Int64 { count > 0 ? offsets[count - 1] : 0 }

    let bytes: UnsafeMutableRawPointer
    let starts: UnsafeMutablePointer<Int>
    let lengths: UnsafeMutablePointer<Int32>
    let offsets: UnsafeMutablePointer<Int64>

    init(path: String, bytes: UnsafeMutableRawPointer, starts: [Int], lengths: [Int32], offsets: [Int64], longest: Int, cutShort: Int) {
        self.path = path
        self.count = starts.count
        self.bytes = bytes
        self.starts = .allocate(capacity: max(1, count))
        self.starts.initialize(from: starts, count: count)
        self.lengths = .allocate(capacity: max(1, count))
        self.lengths.initialize(from: lengths, count: count)
        self.offsets = .allocate(capacity: max(1, count))
        self.offsets.initialize(from: offsets, count: count)
        self.totalBytes = lengths.reduce(0) { $0 + Int($1) }
        self.longest = longest
        self.cutShort = cutShort
    }

    deinit {
        bytes.deallocate()
        starts.deallocate()
        lengths.deallocate()
        offsets.deallocate()
    }

    /// The captured bytes of record `index`, valid as long as the trace.
    @inline(__always)
    public func record(_ index: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: bytes + starts[index], count: Int(lengths[index]))
    }

    /// When record `index` is due, in nanoseconds after the first record.
    @inline(__always)
    public func offset(_ index: Int) -> Int64 { offsets[index] }
}

/// Loads pcap and pcapng files for replay, refusing what cannot be replayed on Ethernet.
public enum TraceLoader {
    /// The longest schedule a trace may span, in nanoseconds: a century, far beyond any real
    /// capture, and small enough that a few loops of it still fit the replayer's 64-bit clock.
    public static let longestSpan: Int64 = 100 * 365 * 86_400 * 1_000_000_000

    /// Reads every record of `path` through `SavefileReader`, copying each from libpcap's
    /// buffer straight into the trace's. A missing, unreadable, truncated or corrupt file, a link
    /// type other than Ethernet, and a file with no packets are one-line errors.
    public static func load(path: String) throws(TrafficError) -> LoadedTrace {
        let reader: SavefileReader
        do {
            reader = try SavefileReader(path: path)
        } catch {
            throw .traceUnreadable(error)
        }
        guard reader.linkType == LinkType.ethernet else { throw .traceNotEthernet(path: path, linkType: reader.linkType) }
        var capacity = 1 << 20
        var buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 64)
        var used = 0
        var starts: [Int] = []
        var lengths: [Int32] = []
        var offsets: [Int64] = []
        var previous: Int64? = nil
        var clock: Int64 = 0
        var longest = 0
        var cutShort = 0
        var damaged: TrafficError? = nil
        do {
            while let record = try reader.nextBorrowed() {
                let length = record.bytes.count
                if used + length > capacity {
                    while used + length > capacity { capacity *= 2 }
                    let grown = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 64)
                    grown.copyMemory(from: buffer, byteCount: used)
                    buffer.deallocate()
                    buffer = grown
                }
                if length > 0 { (buffer + used).copyMemory(from: record.bytes.baseAddress!, byteCount: length) }
                // A time far off (pcapng holds 64-bit times) would overflow the nanosecond schedule:
                // refuse it by number instead of trapping. (The reader refuses a fraction of a
                // second or more itself.)
                let (scaled, scaleOverflow) = Int64(record.seconds).multipliedReportingOverflow(by: 1_000_000_000)
                let (stamp, addOverflow) = scaled.addingReportingOverflow(Int64(record.nanoseconds))
                let step = previous.map { stamp > $0 ? stamp.subtractingReportingOverflow($0) : (partialValue: 0, overflow: false) }
                    ?? (partialValue: 0, overflow: false)
                guard !scaleOverflow, !addOverflow, !step.overflow, step.partialValue <= Self.longestSpan - clock
                else {
                    damaged = .traceTimestampOutOfRange(path: path, record: starts.count + 1, seconds: record.seconds, nanoseconds: record.nanoseconds)
                    break
                }
                clock += step.partialValue
                previous = stamp
                starts.append(used)
                lengths.append(Int32(length))
                offsets.append(clock)
                used += length
                longest = max(longest, length)
                if record.wireLength > length { cutShort += 1 }
            }
        } catch {
            buffer.deallocate()
            throw .traceUnreadable(error)
        }
        if let damaged {
            buffer.deallocate()
            throw damaged
        }
        if let damaged {
            buffer.deallocate()
            throw damaged
        }
        if starts.isEmpty {
            buffer.deallocate()
            throw .traceEmpty(path: path)
        }
        return LoadedTrace(path: path, bytes: buffer, starts: starts, lengths: lengths, offsets: offsets, longest: longest, cutShort: cutShort)
    }
}
