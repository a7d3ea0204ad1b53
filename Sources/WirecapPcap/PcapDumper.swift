import CWirecapPcap
import Synchronization
import WirecapEngine
import WirecapSavefile

/// A savefile being written, as pcap_dumper_t: a thin wrapper over `SavefileWriter` that keeps
/// libpcap's names and messages.
///
/// As pcap_dump_open, the file is pcap (whatever its name) with the handle's link type, snap
/// length and timestamp precision, so a file read at nanosecond precision is written with the
/// nanosecond magic and loses nothing. The dumper owns its file and outlives the handle it was
/// opened from. One thread at a time, unless it merges (below).
///
/// Opened from a live handle of several queues, the dumper writes in timestamp order, as a
/// reader of one tcpdump file expects: each queue's packets come in chunks, in turn, so written
/// as they come they would go back in time at every change of queue. It merges the queues
/// (`TimeOrderedWriter`) within a window of half a second, holding each packet until no queue
/// can still deliver an earlier one; `close()` writes what is still held. Then it may be fed from
/// several threads (a handle's readers each dumping what they read), under one lock per packet.
public final class PcapDumper: @unchecked Sendable {
    // @unchecked: one thread at a time for a plain dumper (as pcap_dumper_t); a merging one
    // keeps its appenders under its own lock.
    private var writer: SavefileWriter?
    private let merging: Merging?
    public let path: String
    /// The unit of the fraction written into each record header.
    public let precision: TimestampPrecision

    /// The time order of a dumper fed by several queues.
    final class Merging: @unchecked Sendable {
        // @unchecked: `appenders` is touched only with `lock` held.
        let ordered: TimeOrderedWriter
        private var appenders: [TimeOrderedWriter.Appender]
        private let lock = Monitor()

        init(_ ordered: TimeOrderedWriter) {
            self.ordered = ordered
            appenders = (0..<ordered.queues).map { ordered.appender(queue: $0) }
        }

        func dump(bytes: UnsafeRawBufferPointer, wireLength: Int, timestamp: UInt64, queue: Int) {
            lock.withLock {
                // A queue outside the handle's (a packet from elsewhere) goes with queue 0.
                let lane = appenders.indices.contains(queue) ? queue : 0
                appenders[lane].append(bytes: bytes, wireLength: wireLength, timestamp: timestamp)
                ordered.commit(&appenders[lane], now: TimeOrderedWriter.now())
            }
        }
    }

    /// How long a merging dumper holds a packet back at most for a quiet queue: far above the
    /// handle's block timeout (at most 8 ms) and the time a reader takes over a chunk.
    static let window: UInt64 = 500_000_000

    init(writer: SavefileWriter, queues: Int = 1) {
        self.writer = writer
        self.path = writer.path
        self.precision = writer.precision
        merging =
            queues > 1
            ? Merging(TimeOrderedWriter(writer: writer, queues: queues, window: Self.window, laneBytes: 8 << 20, now: TimeOrderedWriter.now()))
            : nil
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
            if let merging {
                let timestamp = UInt64(max(0, packet.seconds)) &* 1_000_000_000 &+ UInt64(max(0, packet.nanoseconds))
                merging.dump(bytes: $0, wireLength: packet.len, timestamp: timestamp, queue: packet.queue)
            } else {
                writer.write(bytes: $0, wireLength: packet.len, seconds: packet.seconds, nanoseconds: packet.nanoseconds)
            }
        }
    }

    /// Appends a borrowed packet from `dispatch` or `loop` (or the engine), whose timestamp is in
    /// nanoseconds: written as is at nano precision, truncated to microseconds at micro.
    @inline(__always)
    public func dump(_ packet: Packet) throws(PcapError) {
        let writer = try open()
        if let merging {
            merging.dump(bytes: packet.bytes, wireLength: packet.wireLength, timestamp: packet.timestampNanoseconds, queue: packet.queue)
        } else {
            writer.write(packet)
        }
    }

    /// Pushes buffered records to the file (pcap_dump_flush): the file is then complete at a
    /// record boundary. A merging dumper first writes what no quiet queue can still precede
    /// (packets of the last half second may still be held). Throws if the write failed.
    public func flush() throws(PcapError) {
        let writer = try open()
        merging?.ordered.expire(now: TimeOrderedWriter.now())
        do { try writer.flush() } catch { throw Self.pcapError(error) }
    }

    /// Packets a merging dumper wrote after a later one (a queue more than the window behind);
    /// 0 for a plain one.
    public var writtenOutOfOrder: UInt64 { merging?.ordered.late ?? 0 }

    /// Flushes and closes the file (pcap_dump_close). Closing twice is harmless; dumping
    /// afterwards throws. Throws if the final write failed, after closing.
    public func close() throws(PcapError) {
        guard let writer else { return }
        merging?.ordered.finish()
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
        // The handle of every queue of a multi-queue capture merges them; a queue's reader, a
        // one-queue handle and a file write as they read.
        var queues = 1
        if case .live(let reader) = source, reader.queue == nil { queues = reader.queues.count }
        do {
            return PcapDumper(
                writer: try SavefileWriter(path: path, format: .pcap, linkType: linkType, snapLength: snapLength, precision: precision), queues: queues)
        } catch {
            // libpcap's own words: the path, then the system's reason.
            throw PcapDumper.pcapError(error)
        }
    }
}
